"""Recognising a state dict's layout from its key signatures."""

from __future__ import annotations

import re
from typing import Iterable

from swincli.errors import CheckpointError

LAYOUTS = ("swin", "official", "timm", "hf", "torchvision")
NAMES = {
    "swin": "swincli",
    "official": "official (Microsoft)",
    "timm": "timm",
    "hf": "Hugging Face",
    "torchvision": "torchvision",
}


def guess_layout(keys: Iterable[str]) -> str | None:
    """``"official" | "timm" | "hf" | "torchvision"`` or None. (Our own files are told by their metadata.)"""
    keys = list(keys)
    if any(k.startswith("features.0.0.") for k in keys):
        return "torchvision"
    if any(".attention.self." in k or k.startswith(("swin.embeddings.", "swinv2.embeddings.")) for k in keys):
        return "hf"
    body = [k.removeprefix("encoder.") for k in keys]  # SimMIM wraps the official encoder
    if not any(k.startswith("patch_embed.proj.") for k in body) or not any(re.match(r"layers\.\d+\.blocks\.", k) for k in body):
        return None
    stage0_merges = any(k.startswith("layers.0.downsample.") for k in body)
    later_merges = any(re.match(r"layers\.[1-9]\d*\.downsample\.", k) for k in body)
    if any(k.startswith("head.fc.") for k in body) or (later_merges and not stage0_merges):
        return "timm"
    return "official"


def detect_layout(keys: Iterable[str], source: str) -> str:
    keys = sorted(keys)
    layout = guess_layout(keys)
    if layout is None:
        sample = ", ".join(keys[:5]) + (f", ... ({len(keys)} keys)" if len(keys) > 5 else "")
        raise CheckpointError(
            f"{source} is not a Swin state dict in any known layout; its keys did not match: {sample}",
            hint="supported: official, timm, Hugging Face, torchvision and swincli checkpoints of Swin V1/V2",
        )
    return layout
