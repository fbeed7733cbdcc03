"""Counts and costs in messages: ``1 epoch`` and ``2 epochs``, ``4.5 GMACs`` and ``0.012 GMACs``."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """``count`` with ``word`` in the singular for 1 and the plural otherwise (``words``, else ``word + "s"``)."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def giga(value: float, decimals: int = 1) -> str:
    """A count in billions, never a misleading zero: ``47.1``, ``4.5``, and below 1 two significant digits
    (``0.3``, ``0.012``)."""
    g = value / 1e9
    return f"{g:.{decimals}f}" if g >= 1 or g == 0 else f"{g:.2g}"
