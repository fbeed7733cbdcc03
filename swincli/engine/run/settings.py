"""A run's settings before anything is built: a resumed run's own (changed only where safe), or the
user's options filled by the recipe, which for ``auto`` first counts the data."""

from __future__ import annotations

import statistics
from pathlib import Path

from torch.utils.data import Subset

from swincli import distributed
from swincli.datasets import hf, wds
from swincli.datasets.build import Data, build_data
from swincli.datasets.folder import ImageFolder, header_sides
from swincli.engine import lora
from swincli.engine.recipes.auto import DataStats
from swincli.engine.recipes.input_fit import fit_input
from swincli.engine.recipes.resolve import resolve
from swincli.engine.run.directory import check_run_dir
from swincli.engine.run.resume_flags import apply_resume_flags
from swincli.engine.run.resume_state import load_resume
from swincli.engine.train_config import LR_FIELDS, TrainConfig
from swincli.errors import SwinError
from swincli.models.config import SwinConfig, to_pair


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
    if finetune and cfg.checkpoint is None and cfg.model is not None:  # before any data is read or noted
        from swincli.hub import resolve_weights

        resolve_weights(cfg.model)  # a model without published weights: one error line, no notes before it
    given = {k for k in LR_FIELDS if getattr(cfg, k) is not None}  # before the recipe fills them
    run_dir = Path(cfg.output) if cfg.output else None
    if run_dir is not None:  # refused before any work: an earlier run there needs --force (or --resume)
        distributed.on_main(lambda: check_run_dir(run_dir, cfg.force), ctx)
    data, stats = None, None
    if (cfg.recipe or ("demo" if cfg.data is None and not finetune else "auto")) == "auto":
        config = model_config(cfg)  # a checkpoint's header, read once for the side and the input choices
        side = min(to_pair(cfg.size)) if cfg.size is not None else _own_side(config)
        data = build_data(cfg.data, cfg.val_split or 0.0, cfg.seed, side, cfg.image_column, cfg.label_column,
                          cfg.epoch_size)  # fmt: skip
        images = image_side(cfg.data, data, cfg.seed)
        side = fit_input(cfg, config, finetune, images) or side
        stats = DataStats(images=len(data.train), classes=len(data.classes), side=side, finetune=finetune,
                          image_side=images[0] if images else None, lora=cfg.lora is not None)  # fmt: skip
    cfg = resolve(cfg, ctx.world_size, finetune, stats)
    lora.apply_defaults(cfg, given)
    return cfg, run_dir, None, data


def model_config(cfg: TrainConfig) -> SwinConfig | None:
    """The architecture the run starts from, at its own size and window: our checkpoint's (read from its
    header) or the registry model's; None for other layouts (read later) and unknown names."""
    if cfg.checkpoint is not None:
        from swincli.checkpoint import is_swincli_file, read_info

        return read_info(cfg.checkpoint).config if is_swincli_file(cfg.checkpoint) else None
    from swincli.models.registry import get_entry

    try:
        return get_entry(cfg.model or "swin-nano").build_config(num_classes=1)
    except SwinError:  # an unknown name: resolve() says so in its own words
        return None


def default_side(cfg: TrainConfig) -> int:
    """The input side a run without --size trains at: its model's, or our checkpoint's (read from its
    header); other layouts are read later, and 224 stands in for them."""
    return _own_side(model_config(cfg))


def _own_side(config: SwinConfig | None) -> int:
    return min(config.image_hw) if config is not None else 224


def image_side(spec: str | None, data: Data, seed: int) -> tuple[int, int] | None:
    """(median shorter side, images read) of the training images of ``--data spec``. Folders: a sample of
    headers; in-memory sets (CIFAR, STL10): their array's shape. Not read (None): ``hf:`` and ``wds:``,
    whose images are decoded from a table or a tar stream, maybe remote, which is not cheap; torchvision's
    file-based sets; the built-in shapes (drawn at the size asked)."""
    if spec is None or hf.is_hf(spec) or wds.is_wds(spec):
        return None
    ds, index = data.train, None
    if isinstance(ds, Subset):  # a --val-split of one tree
        ds, index = ds.dataset, ds.indices
    if isinstance(ds, ImageFolder):
        paths = [ds.samples[i][0] for i in (index if index is not None else range(len(ds.samples)))]
        sides = header_sides(paths, seed=seed)
        return (int(statistics.median_low(sides)), len(sides)) if sides else None
    array = getattr(ds, "data", None)
    if getattr(array, "ndim", 0) == 4:  # N x H x W x C (CIFAR) or N x C x H x W (STL10)
        return min(sorted(array.shape[1:])[-2:]), len(array)
    return None


