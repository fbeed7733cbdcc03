"""Sizes and windows as people write them: ``384``, ``256x320``, ``12``, ``7x9``, ``12,12,12,6``.

Flags, config files and the Python API all take these forms (the API also takes ints and tuples), so
each is parsed and bounded in one place before any model is built.
"""

from __future__ import annotations

from typing import Any

from swincli.errors import SwinUsageError
from swincli.limits import MAX_SIDE


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"384"`` -> (384, 384); ``"256x320"`` or ``"256,320"`` -> (256, 320)."""
    if text is None:
        return None
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise SwinUsageError(f"invalid size {text!r}", hint="use S or HxW, e.g. 384 or 256x320") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise SwinUsageError(f"invalid size {text!r}", hint="use S or HxW, e.g. 384 or 256x320")
    if max(values) > MAX_SIDE:
        raise SwinUsageError(f"size {text} is larger than {MAX_SIDE} pixels a side",
                             hint=f"Swin is used up to {MAX_SIDE}x{MAX_SIDE} (the V2 paper's largest transfer)")  # fmt: skip
    return values[0], values[1]


def parse_window(text: str | None):
    """``"12"`` -> 12; ``"7x9"`` -> (7, 9); ``"12,12,12,6"`` -> one window per stage."""
    if text is None:
        return None
    hint = "use W, HxW or one value per stage, e.g. 12, 7x9 or 12,12,12,6"
    try:
        stages = [
            tuple(int(v) for v in part.split("x")) if "x" in part else int(part)
            for part in text.lower().split(",")
        ]
    except ValueError:
        raise SwinUsageError(f"invalid window {text!r}", hint=hint) from None
    flat = [v for s in stages for v in (s if isinstance(s, tuple) else (s,))]
    if min(flat) < 1 or any(isinstance(s, tuple) and len(s) != 2 for s in stages):
        raise SwinUsageError(f"invalid window {text!r}", hint=hint)
    if max(flat) > MAX_SIDE:
        raise SwinUsageError(f"window {text} is larger than {MAX_SIDE}",
                             hint="a window larger than the feature map is clipped to it: give at most the map size")  # fmt: skip
    return stages[0] if len(stages) == 1 else stages


def size_value(value: Any) -> Any:
    """A size as the API takes it: text is parsed (:func:`parse_size`), ints and pairs pass through."""
    return parse_size(value) if isinstance(value, str) else value


def window_value(value: Any) -> Any:
    """A window as the API takes it: text is parsed (:func:`parse_window`), ints, pairs and lists pass through."""
    return parse_window(value) if isinstance(value, str) else value


def pair_text(pair) -> str:
    """``(7, 7)`` -> ``7``, ``(7, 9)`` -> ``7x9``: a size, window or shift as people write it."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"
