"""What every reader of ``--data`` returns (:class:`Data`), and the small pieces they share.

The readers (:mod:`~swincli.datasets.folder` trees, :mod:`~swincli.datasets.hf`,
:mod:`~swincli.datasets.wds`) depend on this module and on leaf helpers only; the factory that picks a
reader by the ``--data`` prefix (:mod:`swincli.datasets.build`) sits on top of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from swincli.datasets.transforms import mix_seed
from swincli.errors import SwinError


IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


DEFAULT_VAL_SPLIT = 0.1


@dataclass
class Data:
    train: Dataset
    val: Dataset | None
    classes: list[str]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    in_memory: bool = False  # decoded arrays, not files: loader workers would only add copies
    # wds: shards streamed by rank and loader worker (datasets/wds_stream.ShardStream; ``train`` is the same
    # object); None: a map-style ``train`` read through ResumableSampler
    stream: Any = None


def cache_dir() -> Path:
    return Path(os.environ.get("SWIN_CACHE", Path.home() / ".cache" / "swincli")) / "datasets"


def hold_out(full: Dataset, fraction: float, seed: int, where: str) -> tuple[Subset, Subset]:
    """(train, validation): a seeded ``fraction`` of ``full`` held out for validation."""
    g = torch.Generator().manual_seed(mix_seed(seed, 7))
    order = torch.randperm(len(full), generator=g).tolist()
    n_val = max(1, int(round(len(full) * fraction)))
    if n_val >= len(full):
        raise SwinError(f"{where} has too few images ({len(full)}) to hold out a validation split")
    return Subset(full, sorted(order[n_val:])), Subset(full, sorted(order[:n_val]))
