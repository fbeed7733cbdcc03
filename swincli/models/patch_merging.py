"""Patch merging: concatenate each 2x2 group of tokens (4C) and project to 2C, halving the map.

The concatenation order is the official one, (0,0), (1,0), (0,1), (1,1) as (row, column) offsets, so
weights transfer between implementations. V1 normalises the 4C vector before the projection, V2 the
2C result after it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PatchMerging(nn.Module):
    def __init__(self, dim: int, version: int = 1) -> None:
        super().__init__()
        self.version = version
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim if version == 1 else 2 * dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, H, W, C)`` -> ``(B, ceil(H/2), ceil(W/2), 2C)``; odd sizes are zero-padded."""
        _, h, w, c = x.shape
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
            h, w = h + h % 2, w + w % 2
        # (B, H/2, 2, W/2, 2, C) -> (B, H/2, W/2, col, row, C): flattening gives the official order
        x = x.reshape(-1, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        if self.version == 1:
            return self.reduction(self.norm(x))
        return self.norm(self.reduction(x))
