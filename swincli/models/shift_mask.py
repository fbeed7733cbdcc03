"""The attention mask that makes shifted windows exact after a cyclic shift.

After ``roll(-s)`` a window at the bottom/right edge holds tokens from up to four regions of the image
that are not neighbours. The mask adds -100 (the official value, not -inf) between tokens of different
regions, so the number of windows stays the same as without shifting (paper, section 3.2).
"""

from __future__ import annotations

import torch
from torch import Tensor

from swincli.models.config import Pair
from swincli.models.window import window_partition

MASK_VALUE = -100.0


def _region_ids(length: int, window: int, shift: int, device: torch.device) -> Tensor:
    """Region of each position along one axis: [0, L-M) -> 0, [L-M, L-s) -> 1, [L-s, L) -> 2."""
    pos = torch.arange(length, device=device)
    return (pos >= length - window).long() + (pos >= length - shift).long() * int(shift > 0)


def shift_mask(size: Pair, window: Pair, shift: Pair, device: torch.device | None = None) -> Tensor | None:
    """Additive mask ``(nW, N, N)`` for a (padded) map ``size``, or None when nothing is shifted."""
    if shift[0] == 0 and shift[1] == 0:
        return None
    h, w = size
    rows = _region_ids(h, window[0], shift[0], device)
    cols = _region_ids(w, window[1], shift[1], device)
    labels = (rows[:, None] * 3 + cols[None, :]).float()  # (H, W), same numbering as the official slices
    windows = window_partition(labels[None, :, :, None], window)[0, :, :, 0]  # (nW, N)
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.zeros_like(diff).masked_fill_(diff != 0, MASK_VALUE)
