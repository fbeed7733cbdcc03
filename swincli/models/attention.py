"""Window multi-head self-attention (W-MSA / SW-MSA) for Swin V1 and V2.

V1: dot-product attention scaled by hd^-0.5 plus a learned relative position bias.
V2: scaled cosine attention (normalised q and k, times a learned per-head logit scale clamped at
log 100) plus the continuous position bias; the k projection has no bias.

Both run through ``F.scaled_dot_product_attention``: the position bias and the shift mask are folded
into one additive mask, and V2's cosine attention becomes SDPA on normalised q (pre-multiplied by the
logit scale) with ``scale=1``. In eval mode without autograd the folded mask of each padded map size is
computed once and reused until the weights, dtype or device change. ``impl = "eager"`` keeps the
textbook path (explicit softmax) for tests and export.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swincli.models.config import Pair
from swincli.models.continuous_position_bias import continuous_bias, cpb_mlp, log_spaced_coords
from swincli.models.onednn import linear
from swincli.models.relative_position_bias import gather_bias, relative_position_index, table_size
from swincli.models.shift_mask import shift_mask

LOGIT_SCALE_MAX = math.log(1.0 / 0.01)
ATTENTION_IMPLS = ("auto", "sdpa", "eager")


class WindowAttention(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Pair,
        version: int = 1,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        pretrained_window: Pair = (0, 0),
        rel_pos: bool = True,
    ) -> None:
        super().__init__()
        self.dim, self.num_heads, self.window, self.version = dim, num_heads, tuple(window), version
        self.head_dim = dim // num_heads
        self.rel_pos = rel_pos
        self.impl = "auto"  # SDPA on accelerators; the explicit softmax on CPU, where it measured faster
        self.chunk: int | None = None  # windows per attention call; None = all at once
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias and version == 1)
        if version == 2:
            self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
            if qkv_bias:
                self.q_bias = nn.Parameter(torch.zeros(dim))
                self.v_bias = nn.Parameter(torch.zeros(dim))
            else:
                self.q_bias = self.v_bias = None
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.pretrained_window = tuple(pretrained_window)
        if rel_pos:
            if version == 1:
                self.relative_position_bias_table = nn.Parameter(torch.zeros(table_size(self.window), num_heads))
                nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            else:
                self.cpb_mlp = cpb_mlp(num_heads)
        self._cache: dict = {}
        self._build_buffers()

    def _build_buffers(self, device: torch.device | str | None = None) -> None:
        """Derived tensors: never in checkpoints, rebuilt from the window whenever it changes."""
        self._cache = {}
        if not self.rel_pos:
            return
        index = relative_position_index(self.window).to(device)
        self.register_buffer("relative_position_index", index, persistent=False)
        if self.version == 2:
            coords = log_spaced_coords(self.window, self.pretrained_window).to(device)
            self.register_buffer("relative_coords_table", coords, persistent=False)

    # ------------------------------------------------------------------ bias and mask
    def position_bias(self) -> Tensor | None:
        """``(heads, N, N)`` position bias of this window, or None for the "no pos." ablation."""
        if not self.rel_pos:
            return None
        if self.version == 1:
            return gather_bias(self.relative_position_bias_table, self.relative_position_index)
        return continuous_bias(self.cpb_mlp, self.relative_coords_table, self.relative_position_index)

    def _bias_params(self) -> list[Tensor]:
        if not self.rel_pos:
            return []
        if self.version == 1:
            return [self.relative_position_bias_table]
        return list(self.cpb_mlp.parameters())

    def attn_mask(self, size: Pair, shift: Pair, dtype: torch.dtype, device: torch.device) -> Tensor | None:
        """Position bias plus shift mask: None, ``(heads, N, N)`` or ``(nW, heads, N, N)``."""
        cacheable = not (self.training or torch.is_grad_enabled() or torch.compiler.is_compiling())
        if cacheable:
            key = (size, shift, dtype, device, tuple((p.data_ptr(), p._version) for p in self._bias_params()))
            hit = self._cache.get("mask")
            if hit is not None and hit[0] == key:
                return hit[1]
        mask = self._fold(size, shift, device)
        mask = None if mask is None else mask.to(dtype).contiguous()  # a strided mask makes every add slow
        if cacheable:
            self._cache["mask"] = (key, mask)
        return mask

    def _fold(self, size: Pair, shift: Pair, device: torch.device) -> Tensor | None:
        bias = self.position_bias()
        region = self._shift_mask(size, shift, device)
        if region is None:
            return bias
        if bias is None:  # the "no pos." ablation still needs one mask per head for the SDPA layout
            return region[:, None].expand(-1, self.num_heads, -1, -1)
        return bias[None] + region[:, None]  # (nW, heads, N, N)

    def _shift_mask(self, size: Pair, shift: Pair, device: torch.device) -> Tensor | None:
        return self.derived("shift", (size, shift, device), lambda: shift_mask(size, self.window, shift, device))

    def derived(self, name: str, key: tuple, make):
        """A tensor derived from the window (and ``key``): kept until the key, the window or the device changes."""
        if torch.compiler.is_compiling():  # a compiled graph folds it in; filling the cache would force a recompile
            return make()
        hit = self._cache.get(name)
        if hit is None or hit[0] != key:
            hit = (key, make())
            self._cache[name] = hit
        return hit[1]

    def _apply(self, fn, recurse=True):  # .to()/.half() etc. invalidate cached tensors
        self._cache = {}
        return super()._apply(fn, recurse)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, size: Pair, shift: Pair = (0, 0)) -> Tensor:
        """``x``: windows ``(B, nW, N, C)`` of a padded map ``size``; returns the same shape.

        With ``chunk`` set, windows are processed ``chunk`` at a time (the V2 paper's sequential
        attention): the attention matrices of only one chunk are alive at once.
        """
        nw = x.shape[1]
        mask = self.mask_for(x, size, shift)
        if not self.chunk or nw <= self.chunk:
            return self._attend(x, mask)
        outs = []
        for i in range(0, nw, self.chunk):
            part = mask[i : i + self.chunk] if mask is not None and mask.dim() == 4 else mask
            outs.append(self._attend(x[:, i : i + self.chunk], part))
        return torch.cat(outs, dim=1)

    def mask_for(self, x: Tensor, size: Pair, shift: Pair) -> Tensor | None:
        """:meth:`attn_mask` in the dtype the attention logits of ``x`` will have (autocast aware)."""
        dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
        return self.attn_mask(size, shift, dtype, x.device)

    def _attend(self, x: Tensor, mask: Tensor | None, residual: Tensor | None = None) -> Tensor:
        """Attention over windows ``(B, nW, N, C)``; ``residual`` (eval only) is added inside the projection."""
        nw, n, c = x.shape[1], x.shape[2], x.shape[3]
        heads, hd = self.num_heads, self.head_dim
        bias = self.qkv.bias
        if self.version == 2 and self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = linear(x, self.qkv.weight, bias).view(-1, nw, n, 3, heads, hd)
        scale = None
        if self.version == 2:  # cosine attention: unit q and k, q times the per-head logit scale
            q, k = self._cosine_qk(qkv[:, :, :, :2]).permute(3, 0, 1, 4, 2, 5).unbind(0)
            v = qkv[:, :, :, 2].transpose(2, 3)
            scale = 1.0
        else:
            q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # (B, nW, heads, N, hd)
        if mask is not None and mask.dtype != q.dtype:
            mask = mask.to(q.dtype)
        drop = self.attn_drop if self.training else 0.0
        # "auto": on CPU, SDPA with a float mask has no fused backward and its forward kernel loses to
        # bmm + softmax at Swin's window sizes (N = 49..144); measured 2-7% end to end. GPUs take SDPA.
        if self.impl == "eager" or (self.impl == "auto" and x.device.type == "cpu"):
            out = self._eager(q, k, v, mask, scale, drop)
        elif mask is None or mask.dim() == 3:  # the same mask for every window: batch the windows
            flat = [t.reshape(-1, heads, n, hd) for t in (q, k, v)]
            out = F.scaled_dot_product_attention(*flat, attn_mask=mask, dropout_p=drop, scale=scale)
        else:  # one mask per window: fold windows into the head axis so the mask broadcasts over B
            flat = [t.reshape(-1, nw * heads, n, hd) for t in (q, k, v)]
            mask = mask.reshape(1, nw * heads, n, n)
            out = F.scaled_dot_product_attention(*flat, attn_mask=mask, dropout_p=drop, scale=scale)
        out = out.view(-1, nw, heads, n, hd).transpose(2, 3).reshape(-1, nw, n, c)
        if residual is not None:
            return linear(out, self.proj.weight, self.proj.bias, residual=residual)
        return self.proj_drop(linear(out, self.proj.weight, self.proj.bias))

    def _cosine_qk(self, qk: Tensor) -> Tensor:
        """``(..., 2, heads, hd)`` q and k -> ``q / |q| * logit scale`` and ``k / |k|``.

        One pass over the token-major layout: normalising the head-major views instead broadcasts over
        strided memory and measured ten times slower on CPU.
        """
        logit_scale = torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp().view(-1, 1)
        factor = torch.stack((logit_scale, torch.ones_like(logit_scale)))  # (2, heads, 1)
        norm = torch.linalg.vector_norm(qk, dim=-1, keepdim=True).clamp_min(1e-12)  # F.normalize's eps
        return qk * (factor / norm).to(qk.dtype)

    def _eager(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float | None, drop: float) -> Tensor:
        if scale is None:
            q = q * self.head_dim**-0.5
        attn = q @ k.transpose(-2, -1)  # (B, nW, heads, N, N)
        if mask is not None:
            attn = attn + mask if torch.is_grad_enabled() else attn.add_(mask)
        attn = F.dropout(attn.softmax(dim=-1), drop, self.training)
        return attn @ v
