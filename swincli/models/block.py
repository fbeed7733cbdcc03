"""The Swin Transformer block: (shifted) window attention and an MLP, each with a residual.

V1 normalises before each branch (pre-norm). V2 normalises each branch's output before adding it back
(res-post-norm), which keeps activations from growing with depth; its two norms start at zero, so every
block starts as the identity. Odd blocks of a stage shift the windows by half a window.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from swincli.models.attention import WindowAttention
from swincli.models.config import Pair
from swincli.models.derived import DerivedTensors
from swincli.models.shift_mask import WindowMasks, window_masks
from swincli.models.window import WindowGeometry, pad_to_windows, window_geometry, window_partition, window_reverse


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` with dropout after each layer."""

    def __init__(self, dim: int, hidden: int, *, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class SwinBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Pair,
        *,
        shift: Pair = (0, 0),
        version: int = 1,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        pretrained_window: Pair = (0, 0),
        rel_pos: bool = True,
    ) -> None:
        super().__init__()
        self.window, self.shift, self.version = tuple(window), tuple(shift), version
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window, version=version, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                    proj_drop=drop, pretrained_window=pretrained_window, rel_pos=rel_pos)  # fmt: skip
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self._derived = DerivedTensors()
        self.grad_checkpointing = False

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, H, W, C)`` for any H, W (padded to window multiples inside).

        With :attr:`grad_checkpointing` (and autograd on) each residual branch keeps only its input and is
        recomputed in the backward pass. Branch by branch rather than the whole block: the backward pass
        then holds one branch's activations at a time, the 4C-wide MLP's or the attention's, not both."""
        if self.grad_checkpointing and torch.is_grad_enabled():
            x = checkpoint(self.residual, x, self.attend, self.norm1, use_reentrant=False)
            return checkpoint(self.residual, x, self.mlp, self.norm2, use_reentrant=False)
        x = self.residual(x, self.attend, self.norm1)
        return self.residual(x, self.mlp, self.norm2)

    def residual(self, x: Tensor, branch: Callable[..., Tensor], norm: Callable[[Tensor], Tensor], fuse_add: bool = False) -> Tensor:
        """V1 (pre-norm): ``x + DropPath(branch(LN(x)))``; V2 (res-post-norm): ``x + DropPath(LN(branch(x)))``.

        ``fuse_add`` (V1, DropPath off): the branch adds ``x`` itself, ``branch(LN(x), x)``, e.g. in the
        write-back of its last GEMM (the blocked inference path).
        """
        if self.version == 1:
            return branch(norm(x), x) if fuse_add else x + self.drop_path(branch(norm(x)))
        return x + self.drop_path(norm(branch(x)))

    def attend(self, x: Tensor) -> Tensor:
        """(Shifted) window attention over a map ``(B, H, W, C)``: pad, roll, partition, attend, and back."""
        h, w = x.shape[1], x.shape[2]
        geo = self.geometry(h, w)
        x = pad_to_windows(x, geo)
        if any(geo.shift):
            x = torch.roll(x, (-geo.shift[0], -geo.shift[1]), dims=(1, 2))
        windows = self.attn(window_partition(x, self.window), self.shift_mask(geo, x.device))
        x = window_reverse(windows, self.window, *geo.size)
        if any(geo.shift):
            x = torch.roll(x, geo.shift, dims=(1, 2))
        return x[:, :h, :w, :].contiguous() if any(geo.pad) else x

    def geometry(self, height: int, width: int) -> WindowGeometry:
        return window_geometry(height, width, self.window, self.shift)

    def shift_mask(self, geo: WindowGeometry, device: torch.device) -> WindowMasks | None:
        """The shift mask of this padded size and shift, one per window pattern (None without a shift), kept
        between calls."""
        key = (geo.size, self.window, geo.shift, device)
        return self._derived.get("shift_mask", key, lambda: window_masks(geo.size, self.window, geo.shift, device))

    def set_window_size(self, window: Pair, shift: Pair, pretrained_window: Pair | None = None) -> None:
        """Use ``window`` (and ``shift``, zero for even blocks) from now on; see :meth:`WindowAttention.set_window_size`."""
        self.window, self.shift = tuple(window), tuple(shift)
        self.attn.set_window_size(window, pretrained_window)
        self._derived.clear()

    def init_respostnorm(self) -> None:
        """V2: zero the post-norms so the block starts as the identity (official initialisation)."""
        for norm in (self.norm1, self.norm2):
            nn.init.zeros_(norm.weight)
            nn.init.zeros_(norm.bias)
