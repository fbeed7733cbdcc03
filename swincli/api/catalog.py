"""``swin models``: the registered variants as plain data (``swin models info swin-t --format json``
prints exactly what ``swincli.api.model_info("swin-t")`` returns)."""

from __future__ import annotations

from typing import Any

from swincli.errors import SwinError
from swincli.models.complexity import count_macs, count_params
from swincli.models.config import SwinConfig
from swincli.models.registry import ModelEntry, get_entry, list_models
from swincli.sizes import size_value, window_value


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
    config = entry.build_config(img_size=size_value(img_size), window_size=window_value(window_size), num_classes=num_classes)
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
    native = get_entry(out["loads"]).config if out["loads"] else None  # the size the weights were trained at
    out["loads_at"] = {"img_size": native["img_size"], "window_size": native["window_size"]} if native else None
    return out


def _loads(name: str) -> str | None:
    """The ``arch.tag`` that ``swin predict --model NAME`` loads (None: no published weights)."""
    from swincli.hub import resolve_weights

    try:
        entry, weights = resolve_weights(name)
    except SwinError:
        return None
    return f"{entry.name}.{weights.tag}"
