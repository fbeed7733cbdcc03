"""The attention mask that makes shifted windows exact after a cyclic shift.

After ``roll(-s)`` a window at the bottom/right edge holds tokens from up to four regions of the image
that are not neighbours. The mask adds -100 (the official value, not -inf) between tokens of different
regions, so the number of windows stays the same as without shifting (paper, section 3.2).

Only windows on the last row or column of windows see more than one region: every interior window
needs no mask, and the edge windows share at most three patterns (right edge, bottom edge, corner).
:func:`window_masks` keeps one ``(N, N)`` mask per distinct pattern and each window's pattern, so a
1024 px map at window 32 (64 windows of 1024 tokens) holds 4 masks instead of 64; :func:`shift_mask`
is the whole ``(nW, N, N)`` tensor, for the reference formula and the official checkpoint layout.
"""

from __future__ import annotations

import torch
from typing import NamedTuple

from torch import Tensor

from swincli.models.config import Pair
from swincli.models.window import window_partition

MASK_VALUE = -100.0


def _region_ids(length: int, window: int, shift: int, device: torch.device) -> Tensor:
    """Region of each position along one axis: [0, L-M) -> 0, [L-M, L-s) -> 1, [L-s, L) -> 2."""
    pos = torch.arange(length, device=device)
    return (pos >= length - window).long() + (pos >= length - shift).long() * int(shift > 0)


def _window_labels(size: Pair, window: Pair, shift: Pair, device: torch.device | None) -> Tensor:
    """Region of every token, window by window: ``(nW, N)``, the numbering of the official slices."""
    rows = _region_ids(size[0], window[0], shift[0], device)
    cols = _region_ids(size[1], window[1], shift[1], device)
    labels = (rows[:, None] * 3 + cols[None, :]).float()  # (H, W)
    return window_partition(labels[None, :, :, None], window)[0, :, :, 0]


def _masks(labels: Tensor) -> Tensor:
    """``(k, N)`` region labels -> ``(k, N, N)`` additive masks: -100 between tokens of different regions."""
    diff = labels[:, None, :] - labels[:, :, None]
    return torch.zeros_like(diff).masked_fill_(diff != 0, MASK_VALUE)


def shift_mask(size: Pair, window: Pair, shift: Pair, device: torch.device | None = None) -> Tensor | None:
    """Additive mask ``(nW, N, N)`` for a (padded) map ``size``, or None when nothing is shifted."""
    if shift[0] == 0 and shift[1] == 0:
        return None
    return _masks(_window_labels(size, window, shift, device))


class WindowMasks(NamedTuple):
    """The shift mask of a map, one ``(N, N)`` per distinct window pattern (module docstring)."""

    patterns: Tensor  # (P, N, N); pattern 0 is all zeros, the interior windows'
    index: Tensor  # (nW,) long: each window's pattern, on the masks' device
    ids: tuple[int, ...]  # the same, as Python ints: which windows need a mask is known without a device sync

    @property
    def num_windows(self) -> int:
        return len(self.ids)

    def windows(self, start: int, stop: int) -> Tensor | None:
        """The masks ``(k, N, N)`` of windows ``start..stop-1`` (a chunk-sized copy), or None if all are interior."""
        if not any(self.ids[start:stop]):
            return None
        return self.patterns.index_select(0, self.index[start:stop])

    @classmethod
    def per_window(cls, masks: Tensor) -> "WindowMasks":
        """Masks ``(nW, N, N)`` that differ window by window, kept as they are (e.g. a padding scheme's)."""
        patterns = torch.cat((torch.zeros_like(masks[:1]), masks))
        ids = tuple(range(1, masks.shape[0] + 1))
        return cls(patterns, torch.tensor(ids, dtype=torch.long, device=masks.device), ids)

    def dense(self) -> Tensor:
        """Every window's mask, ``(nW, N, N)``: equal to :func:`shift_mask`."""
        return self.patterns.index_select(0, self.index)


def window_masks(size: Pair, window: Pair, shift: Pair, device: torch.device | None = None) -> WindowMasks | None:
    """:func:`shift_mask` kept per distinct window pattern, never built for the whole map; None without a shift.

    The region boundaries at ``L - M`` fall on window edges, so only the last row and column of windows mix
    regions: pattern 0 is an interior window, 1 the right edge, 2 the bottom edge, 3 the corner. Which
    window has which pattern is plain arithmetic, so a traced or exported graph holds no data-dependent step.
    """
    if shift[0] == 0 and shift[1] == 0:
        return None
    rows = _region_ids(size[0], window[0], shift[0], device)
    cols = _region_ids(size[1], window[1], shift[1], device)
    nh, nw = size[0] // window[0], size[1] // window[1]
    labels = []
    for pattern in range(4):  # the labels of one window of each pattern
        r = (nh - 1 if pattern & 2 else 0) * window[0]
        c = (nw - 1 if pattern & 1 else 0) * window[1]
        labels.append((rows[r : r + window[0], None] * 3 + cols[None, c : c + window[1]]).reshape(-1).float())
    ids = tuple(2 * (r == nh - 1 and shift[0] > 0) + (c == nw - 1 and shift[1] > 0) for r in range(nh) for c in range(nw))
    return WindowMasks(_masks(torch.stack(labels)), torch.tensor(ids, dtype=torch.long, device=device), ids)
