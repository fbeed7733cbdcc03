"""Tensors a module derives from its geometry or weights (masks, gather indices), kept between calls.

A cache entry lives until its key changes; keys name everything the tensor depends on (sizes, window,
shift, device, dtype, and the version counters of the parameters it was computed from), so a resize,
``.to()`` or an in-place weight update is never served a stale tensor. While ``torch.compile`` traces,
nothing is cached: the graph computes the tensor inline, and filling a cache from inside the graph
would change what the graph reads and force a recompile on the next call.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor


class DerivedTensors:
    """A few named cache slots, one entry each (the most recent key)."""

    def __init__(self) -> None:
        self._slots: dict[str, tuple[Any, Any]] = {}

    def get(self, name: str, key: Any, make: Callable[[], Any]) -> Any:
        if torch.compiler.is_compiling():
            return make()
        hit = self._slots.get(name)
        if hit is None or hit[0] != key:
            hit = (key, make())
            self._slots[name] = hit
        return hit[1]

    def clear(self) -> None:
        self._slots.clear()


def version_key(tensors: list[Tensor]) -> tuple:
    """What identifies the current values of ``tensors``: storage and in-place version counter."""
    return tuple((t.data_ptr(), t._version, t.dtype) for t in tensors)
