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
very code of ``cyclic``), and ``padding`` and ``sliding`` make every block a subclass of
:class:`SwinBlock` whose ``attend`` computes that scheme (and swap the class back afterwards).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from swincli.models.block import SwinBlock
from swincli.models.shift_mask import MASK_VALUE, WindowMasks
from swincli.models.window import window_partition, window_reverse

SCHEMES = ("cyclic", "padding", "no-shift", "sliding")


class PaddingBlock(SwinBlock):
    """Shifted windows by padding: the shifted grid starts s tokens in, so pad M - s before; padded keys are masked."""

    def attend(self, x: Tensor) -> Tensor:
        if not any(self.shift):
            return super().attend(x)
        b, h, w, c = x.shape
        (wh, ww), (sh, sw) = self.window, self.shift
        top, left = (wh - sh) % wh, (ww - sw) % ww
        bottom, right = (-(h + top)) % wh, (-(w + left)) % ww
        x = F.pad(x, (0, 0, left, right, top, bottom))
        valid = F.pad(torch.ones(1, h, w, 1, device=x.device), (0, 0, left, right, top, bottom))
        keys = window_partition(valid, self.window)[0, :, :, 0]  # (nW, N): 1 for real tokens
        n = keys.shape[1]
        key_mask = ((1 - keys) * MASK_VALUE)[:, None, :].expand(-1, n, -1)  # (nW, N, N): masked keys, every query
        out = self.attn(window_partition(x, self.window), WindowMasks.per_window(key_mask.to(x.dtype)))
        x = window_reverse(out, self.window, h + top + bottom, w + left + right)
        return x[:, top : top + h, left : left + w, :].contiguous()


class SlidingBlock(SwinBlock):
    """Each query attends to its own M x M neighbourhood (centred; keys beyond the map masked), bias by offset."""

    def attend(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        attn = self.attn
        (wh, ww), heads, hd = self.window, attn.num_heads, attn.head_dim
        q, k, v = attn.project_qkv(x).unbind(3)  # (B, H, W, heads, hd)
        ph, pw = wh // 2, ww // 2
        pad = (pw, ww - 1 - pw, ph, wh - 1 - ph)  # W then H
        kv = F.pad(torch.stack([k, v]).flatten(4), (0, 0, *pad))  # (2, B, H', W', heads*hd)
        valid = F.pad(torch.ones(1, h, w, 1, device=x.device), (0, 0, *pad))
        # neighbourhoods: (2, B, H, W, C, wh, ww) -> (2, B, H*W, wh*ww, heads, hd)
        nb = kv.unfold(2, wh, 1).unfold(3, ww, 1)
        nk, nv = nb.reshape(2, b, h * w, heads, hd, wh * ww).permute(0, 1, 2, 5, 3, 4)
        keep = valid[0, :, :, 0].unfold(0, wh, 1).unfold(1, ww, 1).reshape(h * w, wh * ww)
        qf = q.reshape(b, h * w, heads, hd)
        if attn.version == 2:
            tau = attn.temperature().view(1, 1, heads, 1)
            logits = torch.einsum("bqhd,bqkhd->bqhk", F.normalize(qf, dim=-1), F.normalize(nk, dim=-1)) * tau
        else:
            logits = torch.einsum("bqhd,bqkhd->bqhk", qf * hd**-0.5, nk)
        bias = attn.position_bias()
        if bias is not None:  # offsets of the neighbourhood relative to its centre: the window's centre row of the table
            centre = (wh // 2) * ww + ww // 2
            logits = logits + bias[:, centre, :][None, None]
        logits = logits + ((1 - keep) * MASK_VALUE)[None, :, None, :]
        out = torch.einsum("bqhk,bqkhd->bqhd", attn.attn_drop(logits.softmax(-1)), nv).reshape(b, h, w, c)
        return attn.proj_drop(attn.proj(out))


_BLOCKS = {"padding": PaddingBlock, "sliding": SlidingBlock}


@contextlib.contextmanager
def use_scheme(model, scheme: str) -> Iterator[None]:
    """Run ``model`` with one of :data:`SCHEMES` in every block (``cyclic`` changes nothing)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown attention scheme {scheme!r}; choose from {SCHEMES}")
    blocks = list(model.blocks())
    saved = [(block.__class__, block.shift) for block in blocks]
    for block in blocks:
        if scheme == "no-shift":  # the same code path as cyclic, only without the shift: a fair comparison
            block.shift = (0, 0)
        elif scheme != "cyclic":
            block.__class__ = _BLOCKS[scheme]
    try:
        yield
    finally:
        for block, (cls, shift) in zip(blocks, saved):
            block.__class__, block.shift = cls, shift
