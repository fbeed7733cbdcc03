"""Field-by-field checks of a model configuration and its preprocessing, before anything is derived.

A checkpoint's metadata is data from anywhere: ``mlp_ratio`` NaN, ``depths`` [1e9] or ``img_size``
100000 must be one line naming the field, not a MemoryError, a torch error or an image blamed for a
resize it cannot survive. Bounds are :mod:`swincli.limits`' (above the registry's largest model).
"""

from __future__ import annotations

from typing import Any

from swincli.errors import ConfigError
from swincli.limits import (
    INTERPOLATIONS, MAX_CHANS, PREPROCESSING, MAX_CLASSES, MAX_DEPTH, MAX_EMBED_DIM, MAX_HEADS, MAX_MLP_RATIO, MAX_PATCH, MAX_SIDE,
    MAX_STAGES, Range, floats, ints,
)  # fmt: skip


def check_config_fields(data: Any) -> None:
    """The raw fields of a :class:`SwinConfig` (``data`` has them as attributes): types and domains."""
    for name, domain in (("patch_size", ints(1, MAX_PATCH)), ("in_chans", ints(1, MAX_CHANS)),
                         ("embed_dim", ints(1, MAX_EMBED_DIM)), ("num_classes", ints(0, MAX_CLASSES)),
                         ("mlp_ratio", floats(0, MAX_MLP_RATIO, lo_open=True))):  # fmt: skip
        _check(name, getattr(data, name), domain)
    for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
        _check(name, getattr(data, name), floats(0, 1, hi_open=True))
    for name in ("depths", "num_heads"):
        values = getattr(data, name)
        if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= MAX_STAGES:
            raise ConfigError(f"{name} must be a list of 1 to {MAX_STAGES} integers (one per stage), got {values!r}")
        for value in values:
            _check(name, value, ints(1, MAX_DEPTH if name == "depths" else MAX_HEADS))
    _check_sizes("img_size", data.img_size, 1)
    _check_sizes("window_size", data.window_size, 1)
    _check_sizes("pretrained_window_sizes", data.pretrained_window_sizes, 0)
    for name in ("qkv_bias", "ape", "shift", "rel_pos"):
        if not isinstance(getattr(data, name), bool):
            raise ConfigError(f"{name} must be true or false, got {getattr(data, name)!r}")
    if not isinstance(data.extra, dict):
        raise ConfigError(f"extra must be an object, got {data.extra!r}")


def check_preprocessing(data: dict[str, Any]) -> None:
    """A checkpoint's preprocessing: sizes, ``crop_pct`` in (0, 1], a known interpolation, finite mean, std > 0."""
    if not isinstance(data, dict):
        raise ConfigError(f"preprocessing must be an object, got {data!r}")
    if "input_size" in data:
        _check_sizes("preprocessing.input_size", data["input_size"], 1, nested=False)
    if "crop_pct" in data:
        _check("preprocessing.crop_pct", data["crop_pct"], PREPROCESSING["crop_pct"])
    if "interpolation" in data and data["interpolation"] not in INTERPOLATIONS:
        raise ConfigError(f"preprocessing.interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                          f"got {data['interpolation']!r}")  # fmt: skip
    for key in ("mean", "std"):
        domain, values = PREPROCESSING[key], data.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_CHANS:
            raise ConfigError(f"preprocessing.{key} must be a list of numbers (one per channel), got {values!r}")
        for value in values:
            _check(f"preprocessing.{key}", value, domain)


def _check(name: str, value: Any, domain: Range) -> None:
    why = domain.problem(value)
    if why:
        raise ConfigError(f"{name} {why}")


def _check_sizes(name: str, value: Any, least: int, nested: bool = True) -> None:
    """An int, an (h, w) pair or (``nested``) one of those per stage; every int in [least, MAX_SIDE]."""
    items = value if isinstance(value, (list, tuple)) else [value]
    flat = [v for item in items for v in (item if nested and isinstance(item, (list, tuple)) else [item])]
    for v in flat:
        why = ints(least, MAX_SIDE).problem(v)
        if why:
            raise ConfigError(f"{name} {why}", hint=f"sizes and windows go up to {MAX_SIDE}")
