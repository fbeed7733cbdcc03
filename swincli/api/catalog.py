"""The Python API behind the ``swin`` subcommands: each returns plain data the CLI renders.

Functions here never print; ``swin models info swin-t --json`` prints exactly what
``swincli.api.model_info("swin-t")`` returns.
"""

from __future__ import annotations

from typing import Any

from swincli.models.complexity import count_macs, count_params
from swincli.models.config import SwinConfig
from swincli.models.registry import ModelEntry, get_entry, list_models


def _summary(entry: ModelEntry, config: SwinConfig) -> dict[str, Any]:
    macs = count_macs(config)
    return {
        "name": entry.name,
        "aliases": list(entry.aliases),
        "description": entry.description,
        "version": config.version,
        "img_size": list(config.image_hw),
        "window_size": [list(w) for w in config.stage_windows],
        "params": count_params(config),
        "macs": macs.total,
        "weights": [f"{entry.name}.{w.tag}" for w in entry.weights],
    }


def models_table(pattern: str | None = None, version: int | None = None, pretrained: bool = False) -> list[dict]:
    """One summary per registered variant (params and MACs at its own size, head as registered); ``loads``:
    the weights ``swin predict --model NAME`` uses for the name and each alias."""
    from swincli.hub import weight_map

    loads = weight_map()
    rows = []
    for e in list_models(pattern, version, pretrained):
        row = _summary(e, e.build_config())
        row["loads"] = {n: loads[n] for n in (e.name, *e.aliases) if n in loads}
        rows.append(row)
    return rows


def model_info(name: str, img_size: Any = None, window_size: Any = None, num_classes: int | None = None) -> dict:
    """Config, layout per stage, params, MACs per stage and known weights of a variant; ``loads``: the
    ``arch.tag`` that ``swin predict --model NAME`` loads for this very name."""
    entry = get_entry(name)
    config = entry.build_config(img_size=img_size, window_size=window_size, num_classes=num_classes)
    macs = count_macs(config)
    out = _summary(entry, config)
    out["config"] = config.to_dict()
    out["macs_per_stage"] = {"stem": macs.stem, "stages": list(macs.stages), "head": macs.head}
    out["stages"] = [
        {
            "stage": st.index,
            "resolution": list(st.resolution),
            "dim": st.dim,
            "depth": st.depth,
            "heads": st.num_heads,
            "window": list(st.window),
            "shift": list(st.shift),
            "pretrained_window": list(st.pretrained_window),
            "padded": list(st.padded),
            "macs": macs.stages[st.index],
        }
        for st in config.layout()
    ]
    out["weights"] = [
        {
            "name": f"{entry.name}.{w.tag}",
            "dataset": w.dataset,
            "num_classes": w.num_classes,
            "top1": w.top1,
            "crop_pct": w.crop_pct,
            "interpolation": w.interpolation,
            "hf_hub_id": f"timm/{entry.name}.{w.tag}" if w.hub else None,
            "default": w is entry.default_weights,
        }
        for w in entry.weights
    ]
    out["loads"] = _loads(name)
    return out


def _loads(name: str) -> str | None:
    """The ``arch.tag`` that ``swin predict --model NAME`` loads (None: no published weights)."""
    from swincli.errors import SwinError
    from swincli.hub import resolve_weights

    try:
        entry, weights = resolve_weights(name)
    except SwinError:
        return None
    return f"{entry.name}.{weights.tag}"


def environment() -> dict[str, Any]:
    """Versions, hardware and installed plugins: the facts a bug report needs."""
    from swincli.environment import collect

    return collect()


def train(reporter=None, **options: Any):
    """``swin train`` from Python: options are :class:`swincli.engine.recipes.resolve.TrainConfig` fields."""
    from swincli.engine.train_config import TrainConfig
    from swincli.engine.trainer import train as run

    return run(TrainConfig.from_dict(options), finetune=False, reporter=reporter, explicit=list(options))


def finetune(reporter=None, **options: Any):
    """``swin finetune`` from Python: ``checkpoint=`` (any layout) plus the train options."""
    from swincli.engine.train_config import TrainConfig
    from swincli.engine.trainer import train as run

    return run(TrainConfig.from_dict(options), finetune=True, reporter=reporter, explicit=list(options))


def explain(model: Any, paths: list[str], out_dir: str, method: str = "gradcam", **options: Any) -> list[dict]:
    """``swin predict --explain`` from Python: a heatmap PNG per image in ``out_dir`` (see :mod:`swincli.explain`).
    ``model``: a loaded model, or a checkpoint path / layout ``load()`` reads; ``options``: ``batch_size``,
    ``device``, ``workers``. Same-named PNGs in ``out_dir`` are replaced. One dict per path: ``path``, ``file``,
    ``index``, ``label``, ``prob`` or ``error``."""
    from dataclasses import asdict

    from swincli.explain import explain as run
    from swincli.explain import require_gradcam

    require_gradcam()
    if not hasattr(model, "config"):
        from swincli.loader import load

        model = load(model)
    return [asdict(e) for e in run(model, list(paths), out_dir, method, **options)]


def evaluate(checkpoint: str, data: str, **options: Any) -> dict:
    """``swin eval`` from Python: acc1/acc5 (percent), loss, images and per-class accuracy."""
    from swincli.evaluation.accuracy import run_eval

    return run_eval(checkpoint, data, **options)
