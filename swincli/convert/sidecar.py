"""What a foreign weight file cannot carry, kept beside it: image size, windows, class names, preprocessing.

Without these, weights exported to another layout come back at a guessed size and window (a V2 window
is not in the tensors at all) with the default preprocessing and no class names. ``--to timm|official|
torchvision`` therefore writes them next to the weights, and every import reads them back:

- timm: the ``config.json`` of timm's own Hub repositories (``architecture``, ``num_classes``,
  ``num_features``, ``label_names``, ``model_args``, ``pretrained_cfg``), which
  ``timm.create_model("local-dir:FOLDER")`` also reads. A folder output holds it as ``config.json``;
  a file output ``OUT`` gets it as ``OUT.json``;
- official and torchvision: ``OUT.json`` with our fields (:func:`swin_sidecar`).

On import the sidecar is ``FILE.json``; failing that, a timm ``config.json`` beside ``model.safetensors``
or ``pytorch_model.bin`` (a Hub snapshot folder) or inside a folder given as the source. Every value is
validated, and a bad one is a one-line error naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swincli.checkpoint import Preprocessing
from swincli.errors import CheckpointError
from swincli.limits import INTERPOLATIONS, PREPROCESSING
from swincli.models.config import per_stage

FORMAT = "swincli-sidecar"
FORMAT_VERSION = 1
HUB_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
TIMM_ARCH = {1: "swin_tiny_patch4_window7_224", 2: "swinv2_tiny_window8_256"}  # model_args override the rest


@dataclass
class SidecarFacts:
    """Values read from a sidecar; None where it does not say."""

    file: Path
    img_size: Any = None
    window_size: Any = None
    pretrained_window_sizes: Any = None
    class_names: list[str] | None = None
    preprocessing: dict[str, Any] | None = None  # validated Preprocessing fields, only those the file gives

    def config_kwargs(self) -> dict[str, Any]:
        names = ("img_size", "window_size", "pretrained_window_sizes")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


def sidecar_path(weights: Path) -> Path:
    """``model.pth`` -> ``model.pth.json``: bound to one file, so ``x.pth`` and ``x.safetensors`` never share one."""
    return weights.with_name(weights.name + ".json")


# ---------------------------------------------------------------------------------------------- writing
def timm_config(net) -> dict[str, Any]:
    """timm's Hub ``config.json`` for ``net``: ``model_args`` rebuild it in timm, ``pretrained_cfg`` preprocesses for it."""
    c = net.config
    prep = net.preprocessing or Preprocessing.for_config(c)
    args: dict[str, Any] = dict(
        img_size=_json_lists(c.img_size), patch_size=c.patch_size, in_chans=c.in_chans, embed_dim=c.embed_dim,
        depths=list(c.depths), num_heads=list(c.num_heads), window_size=_json_lists(c.window_size),
        mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias,
    )  # fmt: skip
    if c.version == 2:  # timm indexes this per stage
        pre = per_stage(c.pretrained_window_sizes, c.num_stages, "pretrained_window_sizes")
        args["pretrained_window_sizes"] = [p[0] if p[0] == p[1] else list(p) for p in pre]
    out: dict[str, Any] = {"architecture": TIMM_ARCH[c.version], "num_classes": c.num_classes, "num_features": c.num_features,
                           "global_pool": "avg"}  # fmt: skip
    if net.class_names:
        out["label_names"] = list(net.class_names)
    out["model_args"] = args
    out["pretrained_cfg"] = {
        "input_size": [c.in_chans, *prep.input_size], "fixed_input_size": True, "interpolation": prep.interpolation,
        "crop_pct": prep.crop_pct, "crop_mode": "center", "mean": list(prep.mean), "std": list(prep.std),
        "num_classes": c.num_classes, "first_conv": "patch_embed.proj", "classifier": "head.fc",
    }  # fmt: skip
    return out


def swin_sidecar(net, layout: str, weights_name: str) -> dict[str, Any]:
    """Our sidecar for official and torchvision files: just what their tensors cannot tell."""
    c = net.config
    prep = net.preprocessing or Preprocessing.for_config(c)
    out: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "weights": weights_name, "layout": layout,
        "img_size": _json_lists(c.img_size), "window_size": _json_lists(c.window_size),
    }  # fmt: skip
    if c.version == 2:
        out["pretrained_window_sizes"] = _json_lists(c.pretrained_window_sizes)
    out["class_names"] = list(net.class_names) if net.class_names else None
    out["preprocessing"] = prep.to_dict()
    return out


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------- reading
def find(weights: Path) -> SidecarFacts | None:
    """The sidecar of a weight file, read and validated; None if it has none."""
    side = sidecar_path(weights)
    if side.is_file():
        return read(side)
    beside = weights.parent / "config.json"
    if weights.name in HUB_WEIGHTS and beside.is_file():
        data = _load(beside)
        return from_timm(data, beside) if is_timm_config(data) else None  # a transformers config: not ours to read
    return None


def read(path: Path) -> SidecarFacts:
    data = _load(path)
    if data.get("format") == FORMAT:
        return from_swin(data, path)
    if is_timm_config(data):
        return from_timm(data, path)
    raise CheckpointError(
        f"{path} is neither a swincli sidecar nor a timm config (no 'format' or 'pretrained_cfg' field)",
        hint="move it away: a file named after the weights plus .json is read as their sidecar",
    )


