"""Training settings and the recipes that fill in what the user left unset.

Every option starts as None ("not given"); :func:`resolve` fills it from a recipe and records which
values came from where, so ``args.json`` holds the complete, resolved run and the CLI can print a
visible note for the defaults it chose. Recipes:

- ``official``: the Swin paper's ImageNet recipe (AdamW, lr 5e-4 x batch/512, wd 0.05, cosine with
  20 warm-up epochs, label smoothing 0.1, mixup 0.8, cutmix 1.0, RandAugment m9-mstd0.5, random
  erasing 0.25, grad clip 5, drop path per model size).
- ``finetune``: the official fine-tuning recipe (30 epochs, 5 warm-up, lr 2e-5 x batch/512, wd 1e-8,
  drop path 0.2).
- ``demo``: the built-in shapes dataset, sized to finish in about two minutes on a laptop CPU.
- ``auto`` (the default for ``--data``): values chosen from the data, see :mod:`swincli.engine.auto_recipe`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swincli.errors import SwinUsageError
from swincli.limits import MAX_SIDE, TRAIN
from swincli.models.config import to_pair

if TYPE_CHECKING:
    from swincli.engine.auto_recipe import DataStats


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
    ema: float | None = None
    compile: bool = False
    workers: int | None = None  # None: chosen from the data and the free cores (engine/threads.py)
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
    log: list[str] | None = None  # run trackers: tensorboard, mlflow (engine/tracking.py)
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


# fields older versions saved in args.json and the resume state: ignored, so their runs still resume
RETIRED = ("num_classes", "quiet")

RECIPES: dict[str, dict[str, Any]] = {
    "official": dict(
        epochs=300, batch_size=128, lr=5e-4, min_lr=5e-6, warmup_lr=5e-7, warmup_epochs=20, weight_decay=0.05,
        smoothing=0.1, mixup=0.8, cutmix=1.0, aa="rand-m9-mstd0.5-inc1", reprob=0.25, clip_grad=5.0, crop_scale=0.08,
    ),
    "finetune": dict(
        epochs=30, batch_size=64, lr=2e-5, min_lr=2e-7, warmup_lr=2e-8, warmup_epochs=5, weight_decay=1e-8,
        drop_path=0.2, smoothing=0.1, mixup=0.8, cutmix=1.0, aa="rand-m9-mstd0.5-inc1", reprob=0.25, clip_grad=5.0,
        crop_scale=0.08,
    ),
    # the built-in shapes set: 48 px, window 3 (stage maps 12, 6, 3, 2); tuned to pass 95% in ~2 CPU minutes
    "demo": dict(
        model="swin-nano", size=48, window=3, epochs=8, batch_size=64, lr=1.6e-2, min_lr=0.0, warmup_lr=0.0,
        warmup_epochs=0.3, weight_decay=0.05, drop_path=0.0, smoothing=0.0, mixup=0.0, cutmix=0.0, aa="none",
        reprob=0.0, clip_grad=5.0, crop_scale=1.0, workers=0,  # in-process: the rendered images stay cached across epochs
    ),
}
SCALED = ("lr", "min_lr", "warmup_lr")  # linearly scaled by total batch / 512, as the official code does


def resolve(cfg: TrainConfig, world_size: int = 1, finetune: bool = False, stats: "DataStats | None" = None) -> TrainConfig:
    """Fill unset options from the recipe. The ``auto`` recipe (the default for ``--data``) chooses its
    values from ``stats``; the fixed recipes' learning rates are scaled by total batch / 512."""
    name = cfg.recipe or ("demo" if cfg.data is None and not finetune else "auto")
    if name not in RECIPES and name != "auto":
        raise SwinUsageError(f"unknown recipe {name!r}", hint=f"choose one of auto, {', '.join(RECIPES)}")
    cfg.recipe = name
    if name == "auto":
        from swincli.engine.auto_recipe import DataStats, auto_settings, describe

        stats = stats or DataStats(images=0, classes=0, side=224, finetune=finetune)
        recipe, why = auto_settings(stats, cfg.batch_size, world_size * cfg.accum_steps, cfg.epochs)
    else:
        recipe = RECIPES[name]
    from_recipe = [key for key in recipe if getattr(cfg, key) is None]
    for key in from_recipe:
        setattr(cfg, key, recipe[key])
    total_batch = cfg.batch_size * world_size * cfg.accum_steps
    if name != "auto":  # by what was unset, not by value: an explicit --lr equal to the recipe's stays as given
        for key in SCALED:
            if key in from_recipe:
                setattr(cfg, key, recipe[key] * total_batch / 512)
    else:  # the auto values are already for this total batch
        cfg.notes.append(f"recipe auto ({why}): {describe(vars(cfg), from_recipe)}")
    if cfg.model is None and cfg.checkpoint is None:
        cfg.model = "swin-nano"
        cfg.notes.append("no --model given: using swin-nano")
    if cfg.warmup_epochs > cfg.epochs / 10 and name not in ("demo", "auto"):
        cfg.warmup_epochs = cfg.epochs / 10  # a short run should not spend its whole budget warming up
    if cfg.drop_path is None and cfg.model:  # the official per-size value (T 0.2, S 0.3, B 0.5, ...)
        from swincli.models.registry import get_entry

        cfg.drop_path = get_entry(cfg.model).config["drop_path_rate"]
    if cfg.model and not (finetune and cfg.checkpoint):  # size and window against the architecture, before any data
        from swincli.models.registry import get_entry

        get_entry(cfg.model).build_config(img_size=cfg.size, window_size=cfg.window, num_classes=1)
    if cfg.val_split is None:
        cfg.val_split = 0.0
    if name == "demo" and cfg.data is None:
        cfg.notes.append(
            f"no --data: training {cfg.model} on the built-in shapes dataset ({cfg.size} px, window {cfg.window}, "
            f"{cfg.epochs} epochs); pass --data DIR for your own images"
        )
    if name != "auto":
        cfg.notes.append(f"recipe {name}: lr {cfg.lr:.2e} for a total batch of {total_batch}")
    _check(cfg)
    return cfg


