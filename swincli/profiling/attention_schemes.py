"""The four ways of computing Swin's local attention compared in the paper's Table 5, as real code.

- ``cyclic`` (ours, the paper's choice): odd blocks roll the map by half a window and mask the
  windows that then mix regions; the number of windows never grows.
- ``padding``: odd blocks pad the map by half a window on the top/left (and to a window multiple on
  the bottom/right), so the shifted grid has about one more window per row and column; padded tokens
  are masked out. It computes the same attention as ``cyclic``, only at a higher cost.
- ``no-shift``: every block uses the regular window grid (the paper's "w/o shifting" ablation).
- ``sliding``: every query attends to the M x M neighbourhood centred on itself (what local attention
  "should" be, and what the window scheme approximates); keys outside the map are masked.

Inside ``with use_scheme(model, name):``, ``no-shift`` sets every block's shift to zero (so it runs the
very code of ``cyclic``), and ``padding`` and ``sliding`` replace ``SwinBlock.attend``.
"""

from __future__ import annotations

import contextlib
import types
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from swincli.models.block import SwinBlock
from swincli.models.window import window_partition, window_reverse

SCHEMES = ("cyclic", "padding", "no-shift", "sliding")
MASK = -100.0


def _attention_with_mask(block: SwinBlock, windows: Tensor, extra: Tensor | None) -> Tensor:
    """The block's own attention over ``windows`` (B, nW, N, C), with an extra per-window key mask (nW, N)."""
    attn = block.attn
    bias = attn.position_bias()
    mask = None if bias is None else bias[None]  # (1, heads, N, N)
    if extra is not None:
        key_mask = extra[:, None, None, :]  # (nW, 1, 1, N): masked keys for every query
        mask = key_mask if mask is None else mask + key_mask
        mask = mask.expand(-1, attn.num_heads, -1, -1) if mask.shape[1] == 1 else mask
    saved = attn.attn_mask
    attn.attn_mask = lambda *args, **kw: None if mask is None else mask.to(windows.dtype)  # type: ignore[method-assign]
    try:
        return attn(windows, (0, 0))
    finally:
        attn.attn_mask = saved  # type: ignore[method-assign]


def _padding_attend(self: SwinBlock, x: Tensor) -> Tensor:
    if not any(self.shift):
        return SwinBlock.attend(self, x)
    b, h, w, c = x.shape
    (wh, ww), (sh, sw) = self.window, self.shift
    top, left = (wh - sh) % wh, (ww - sw) % ww  # the shifted grid starts s tokens in: pad M - s before
    bottom, right = (-(h + top)) % wh, (-(w + left)) % ww
    x = F.pad(x, (0, 0, left, right, top, bottom))
    valid = F.pad(torch.ones(1, h, w, 1, device=x.device), (0, 0, left, right, top, bottom))
    hp, wp = h + top + bottom, w + left + right
    windows = window_partition(x, self.window)
    keys = window_partition(valid, self.window)[0, :, :, 0]  # (nW, N): 1 for real tokens
    out = _attention_with_mask(self, windows, (1 - keys) * MASK)
    x = window_reverse(out, self.window, hp, wp)
    return x[:, top : top + h, left : left + w, :].contiguous()


def _sliding_attend(self: SwinBlock, x: Tensor) -> Tensor:
    """Each query's own M x M neighbourhood (centred; keys beyond the map masked), bias by relative offset."""
    b, h, w, c = x.shape
    attn = self.attn
    (wh, ww), heads, hd = self.window, attn.num_heads, attn.head_dim
    qkv = F.linear(x, attn.qkv.weight, _qkv_bias(attn)).view(b, h, w, 3, heads, hd)
    q, k, v = qkv.unbind(3)  # (B, H, W, heads, hd)
    ph, pw = wh // 2, ww // 2
    pad = (0, 0, 0, 0, pw, ww - 1 - pw, ph, wh - 1 - ph)
    kv = torch.stack([k, v]).flatten(4)  # (2, B, H, W, heads*hd)
    kv = F.pad(kv, pad[2:])  # pad W and H
    valid = F.pad(torch.ones(1, h, w, 1, device=x.device), pad[2:])
    # neighbourhoods: (2, B, H, W, C, wh, ww) -> (2, B, H*W, wh*ww, heads, hd)
    nb = kv.unfold(2, wh, 1).unfold(3, ww, 1)
    nb = nb.reshape(2, b, h * w, heads, hd, wh * ww).permute(0, 1, 2, 5, 3, 4)
    nk, nv = nb[0], nb[1]
    keep = valid[0, :, :, 0].unfold(0, wh, 1).unfold(1, ww, 1).reshape(h * w, wh * ww)
    qf = q.reshape(b, h * w, heads, hd)
    if attn.version == 2:
        scale = torch.clamp(attn.logit_scale, max=4.605170185988092).exp().view(1, 1, heads, 1)
        logits = torch.einsum("bqhd,bqkhd->bqhk", F.normalize(qf, dim=-1), F.normalize(nk, dim=-1)) * scale
    else:
        logits = torch.einsum("bqhd,bqkhd->bqhk", qf * hd**-0.5, nk)
    bias = attn.position_bias()
    if bias is not None:  # offsets of the neighbourhood relative to its centre: the window's centre row of the table
        centre = (wh // 2) * ww + ww // 2
        logits = logits + bias[:, centre, :][None, None]
    logits = logits + ((1 - keep) * MASK)[None, :, None, :]
    out = torch.einsum("bqhk,bqkhd->bqhd", logits.softmax(-1), nv).reshape(b, h, w, c)
    return attn.proj_drop(attn.proj(out))


def _qkv_bias(attn) -> Tensor | None:
    if attn.version == 2 and attn.q_bias is not None:
        return torch.cat((attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias))
    return attn.qkv.bias


_IMPLS = {"padding": _padding_attend, "sliding": _sliding_attend}


@contextlib.contextmanager
def use_scheme(model, scheme: str) -> Iterator[None]:
    """Run ``model`` with one of :data:`SCHEMES` in every block (``cyclic`` changes nothing)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown attention scheme {scheme!r}; choose from {SCHEMES}")
    blocks = list(model.blocks())
    shifts = [block.shift for block in blocks]
    for block in blocks:
        if scheme == "no-shift":  # the same code path as cyclic, only without the shift: a fair comparison
            block.shift = (0, 0)
        elif scheme != "cyclic":
            block.attend = types.MethodType(_IMPLS[scheme], block)
    try:
        yield
    finally:
        for block, shift in zip(blocks, shifts):
            block.__dict__.pop("attend", None)
            block.shift = shift
