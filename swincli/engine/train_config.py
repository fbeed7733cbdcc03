"""The settings of a training run (:class:`TrainConfig`) and the check that each is in its flag's domain.

Every option starts as None ("not given"); a recipe (:mod:`swincli.engine.recipes`) fills in what the
user left unset, so ``args.json`` holds the complete, resolved run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from swincli.errors import SwinUsageError
from swincli.limits import TRAIN


@dataclass
class TrainConfig:
    """Every setting of a run; each field but ``notes`` has a ``swin train`` flag of the same name."""

    # what to train
    model: str | None = None
    checkpoint: str | None = None  # finetune: start from these weights
    data: str | None = None  # image folder, torchvision dataset name, or None for the built-in set
    val_split: float | None = None
    image_column: str | None = None  # --data hf:...: the column of images (default: the Image feature)
    label_column: str | None = None  # --data hf:...: the column of labels (default: the ClassLabel feature)
    epoch_size: int | None = None  # --data wds:...: samples an epoch, instead of counting the shards at the start
    size: Any = None
    window: Any = None
    # schedule
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    min_lr: float | None = None
    warmup_lr: float | None = None
    warmup_epochs: float | None = None
    weight_decay: float | None = None
    layer_decay: float | None = None
    freeze: bool = False  # linear probe: train the head only
    lora: int | None = None  # finetune: train rank-R LoRA adapters, norms and head (engine/lora.py); None: off
    lora_alpha: float | None = None  # the adapters' scale is alpha / R (default alpha = R)
    lora_dropout: float | None = None  # dropout on the adapters' input (default 0)
    lora_targets: str | None = None  # comma list of Linear layer names (default qkv,proj,fc1,fc2)
    # regularisation and augmentation
    drop_path: float | None = None
    smoothing: float | None = None
    mixup: float | None = None
    cutmix: float | None = None
    aa: str | None = None
    reprob: float | None = None
    crop_scale: float | None = None  # smallest area fraction of the random-resized crop (official: 0.08)
    clip_grad: float | None = None
    # mechanics
    accum_steps: int = 1
    amp: str | None = None
    grad_checkpointing: bool = False
    attn_chunk: int | None = None
    attn_chunk_stages: str | None = None  # "1,2" (1-based) or "all"; None: the first two stages
    memory_budget: str | None = None  # "8GiB": the cheapest memory tricks whose estimated peak fits (memory_plan.py)
    ema: float | None = None
    compile: bool = False
    workers: int | None = None  # None: chosen from the data and the free cores (threads.py)
    threads: int | None = None  # torch compute threads; None: the cores no other process keeps busy
    seed: int = 0
    device: str | None = None
    output: str | None = None
    force: bool = False  # start over in an output directory that holds an earlier run
    resume: str | None = None
    save_every: int | None = None  # also save the resume state every N optimizer steps
    fsdp: bool = False
    zero: bool = False
    recipe: str | None = None
    max_steps: int | None = None  # stop after this many optimizer steps (smoke tests, profiling)
    log: list[str] | None = None  # run trackers: tensorboard, mlflow (engine/tracking/factory.py)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Settings saved by a run (``args.json``, the resume state); fields of older versions are dropped."""
        data = {k: v for k, v in data.items() if k not in RETIRED}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SwinUsageError(f"unknown settings {unknown}", hint=f"known: {', '.join(sorted(known))}")
        return cls(**data)


LR_FIELDS = ("lr", "min_lr", "warmup_lr")  # the rates a recipe scales with the batch and LoRA multiplies

# fields older versions saved in args.json and the resume state: ignored, so their runs still resume
RETIRED = ("num_classes", "quiet")


def check_settings(values: dict[str, Any], where: str, flags: bool = False) -> dict[str, Any]:
    """Each value with its option's type and domain (``where`` prefixes the message: the file's name).

    Whole floats are taken for integers (``epochs: 10.0``) and integers for floats; ``size`` and
    ``window`` are checked where they are parsed. Unknown keys are left to the caller.
    """
    kinds = {f.name: str(f.type).split("|")[0].strip() for f in fields(TrainConfig)}
    out = dict(values)
    for key, value in values.items():
        name = f"{where}{key.replace('_', '-')}" if flags else f"{where}{key}"
        if value is None or key not in kinds or key in ("size", "window", "notes"):
            continue
        if kinds[key] == "bool" and not isinstance(value, bool):
            raise SwinUsageError(f"{name} must be true or false, got {value!r}")
        if kinds[key] == "str" and not isinstance(value, str):
            raise SwinUsageError(f"{name} must be a string, got {value!r}")
        domain = TRAIN.get(key)
        if domain is not None:
            if domain.kind is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            elif domain.kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            why = domain.problem(value)
            if why:
                raise SwinUsageError(f"{name} {why}")
            out[key] = value
    return out
