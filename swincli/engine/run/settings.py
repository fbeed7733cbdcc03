"""A run's settings before anything is built: a resumed run's own (changed only where safe), or the
user's options filled by the recipe, which for ``auto`` first counts the data."""

from __future__ import annotations

from pathlib import Path

from swincli.datasets.build import Data, build_data
from swincli import distributed
from swincli.engine import lora
from swincli.engine.recipes.auto import DataStats
from swincli.engine.recipes.resolve import resolve
from swincli.engine.train_config import TrainConfig
from swincli.engine.run.resume_flags import apply_resume_flags
from swincli.engine.run.directory import check_run_dir
from swincli.engine.run.resume_state import load_resume
from swincli.errors import SwinError
from swincli.models.config import to_pair


def resolve_run(cfg: TrainConfig, finetune: bool, ctx: distributed.Dist,
                explicit: list[str]) -> tuple[TrainConfig, Path | None, dict | None, Data | None]:  # fmt: skip
    """Settings, run directory (None: the next ``expN``), the resume state, and the data when the
    recipe had to read it (``auto``); see ``resume_flags`` for what a resumed run may change."""
    if cfg.resume:
        saved = load_resume(cfg.resume)
        resume_dir = Path(cfg.resume)
        resumed = TrainConfig.from_dict({**saved["config"], "resume": str(resume_dir), "notes": []})
        resumed.notes += apply_resume_flags(resumed, cfg, explicit, saved["progress"]["epoch"], str(resume_dir))
        return resumed, resume_dir, saved, None
    lora.check_options(cfg, finetune)
    given = {k for k in ("lr", "min_lr", "warmup_lr") if getattr(cfg, k) is not None}  # before the recipe fills them
    run_dir = Path(cfg.output) if cfg.output else None
    if run_dir is not None:  # refused before any work: an earlier run there needs --force (or --resume)
        distributed.on_main(lambda: check_run_dir(run_dir, cfg.force), ctx)
    data, stats = None, None
    if (cfg.recipe or ("demo" if cfg.data is None and not finetune else "auto")) == "auto":
        side = min(to_pair(cfg.size)) if cfg.size is not None else default_side(cfg)
        data = build_data(cfg.data, cfg.val_split or 0.0, cfg.seed, side, cfg.image_column, cfg.label_column,
                          cfg.epoch_size)  # fmt: skip
        stats = DataStats(images=len(data.train), classes=len(data.classes), side=side, finetune=finetune)
    cfg = resolve(cfg, ctx.world_size, finetune, stats)
    lora.apply_defaults(cfg, given)
    return cfg, run_dir, None, data


def default_side(cfg: TrainConfig) -> int:
    """The input side a run without --size trains at: its model's, or our checkpoint's (read from its
    header); other layouts are read later, and 224 stands in for them."""
    if cfg.model is None and cfg.checkpoint is not None:
        from swincli.checkpoint import is_swincli_file, read_info

        return min(read_info(cfg.checkpoint).config.image_hw) if is_swincli_file(cfg.checkpoint) else 224
    from swincli.models.registry import get_entry

    try:
        return min(to_pair(get_entry(cfg.model or "swin-nano").config.get("img_size", 224)))
    except SwinError:  # an unknown name: resolve() says so in its own words
        return 224
