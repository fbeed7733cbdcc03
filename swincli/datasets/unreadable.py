"""Images that fail to decode in the middle of a run: skipped, counted and named, never fatal.

The start-up check (``folder.probe``) reads headers only, so a JPEG cut short passes it and fails
when its pixels are decoded, epochs later. Decoding every image up front would double the first
epoch, so the datasets return an :class:`Unreadable` marker in its place instead, the transforms
pass it through, and :func:`collate` drops it from the batch and hands it to the training loop or
the evaluation, which count it in the metrics and list the paths at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import default_collate

from swincli.wording import plural


@dataclass(frozen=True)
class Unreadable:
    path: str
    reason: str


def reason(exc: BaseException) -> str:
    text = str(exc)
    if "truncated" in text.lower():
        return "truncated image"
    return f"{type(exc).__name__}: {text[:80]}" if text else type(exc).__name__


def collate(items: list) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, Unreadable]]]:
    """``(images, labels, skipped)``: the readable samples batched; the unreadable ones listed with
    their position in the batch, so a caller can still line the rest up with its sampler."""
    skipped = [(i, image) for i, (image, _) in enumerate(items) if isinstance(image, Unreadable)]
    ok = [item for item in items if not isinstance(item[0], Unreadable)]
    if not ok:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    x, y = default_collate(ok)
    return x, y, skipped


def skipped_message(items: list, what: str, shown: int = 3) -> str:
    """One line for images left out: ``skipped 7 images that failed to decode: a.jpg (truncated image),
    ... and 4 more``. ``items`` are ``(path, reason)`` pairs; ``what`` says why and where."""
    listing = ", ".join(f"{getattr(path, 'name', path)} ({why})" for path, why in items[:shown])
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"skipped {plural(len(items), 'image')} {what}: {listing}{more}"
