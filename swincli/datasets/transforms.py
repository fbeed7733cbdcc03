"""Train and eval transforms (torchvision transforms v2), seeded per sample for exact resume.

Train: random resized crop (bicubic), horizontal flip, RandAugment, normalise, random erasing; mixup
and cutmix act on whole batches. Eval: resize by the crop fraction, centre crop, normalise: exactly
what a checkpoint's preprocessing metadata describes, so eval and predict agree image by image.

Every random decision of a sample is drawn from a generator seeded by (seed, epoch, index), inside
a forked RNG, so the augmentation of an image does not depend on which worker loads it or on what
ran before: that is what lets a killed run resume bit for bit.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import torch
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode, v2

from swincli.datasets.unreadable import Unreadable
from swincli.errors import SwinUsageError

INTERPOLATION = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
                 "nearest": InterpolationMode.NEAREST}  # fmt: skip


def mix_seed(*parts: int) -> int:
    """A stable 63-bit seed from integers (Python's hash() is salted per process)."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (int(part) + 0x9E3779B97F4A7C15 + (value << 6) + (value >> 2))) & 0xFFFFFFFFFFFFFFFF
    return value & 0x7FFFFFFFFFFFFFFF


class MagnitudeNoiseRandAugment(v2.RandAugment):
    """RandAugment whose magnitude is drawn per image from N(m, mstd) (timm's ``mstd``), clipped to [0, 10]."""

    def __init__(self, num_ops: int, magnitude: float, mstd: float, interpolation) -> None:
        super().__init__(num_ops=num_ops, magnitude=round(magnitude * 3), num_magnitude_bins=31,
                         interpolation=interpolation)  # fmt: skip
        self.mean_magnitude, self.mstd = magnitude, mstd

    def forward(self, *inputs: Any) -> Any:
        if self.mstd > 0:
            m = min(10.0, max(0.0, self.mean_magnitude + self.mstd * torch.randn(()).item()))
            self.magnitude = round(m * 3)  # 31 bins span timm's 0..10 magnitude scale
        return super().forward(*inputs)


def parse_aa(spec: str | None, interpolation) -> v2.Transform | None:
    """``rand-m9-mstd0.5-inc1`` (timm's spelling) -> RandAugment; ``none`` -> None."""
    if spec is None or spec.lower() in ("none", "", "off"):
        return None
    if not spec.startswith("rand"):
        raise SwinUsageError(f"unsupported --aa {spec!r}", hint="use a RandAugment spec like rand-m9-mstd0.5, or none")
    fields = dict(re.findall(r"-(n|m|mstd|inc)([\d.]+)", spec))
    return MagnitudeNoiseRandAugment(int(fields.get("n", 2)), float(fields.get("m", 9)), float(fields.get("mstd", 0)),
                                     interpolation)  # fmt: skip


def train_transform(size: tuple[int, int], aa: str | None, reprob: float, mean, std,
                    interpolation: str = "bicubic", scale=(0.08, 1.0), vflip: bool = False) -> Callable:  # fmt: skip
    mode = INTERPOLATION[interpolation]
    # geometry and RandAugment on the PIL image: Pillow has bicubic for rotations and shears, tensors don't
    crop = (v2.Resize(size, interpolation=mode, antialias=True) if tuple(scale) == (1.0, 1.0)
            else v2.RandomResizedCrop(size, scale=scale, interpolation=mode, antialias=True))  # fmt: skip
    steps: list[Any] = [crop, v2.RandomHorizontalFlip()] + ([v2.RandomVerticalFlip()] if vflip else [])
    augment = parse_aa(aa, mode)
    if augment is not None:
        steps.append(augment)
    steps += [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    if reprob > 0:
        steps.append(v2.RandomErasing(p=reprob, value="random"))
    return v2.Compose(steps)


def eval_transform_for(model) -> Callable:
    """The evaluation preprocessing ``model`` (a checkpoint or an exported file) was trained with."""
    from swincli.checkpoint import Preprocessing

    prep = model.preprocessing or Preprocessing.for_config(model.config)
    return eval_transform(model.config.image_hw, prep.crop_pct, prep.mean, prep.std, prep.interpolation)


def eval_transform(size: tuple[int, int], crop_pct: float, mean, std, interpolation: str = "bicubic") -> Callable:
    """Resize to size / crop_pct (the short side for square crops), then centre-crop to size."""
    h, w = size
    resize = int(h / crop_pct) if h == w else (int(h / crop_pct), int(w / crop_pct))
    return v2.Compose([
        v2.PILToTensor(), v2.Resize(resize, interpolation=INTERPOLATION[interpolation], antialias=True),
        v2.CenterCrop(size), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std),
    ])  # fmt: skip


class Augmented(Dataset):
    """Applies ``transform`` to ``base[i]`` with randomness seeded by (seed, epoch, i).

    Seeding sets the global RNG of the process that loads the sample: harmless in a DataLoader
    worker; in the main process the caller wraps each batch in ``torch.random.fork_rng`` (one fork
    per batch is far cheaper than one per image)."""

    def __init__(self, base: Dataset, transform: Callable, seed: int = 0) -> None:
        self.base, self.transform, self.seed, self.epoch = base, transform, seed, 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        if isinstance(image, Unreadable):
            return image, label
        # the CPU generator directly: torch.manual_seed() also seeds every accelerator backend and
        # records stack traces for lazy initialisation, ~1.5 ms a call, which would dominate the loading
        torch.default_generator.manual_seed(mix_seed(self.seed, self.epoch, index))
        return self.transform(image), label


class Transformed(Dataset):
    """Deterministic transform (evaluation)."""

    def __init__(self, base: Dataset, transform: Callable) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return (image if isinstance(image, Unreadable) else self.transform(image)), label


class BatchMix:
    """Mixup / cutmix (switching with probability 0.5) and label smoothing, as soft targets."""

    def __init__(self, mixup: float, cutmix: float, smoothing: float, num_classes: int) -> None:
        self.smoothing, self.num_classes = smoothing, num_classes
        choices = [t for a, t in ((mixup, v2.MixUp), (cutmix, v2.CutMix)) if a > 0]
        alphas = [a for a in (mixup, cutmix) if a > 0]
        self.mix = v2.RandomChoice([t(alpha=a, num_classes=num_classes) for t, a in zip(choices, alphas)]) if choices else None

    @property
    def active(self) -> bool:
        return self.mix is not None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            x, target = self.mix(x, y)
        return x, target * (1 - self.smoothing) + self.smoothing / self.num_classes
