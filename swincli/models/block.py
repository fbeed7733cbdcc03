"""The Swin Transformer block: (shifted) window attention and an MLP, each with a residual.

V1 normalises before each branch (pre-norm). V2 normalises each branch's output before adding it back
(res-post-norm), which keeps activations from growing with depth; its two norms start at zero, so every
block starts as the identity. Odd blocks of a stage shift the windows by half a window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swincli.models import blocked_inference
from swincli.models.attention import WindowAttention
from swincli.models.config import Pair
from swincli.models.onednn import linear
from swincli.models.window import window_partition, window_reverse


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
    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        """``fc2(GELU(fc1(x)))``; ``residual`` (eval only) is added inside ``fc2``."""
        h = self.drop(linear(x, self.fc1.weight, self.fc1.bias, gelu=True))
        if residual is not None:
            return linear(h, self.fc2.weight, self.fc2.bias, residual=residual)
        return self.drop(linear(h, self.fc2.weight, self.fc2.bias))


class SwinBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Pair,
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
        self.attn = WindowAttention(dim, num_heads, window, version, qkv_bias, attn_drop, drop, pretrained_window, rel_pos)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, H, W, C)`` for any H, W (padded to window multiples inside)."""
        if blocked_inference.applies(self, x):
            return blocked_inference.run_block(self, x)
        if self.version == 1:
            x = x + self.drop_path(self.attend(self.norm1(x)))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        x = x + self.drop_path(self.norm1(self.attend(x)))
        return x + self.drop_path(self.norm2(self.mlp(x)))

    def attend(self, x: Tensor) -> Tensor:
        h, w = x.shape[1], x.shape[2]
        wh, ww = self.window
        pad_h, pad_w = (-h) % wh, (-w) % ww
        if pad_h or pad_w:  # pad first, then shift: the official detection/segmentation order
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        shift = (self.shift[0] if hp > wh else 0, self.shift[1] if wp > ww else 0)
        if shift[0] or shift[1]:
            x = torch.roll(x, (-shift[0], -shift[1]), dims=(1, 2))
        windows = self.attn(window_partition(x, self.window), (hp, wp), shift)
        x = window_reverse(windows, self.window, hp, wp)
        if shift[0] or shift[1]:
            x = torch.roll(x, shift, dims=(1, 2))
        if pad_h or pad_w:
            x = x[:, :h, :w, :].contiguous()
        return x

    def init_respostnorm(self) -> None:
        """V2: zero the post-norms so the block starts as the identity (official initialisation)."""
        for norm in (self.norm1, self.norm2):
            nn.init.zeros_(norm.weight)
            nn.init.zeros_(norm.bias)
