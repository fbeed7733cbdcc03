"""timm >= 0.9 layout: patch merging at the *start* of the next stage, classifier in ``head.fc``.

timm's own filter tells the two layouts apart by whether stage 0 owns a patch merging; the head can't
be used because headless checkpoints have none.
"""

from __future__ import annotations

import re

from torch import Tensor

from swincli.convert.buffers import is_derived

_DOWN = re.compile(r"^layers\.(\d+)\.downsample\.")


def _shift_stage(key: str, delta: int) -> str:
    return _DOWN.sub(lambda m: f"layers.{int(m.group(1)) + delta}.downsample.", key)


def from_timm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """timm state dict -> ours (derived buffers dropped)."""
    out = {}
    for key, value in state.items():
        if is_derived(key):
            continue
        key = _shift_stage(key, -1)
        out["head." + key[len("head.fc.") :] if key.startswith("head.fc.") else key] = value
    return out


def to_timm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Ours -> timm state dict."""
    out = {}
    for key, value in state.items():
        key = _shift_stage(key, +1)
        out["head.fc." + key[len("head.") :] if key.startswith("head.") else key] = value
    return out
