"""Window partition and its reverse: the non-overlapping M x M windows self-attention runs in.

Tokens stay channels-last ``(B, H, W, C)``. Windows keep the batch as their own leading dimension,
``(B, nW, N, C)``, and every reshape uses ``-1`` for the batch: computing it with a Python ``int()``
of a shape product freezes it into exported graphs (the official code's ONNX dynamic-batch bug).

:func:`window_geometry` is the one place that decides how a map of any size meets the window grid:
padding to window multiples at the bottom/right, and no shift along an axis one window covers.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor

from swincli.models.config import Pair


class WindowGeometry(NamedTuple):
    pad: Pair  # rows and columns of zeros added at the bottom and right
    size: Pair  # the padded map: multiples of the window
    shift: Pair  # the cyclic shift actually applied (0 where one window covers the axis)


def window_geometry(height: int, width: int, window: Pair, shift: Pair) -> WindowGeometry:
    """Pad first, then shift: the official detection/segmentation order."""
    wh, ww = window
    pad = ((-height) % wh, (-width) % ww)
    size = (height + pad[0], width + pad[1])
    return WindowGeometry(pad, size, (shift[0] if size[0] > wh else 0, shift[1] if size[1] > ww else 0))


def pad_to_windows(x: Tensor, geo: WindowGeometry) -> Tensor:
    """A map ``(B, H, W, C)`` padded with zeros at the bottom and right to ``geo.size`` (window multiples)."""
    return F.pad(x, (0, 0, 0, geo.pad[1], 0, geo.pad[0])) if any(geo.pad) else x


def window_partition(x: Tensor, window: Pair) -> Tensor:
    """``(B, H, W, C)`` -> ``(B, nW, wh*ww, C)``, windows in row-major order. H, W must be multiples."""
    _, h, w, c = x.shape
    wh, ww = window
    x = x.view(-1, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, (h // wh) * (w // ww), wh * ww, c)


def window_reverse(windows: Tensor, window: Pair, height: int, width: int) -> Tensor:
    """``(B, nW, wh*ww, C)`` -> ``(B, H, W, C)``: the inverse of :func:`window_partition`."""
    wh, ww = window
    c = windows.shape[-1]
    x = windows.view(-1, height // wh, width // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, height, width, c)
