"""The ``auto`` recipe: the default for ``--data``, with settings chosen from the data itself.

The official recipe is tuned for 1.28M ImageNet images and 300 epochs (750k steps). On a user's few
thousand images it fails for reasons that are each easy to name: the learning rate, scaled by
batch/512, is 16x too small for a run of a few thousand steps; random-resized crops down to 8% of the
area leave a 64 px image with nothing recognisable in it; RandAugment at magnitude 9, random erasing,
mixup and cutmix regularise a model that is still underfitting; and 20 warm-up epochs eat the run.

So the recipe looks at the number of training images, the input side and whether the weights start
pretrained, and picks each of those values by a rule (docs/training.md has the runs behind each
rule). At ImageNet scale (:data:`LARGE` images) the rules give the official values back. Every
choice is printed with the flag that overrides it; a flag the user gave is never touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from swincli.engine.recipes.fixed import RECIPES
from swincli.engine.train_config import LR_FIELDS

LARGE = 200_000  # training images from which the official recipe applies unchanged
SMALL = 20_000  # up to here: gentle augmentation, no mixup or cutmix
LR_FROM_SCRATCH = 1e-3  # at a total batch of 64 (scaled by sqrt(batch / 64)); 2e-3 is already less stable
LR_LORA = 3e-4  # at a total batch of 64; --lora takes 10x (engine/lora.py), measured on these values
# fine-tuning (docs/training.md, "Fine-tuning"): many small steps at a high rate that decays towards the
# input, and gentle crops. Measured on transfers to a new size and window (benchmarks/finetune_transfer.py)
LR_FINETUNE = 5e-4  # at a total batch of 8 (scaled by sqrt(batch / 8)): 1.4e-3 at 64, with LAYER_DECAY
LAYER_DECAY = 0.8  # the head at the full rate, each block below 0.8x the one above, the stem 0.8^(blocks + 1)
CROP_FINETUNE = 0.75  # the smallest crop's area; 0.5 cost 2.3 points in 3 epochs, 0.9 gained nothing
STEPS_FINETUNE = 200  # fine-tuning batch: the power of two from 8 to 64 that gives an epoch this many steps


@dataclass(frozen=True)
class DataStats:
    """What the recipe looks at: the run's training set and input side."""

    images: int
    classes: int
    side: int  # the model's input side in pixels (the smaller one)
    finetune: bool
    image_side: int | None = None  # the images' own (median shorter) side; None: not read (hf:, wds:)
    lora: bool = False  # adapters train: the fine-tuning values LoRA's 10x rate was measured on (LR_LORA)


def auto_settings(stats: DataStats, batch_size: int | None, multiplier: int, epochs: int | None) -> tuple[dict[str, Any], str]:
    """The recipe's values for this data and a one-line reason. Learning rates are for the total batch:
    ``batch_size`` (the user's, else the recipe's) x ``multiplier`` (processes x accumulation steps)."""
    if stats.images >= LARGE:
        base = dict(RECIPES["finetune" if stats.finetune else "official"])
        total_batch = (batch_size or base["batch_size"]) * multiplier
        for key in LR_FIELDS:
            base[key] = base[key] * total_batch / 512
        return base, f"{stats.images:,} images: ImageNet scale, the official {'fine-tuning ' if stats.finetune else ''}recipe"
    small = stats.images <= SMALL
    batch = batch_size or _whole_batch(stats.images, multiplier)
    total_batch = batch * multiplier
    lr = (LR_LORA if stats.finetune else LR_FROM_SCRATCH) * math.sqrt(total_batch / 64)
    epochs = epochs or (30 if stats.finetune else 50 if small else 100)
    values: dict[str, Any] = dict(
        epochs=epochs, batch_size=batch, lr=lr, min_lr=lr / 100, warmup_lr=lr / 1000,
        warmup_epochs=min(5.0, epochs / 10), weight_decay=0.05, smoothing=0.1, clip_grad=5.0,
        # small images lose the object under an 8% crop: the smallest crop grows as the side shrinks
        crop_scale=_crop_scale(stats.side),
        aa="none" if small else "rand-m9-mstd0.5-inc1",
        reprob=0.0 if small else 0.25,
        mixup=0.0 if small else 0.8,
        cutmix=0.0 if small else 1.0,
        drop_path=0.1,
    )  # fmt: skip
    if stats.finetune and not stats.lora:
        values.update(_finetune(stats.images, batch_size, multiplier))
    kind = "fine-tuning" if stats.finetune else "from scratch"
    return values, f"{stats.images:,} images, {stats.classes} classes, {stats.side} px, {kind}"


def _finetune(images: int, batch_size: int | None, multiplier: int) -> dict[str, Any]:
    """What fine-tuning changes: smaller batches (more steps), a higher rate with layer decay, gentler
    crops. A short run of a few thousand images must adapt in few steps, without losing what it knew."""
    batch = batch_size or next(b for b in (64, 32, 16, 8) if b == 8 or images // (b * multiplier) >= STEPS_FINETUNE)
    lr = LR_FINETUNE * math.sqrt(batch * multiplier / 8)
    return {"batch_size": batch, "lr": lr, "min_lr": lr / 100, "warmup_lr": lr / 1000, "layer_decay": LAYER_DECAY,
            "crop_scale": CROP_FINETUNE}  # fmt: skip


def _whole_batch(images: int, multiplier: int, largest: int = 64) -> int:
    """``largest``, halved until the data fills one batch: 24 images train at 16, not fail at 64."""
    batch = largest
    while batch > 1 and 0 < images < batch * multiplier:
        batch //= 2
    return batch


def _crop_scale(side: int) -> float:
    """0.08 (the official value) at 224 px and above, up to 0.6 at 64 px and below, linear in between."""
    if side >= 224:
        return 0.08
    if side <= 64:
        return 0.6
    return round(0.6 - (side - 64) / (224 - 64) * (0.6 - 0.08), 2)


# the settings the recipe chooses and the flag that overrides each, in the order the note lists them
CHOSEN = (("batch_size", "--batch-size"), ("lr", "--lr"), ("layer_decay", "--layer-decay"),
          ("warmup_epochs", "--warmup-epochs"), ("epochs", "--epochs"), ("crop_scale", "--crop-scale"),
          ("aa", "--aa"), ("reprob", "--reprob"), ("mixup", "--mixup"), ("cutmix", "--cutmix"),
          ("drop_path", "--drop-path"))  # fmt: skip


def describe(values: dict[str, Any], chosen: list[str]) -> str:
    """``lr 2.0e-03 (--lr), ...`` for the settings the recipe chose (not those the user gave)."""
    parts = []
    for key, flag in CHOSEN:
        if key not in chosen:
            continue
        value = values[key]
        shown = f"{value:.1e}" if key == "lr" else ("off" if value in (0, 0.0, "none") and key != "drop_path" else f"{value:g}"
                                                    if isinstance(value, float) else str(value))  # fmt: skip
        parts.append(f"{key.replace('_', ' ')} {shown} ({flag})")
    return ", ".join(parts)