def is_timm_config(data: dict[str, Any]) -> bool:
    return "model_type" not in data and ("pretrained_cfg" in data or "architecture" in data)


def from_swin(data: dict[str, Any], path: Path) -> SidecarFacts:
    check = _Check(path)
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version!r} is not one this swincli reads (up to {FORMAT_VERSION})",
                              hint="upgrade swincli: python -m pip install -U swincli")  # fmt: skip
    prep = data.get("preprocessing")
    return SidecarFacts(
        path,
        img_size=check.sizes("img_size", data.get("img_size"), positive=True),
        window_size=check.sizes("window_size", data.get("window_size"), positive=True),
        pretrained_window_sizes=check.sizes("pretrained_window_sizes", data.get("pretrained_window_sizes")),
        class_names=check.names("class_names", data.get("class_names")),
        preprocessing=None if prep is None else check.preprocessing("preprocessing", prep, "input_size", 0),
    )


def from_timm(data: dict[str, Any], path: Path) -> SidecarFacts:
    """timm's config.json; where ``model_args`` lack size or window (as in timm's own Hub repos), the input
    size and the architecture name (``swinv2_tiny_window8_256``) give them."""
    from swincli.convert.infer import pattern_hint

    check = _Check(path)
    args = check.mapping("model_args", data.get("model_args", {}))
    cfg = check.mapping("pretrained_cfg", data.get("pretrained_cfg", {}))
    prep = check.preprocessing("pretrained_cfg", cfg, "input_size", 1)
    named = pattern_hint(data["architecture"]) if isinstance(data.get("architecture"), str) else {}
    size = check.sizes("model_args.img_size", args.get("img_size"), positive=True)
    size = size if size is not None else prep.get("input_size", named.get("img_size"))
    window = check.sizes("model_args.window_size", args.get("window_size"), positive=True) or named.get("window_size")
    pre = check.sizes("model_args.pretrained_window_sizes", args.get("pretrained_window_sizes"))
    pre = named.get("pretrained_window_sizes") if pre is None else pre
    if isinstance(pre, tuple) and len(set(pre)) == 1:  # timm needs one per stage; ours says it once
        pre = pre[0]
    names = data.get("label_names", cfg.get("label_names"))
    return SidecarFacts(path, size, window, pre, check.names("label_names", names), prep)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})", hint="fix or delete it; it describes the weights beside it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


class _Check:
    """Field validation with errors that name the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {field} {problem}", hint="fix or delete the file; it describes the weights beside it")

    def mapping(self, field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, got {value!r}")
        return value

    def sizes(self, field: str, value: Any, positive: bool = False) -> Any:
        """An int, or nested lists of ints (a pair, or one per stage), as a hashable tuple."""
        if value is None:
            return None
        if isinstance(value, list) and value:
            return tuple(self.sizes(field, v, positive) for v in value)
        least = 1 if positive else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise self.fail(field, f"must be {'a positive' if positive else 'a non-negative'} integer or a list of them, got {value!r}")
        return value

    def names(self, field: str, value: Any) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, dict):  # timm allows {index: name} when there are gaps; we need every index
            try:
                value = [value[str(i)] if str(i) in value else value[i] for i in range(len(value))]
            except KeyError:
                raise self.fail(field, "must name every class index 0..N-1") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(field, "must be a list of strings")
        return value

    def number(self, field: str, value: Any, key: str) -> float:
        """A preprocessing number in its domain (:data:`swincli.limits.PREPROCESSING`, shared with checkpoints)."""
        why = PREPROCESSING[key].problem(value)
        if why:
            raise self.fail(field, why)
        return float(value)

    def preprocessing(self, field: str, data: Any, size_key: str, channels: int) -> dict[str, Any]:
        """Ours (``input_size`` [H, W]) or timm's (``input_size`` [C, H, W]: ``channels`` = 1 leading entry to drop)."""
        data = self.mapping(field, data)
        prep: dict[str, Any] = {}
        if size_key in data:
            size = self.sizes(f"{field}.{size_key}", data[size_key], positive=True)
            if not isinstance(size, tuple) or len(size) != 2 + channels or not all(isinstance(v, int) for v in size):
                raise self.fail(f"{field}.{size_key}", f"must be {'[C, H, W]' if channels else '[H, W]'}, got {data[size_key]!r}")
            prep["input_size"] = size[channels:]
        if "crop_pct" in data:
            prep["crop_pct"] = self.number(f"{field}.crop_pct", data["crop_pct"], "crop_pct")
        if "interpolation" in data:
            if data["interpolation"] not in INTERPOLATIONS:
                raise self.fail(f"{field}.interpolation", f"must be one of {', '.join(INTERPOLATIONS)}, got {data['interpolation']!r}")
            prep["interpolation"] = data["interpolation"]
        for key in ("mean", "std"):
            if key in data:
                values = data[key]
                if not isinstance(values, list) or not values:
                    raise self.fail(f"{field}.{key}", f"must be a list of numbers, got {values!r}")
                prep[key] = tuple(self.number(f"{field}.{key}", v, key) for v in values)
        if "mean" in prep and "std" in prep and len(prep["mean"]) != len(prep["std"]):
            raise self.fail(field, "needs as many mean as std values")
        return prep


def _json_lists(value: Any) -> Any:
    """Config values (ints and nested tuples) as JSON: nested lists."""
    return [_json_lists(v) for v in value] if isinstance(value, (tuple, list)) else value
