"""Swin V1 relative position bias: a learned table of (2M-1)^2 entries per head.

Every query-key pair in a window looks up the entry for its relative offset; the index that does the
lookup is derived from the window alone, so it is rebuilt, never stored.
"""

from __future__ import annotations

import torch
from torch import Tensor

from swincli.models.config import Pair


def relative_position_index(window: Pair) -> Tensor:
    """``(N, N)`` index into the flattened ``(2wh-1) x (2ww-1)`` table, offsets taken query minus key."""
    wh, ww = window
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (rel[..., 0] + wh - 1) * (2 * ww - 1) + (rel[..., 1] + ww - 1)


def table_size(window: Pair) -> int:
    return (2 * window[0] - 1) * (2 * window[1] - 1)


def gather_bias(table: Tensor, index: Tensor) -> Tensor:
    """``table`` ``(T, heads)`` -> bias ``(heads, N, N)``."""
    n = index.shape[0]
    return table[index.reshape(-1)].view(n, n, -1).permute(2, 0, 1)
