"""The domain of every number a user can give: flags, config files and checkpoint metadata share it.

A value outside its domain is a one-line error before anything is allocated, never a crash deep in
torch (``--lr nan``), a silent wrong answer (``-k -1``) or a process the kernel kills (``--size
100000``). Pure Python: the CLI reads these tables to declare its options without importing torch
(:func:`swincli.cli.options.domain` turns a :class:`Range` into an option's help and check).

Bounds on sizes come from what Swin is used at, with room to spare: the registry's largest images
are 384 px, and the Swin V2 paper transfers up to 1536 x 1536 (COCO), so one side may be at most
:data:`MAX_SIDE` pixels. Architecture bounds sit above the registry's largest model (SwinV2-G: C=512,
42 blocks in a stage, 128 heads) so that custom models fit, but a corrupt file cannot ask for 1e9 blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_SIDE = 1536  # pixels per side of an input image; also the largest window, in tokens
MAX_BATCH = 65536
MAX_EPOCHS = 100_000
MAX_WORKERS = 1024
MAX_STEPS = 10**9
MAX_CLASSES = 1_000_000
MAX_EMBED_DIM = 4096
MAX_DEPTH = 64  # blocks in one stage
MAX_STAGES = 8
MAX_HEADS = 1024
MAX_PATCH = 64
MAX_CHANS = 64
MAX_MLP_RATIO = 64.0
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


@dataclass(frozen=True)
class Range:
    """An interval of ints or finite floats; ``lo_open``/``hi_open`` exclude the bound itself."""

    kind: type
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        if self.kind is int:
            if self.hi is None:
                return f"an integer >= {self.lo}"
            return f"an integer from {self.lo} to {self.hi}"
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"a finite number in {left}{self.lo:g}, {self.hi:g}{right}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is outside the domain (``None`` when it is inside)."""
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
            return f"must be an integer, got {value!r}"
        if self.kind is float and not is_number:
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"must be {self.describe()}, got {value!r}"
        low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        high = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        return f"must be {self.describe()}, got {value!r}" if low or high else None

    def short(self) -> str:
        """The domain for --help: ``1..65536`` or ``0 < x <= 10``."""
        if self.kind is int:
            return f"{self.lo}..{self.hi}"
        return f"{self.lo:g} {'<' if self.lo_open else '<='} x {'<' if self.hi_open else '<='} {self.hi:g}"


def ints(lo: int, hi: int) -> Range:
    return Range(int, lo, hi)


def floats(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Range:
    return Range(float, lo, hi, lo_open, hi_open)


BATCH = ints(1, MAX_BATCH)
WORKERS = ints(0, MAX_WORKERS)
TOP_K = ints(1, MAX_CLASSES)
ITERS = ints(0, MAX_STEPS)
CLASSES = ints(0, MAX_CLASSES)
STAGE = ints(1, MAX_STAGES)  # a stage by its 1-based number (--explain-layer)

# every numeric setting of swin train / finetune (flag, config file and TrainConfig alike)
TRAIN: dict[str, Range] = {
    "val_split": floats(0, 1, hi_open=True),
    "epoch_size": ints(1, 10**12),
    "epochs": ints(1, MAX_EPOCHS),
    "batch_size": BATCH,
    "lr": floats(0, 10, lo_open=True),
    "min_lr": floats(0, 10),
    "warmup_lr": floats(0, 10),
    "warmup_epochs": floats(0, MAX_EPOCHS),
    "weight_decay": floats(0, 10),
    "layer_decay": floats(0, 1, lo_open=True),
    "lora": ints(1, 4096),
    "lora_alpha": floats(0, 1e4, lo_open=True),
    "lora_dropout": floats(0, 1, hi_open=True),
    "drop_path": floats(0, 1, hi_open=True),
    "smoothing": floats(0, 1, hi_open=True),
    "mixup": floats(0, 100),
    "cutmix": floats(0, 100),
    "reprob": floats(0, 1),
    "crop_scale": floats(0, 1, lo_open=True),
    "clip_grad": floats(0, 1e6),
    "ema": floats(0, 1, lo_open=True, hi_open=True),
    "accum_steps": ints(1, MAX_BATCH),
    "attn_chunk": ints(1, 2**20),
    "workers": WORKERS,
    "threads": ints(1, 4096),
    "seed": ints(0, 2**32 - 1),  # numpy's and most tools' seed range
    "save_every": ints(1, MAX_STEPS),
    "max_steps": ints(1, MAX_STEPS),
}

# a checkpoint's (or sidecar's) preprocessing: read from files, so bounded like everything else in them
PREPROCESSING: dict[str, Range] = {
    "crop_pct": floats(0, 1, lo_open=True),
    "mean": floats(-1e6, 1e6),
    "std": floats(0, 1e6, lo_open=True),
}
