"""Foreign weights -> our model: rename into our layout, infer the architecture, build it strictly, and
attach what the weights cannot carry (from a Hugging Face config, a sidecar, a registry name) or say
what was assumed instead. ``swin convert`` and :func:`swincli.load` both import through here.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, NamedTuple

from swincli._version import __version__
from swincli.checkpoint import Preprocessing, build_model
from swincli.convert.buffers import is_derived
from swincli.convert.hf_layout import config_from_hf, from_hf
from swincli.convert.infer import infer_config
from swincli.convert.official_layout import from_official
from swincli.convert.read import Source
from swincli.convert.timm_layout import from_timm
from swincli.convert.torchvision_layout import from_torchvision
from swincli.errors import CheckpointError, SwinError
from swincli.models.registry import get_entry

FROM = {"official": from_official, "timm": from_timm, "hf": from_hf, "torchvision": from_torchvision}


class Imported(NamedTuple):
    net: Any
    notes: list[str]
    dropped: int  # derived buffers in the source, rebuilt instead
    resize_to: tuple | None  # --size/--window as a target for the transfer rules, or None
    guessed: bool  # size or window came from a file name or a default (see Inferred.guessed)


def import_weights(source: Source, layout: str, model: str | None, img_size, window_size, pretrained) -> Imported:
    """Build our model from foreign weights. ``--size``/``--window`` describe the source when nothing else
    does; when its size and window are known (HF config, sidecar, --model, file name, V1 tables that
    disagree), they are a target instead, reached with the official transfer rules."""
    state = FROM[layout](source.state)
    dropped = sum(1 for k in source.state if is_derived(k))
    hf_kwargs, names = config_from_hf(source.hf_config) if source.hf_config else (None, None)
    carried = source.carried
    if carried is not None:
        names = carried.class_names
    common = dict(model=model, pretrained_window_sizes=pretrained, hf_kwargs=hf_kwargs, path_text=str(source.path),
                  carried=carried.config_kwargs() if carried else None)  # fmt: skip
    try:
        inferred = infer_config(state, **common)
    except SwinError as exc:
        if not (carried and carried.config_kwargs()):
            raise
        raise CheckpointError(f"{carried.file} does not fit the weights beside it: {exc.message}",
                              hint="fix or delete it; without it --size/--window describe the weights") from None  # fmt: skip
    if names is not None and len(names) != inferred.config.num_classes:
        where = carried.file if carried and carried.class_names is not None else source.path
        raise CheckpointError(f"{where}: {len(names)} class names for weights with {inferred.config.num_classes} classes",
                              hint="fix or delete the class names")  # fmt: skip
    resize_to = None
    if img_size is not None or window_size is not None:
        if inferred.origin in ("hf", "sidecar", "model", "name"):
            resize_to = (img_size, window_size)
        else:
            try:
                inferred = infer_config(state, img_size=img_size, window_size=window_size, **common)
            except SwinError:
                if inferred.origin != "tables":
                    raise
                resize_to = (img_size, window_size)  # V1: the tables fix the source window; this is a target
    if resize_to is not None:
        inferred.notes.append(f"the source is {size_window(inferred.config)}; --size/--window resize it")
    net = build_model(inferred.config, state, str(source.path))
    net.class_names = names
    net.preprocessing = _preprocessing(net.config, inferred.registry_name, model or str(source.path), source)
    net.provenance = {
        "source": str(source.path),
        "source_layout": layout,
        "source_sha256": _sha256(source.path),
        "registry_name": inferred.registry_name,
        "converted_by": f"swincli {__version__}",
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return Imported(net, inferred.notes, dropped, resize_to, inferred.guessed)


def size_window(config) -> str:
    h, w = config.image_hw
    size = str(h) if h == w else f"{h}x{w}"
    return f"{size} px with windows {','.join(str(st.window[0]) for st in config.layout())}"


def _preprocessing(config, registry_name: str | None, name_text: str, source: Source) -> Preprocessing:
    prep = Preprocessing.for_config(config)
    if source.carried and source.carried.preprocessing:
        for key, value in source.carried.preprocessing.items():
            setattr(prep, key, value)
    elif source.hf_preprocessor:
        p = source.hf_preprocessor
        prep.crop_pct = float(p.get("crop_pct") or 1.0)  # ViTImageProcessor resizes straight to the size
        prep.mean = tuple(p.get("image_mean", prep.mean))
        prep.std = tuple(p.get("image_std", prep.std))
        prep.interpolation = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(p.get("resample", 3), "bicubic")
    elif registry_name:
        entry = get_entry(registry_name)
        tag = next((w for w in entry.weights if f".{w.tag}" in name_text or f"_{w.tag}" in name_text), None)
        weights = tag or entry.default_weights
        if weights is not None:
            prep.crop_pct, prep.interpolation = weights.crop_pct, weights.interpolation
            prep.mean, prep.std = weights.mean, weights.std
    return prep


def _sha256(path: Path) -> str | None:
    if path.is_dir():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

