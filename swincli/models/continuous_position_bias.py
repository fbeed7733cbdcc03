"""Swin V2 log-spaced continuous position bias (CPB).

A small MLP maps each relative offset to a bias per head. Offsets are normalised by the *pretrained*
window and log-spaced, so a model trained with small windows extrapolates gently to larger ones
(paper V2, section 3.3): the MLP is the only learned part and it does not depend on the window.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from swincli.models.config import Pair
from swincli.models.relative_position_bias import gather_bias

CPB_HIDDEN = 512


def cpb_mlp(num_heads: int) -> nn.Sequential:
    """2 -> 512 -> heads, with the official module indices (0, 2) so checkpoints map by name."""
    return nn.Sequential(nn.Linear(2, CPB_HIDDEN, bias=True), nn.ReLU(inplace=True), nn.Linear(CPB_HIDDEN, num_heads, bias=False))


def log_spaced_coords(window: Pair, pretrained_window: Pair = (0, 0)) -> Tensor:
    """``(1, 2wh-1, 2ww-1, 2)`` table of normalised, log-spaced offsets (channel 0 = dh, 1 = dw)."""
    axes = []
    for size, pre in zip(window, pretrained_window):
        offsets = torch.arange(-(size - 1), size, dtype=torch.float32)
        norm = pre - 1 if pre > 0 else size - 1
        axes.append(offsets / max(norm, 1))  # a window of 1 has only the offset 0
    table = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)[None] * 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)


def continuous_bias(mlp: nn.Module, coords: Tensor, index: Tensor) -> Tensor:
    """Bias ``(heads, N, N)`` = 16 * sigmoid(MLP(offset)). The sigmoid runs on the table of offsets before
    the gather: the same numbers, but autograd keeps a ``(T, heads)`` table, not ``(heads, N, N)`` copies."""
    table = mlp(coords.to(next(mlp.parameters()).dtype)).flatten(0, 2)  # (T, heads)
    return gather_bias(16 * torch.sigmoid(table), index)
