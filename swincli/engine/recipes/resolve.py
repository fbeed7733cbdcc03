"""Filling a run's unset options from its recipe, and recording where each value came from.

:func:`resolve` picks the recipe (``demo`` without ``--data``, else ``auto`` unless ``--recipe`` names
one), fills every option the user left unset, and adds a note for the defaults it chose so the CLI can
show them. The recipes themselves: :mod:`~swincli.engine.recipes.fixed` (official, finetune, demo) and
:mod:`~swincli.engine.recipes.auto` (chosen from the data).
"""

from __future__ import annotations

from swincli.engine.recipes.auto import DataStats, auto_settings, describe
from swincli.engine.recipes.fixed import RECIPES
from swincli.engine.train_config import LR_FIELDS, TrainConfig, check_settings
from swincli.errors import SwinUsageError
from swincli.limits import MAX_SIDE, TRAIN
from swincli.memory import parse_size
from swincli.models.config import to_pair
from swincli.models.sequential_attention import parse_stages
from swincli.wording import plural


def resolve(cfg: TrainConfig, world_size: int = 1, finetune: bool = False, stats: DataStats | None = None) -> TrainConfig:
    """Fill unset options from the recipe. The ``auto`` recipe (the default for ``--data``) chooses its
    values from ``stats``; the fixed recipes' learning rates are scaled by total batch / 512."""
    name = cfg.recipe or ("demo" if cfg.data is None and not finetune else "auto")
    if name not in RECIPES and name != "auto":
        raise SwinUsageError(f"unknown recipe {name!r}", hint=f"choose one of auto, {', '.join(RECIPES)}")
    cfg.recipe = name
    if name == "auto":
        stats = stats or DataStats(images=0, classes=0, side=224, finetune=finetune)
        recipe, why = auto_settings(stats, cfg.batch_size, world_size * cfg.accum_steps, cfg.epochs)
    else:
        recipe = RECIPES[name]
    from_recipe = [key for key in recipe if getattr(cfg, key) is None]
    for key in from_recipe:
        setattr(cfg, key, recipe[key])
    total_batch = cfg.batch_size * world_size * cfg.accum_steps
    if name != "auto":  # by what was unset, not by value: an explicit --lr equal to the recipe's stays as given
        for key in LR_FIELDS:  # linearly scaled by total batch / 512, as the official code does
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
            f"{plural(cfg.epochs, 'epoch')}); pass --data DIR for your own images"
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
    _check_memory_flags(cfg)


def _check_memory_flags(cfg: TrainConfig) -> None:
    """--attn-chunk-stages and --memory-budget: their form here, before any data is read (the stages' range once
    the model is known)."""
    if cfg.attn_chunk_stages is not None:
        parse_stages(cfg.attn_chunk_stages, None)
        if not cfg.attn_chunk and not cfg.memory_budget:
            raise SwinUsageError("--attn-chunk-stages needs --attn-chunk N (or --memory-budget)")
    if cfg.memory_budget is not None:
        budget = parse_size(str(cfg.memory_budget))
        if not budget:
            raise SwinUsageError(f"--memory-budget must be a size like 8GiB or 512MiB, got {cfg.memory_budget!r}")