def _check(cfg: TrainConfig) -> None:
    """Every setting in its flag's domain (:data:`swincli.limits.TRAIN`), also when set from Python."""
    for key in ("epochs", "batch_size", "accum_steps"):
        if getattr(cfg, key) is None:
            raise SwinUsageError(f"--{key.replace('_', '-')} must be at least 1")
    check_settings({k: v for k, v in vars(cfg).items() if k in TRAIN}, "--", flags=True)
    if cfg.size is not None and max(to_pair(cfg.size, "size")) > MAX_SIDE:
        raise SwinUsageError(f"--size {cfg.size} is larger than {MAX_SIDE} pixels a side")
    if cfg.amp not in (None, "bf16", "fp16", "none"):
        raise SwinUsageError(f"--amp must be bf16, fp16 or none, got {cfg.amp!r}")
    if cfg.fsdp and cfg.zero:
        raise SwinUsageError("--fsdp and --zero are alternatives", hint="FSDP already shards the optimizer state")
    if not 0.0 <= cfg.val_split < 1.0:
        raise SwinUsageError("--val-split must be in [0, 1)")
    if cfg.layer_decay is not None and not 0.0 < cfg.layer_decay <= 1.0:
        raise SwinUsageError("--layer-decay must be in (0, 1]")


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


# ---------------------------------------------------------------------- --config recipe.yaml
_SCALAR = re.compile(r"^(true|false|yes|no|null|~)$", re.IGNORECASE)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A flat ``key: value`` YAML (or JSON) file of option names; its values become defaults, flags win.

    Supports the subset settings files need: comments, scalars, quoted strings and ``[a, b]`` lists.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SwinUsageError(f"cannot read config file {path}: {exc.strerror}") from None
    if path.suffix == ".json":
        try:
            values = {k.replace("-", "_"): v for k, v in json.loads(text).items()}
        except (ValueError, AttributeError) as exc:
            raise SwinUsageError(f"{path} is not a JSON object ({exc})") from None
        return check_settings(values, f"{path}: ")
    out: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line or line == "---":
            continue
        key, sep, value = line.partition(":")
        if not sep or raw[:1].isspace():
            raise SwinUsageError(f"{path}:{number}: expected 'option: value' at the top level", hint="nesting is not supported")
        out[key.strip().replace("-", "_")] = _value(value.strip())
    return check_settings(out, f"{path}: ")


def _value(text: str) -> Any:
    if text.startswith("[") and text.endswith("]"):
        return [_value(part.strip()) for part in text[1:-1].split(",") if part.strip()]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if _SCALAR.match(text):
        return {"true": True, "yes": True, "false": False, "no": False}.get(text.lower())
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
