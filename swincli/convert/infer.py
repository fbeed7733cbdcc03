"""Reading the architecture off the tensors, and filling in what tensors cannot tell.

Shapes give the version, patch size, channels, embed dim, depths, heads, MLP ratio, qkv bias, classes,
absolute positions and (V1) each stage's effective window. They cannot give the image size or a V2
window (the continuous position bias has no window-sized tensor). Those come, in order, from
explicit options, a Hugging Face config, a model name (``--model``, or a registry or timm-style name
found in the file path), and finally a documented default; each choice is reported as a note.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from torch import Tensor

from swincli.errors import CheckpointError, ConfigError
from swincli.models.config import SwinConfig
from swincli.models.registry import get_entry, list_models

_BLOCK = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.")
_NAME_WINDOW = re.compile(r"window(\d+)(?:to(\d+))?_(\d+)(?:to(\d+))?")

V2_DEFAULT = dict(img_size=256, window_size=8)  # SwinV2's standard 1k setting


@dataclass
class Inferred:
    config: SwinConfig
    notes: list[str] = field(default_factory=list)
    registry_name: str | None = None
    origin: str = "default"  # where size/window came from: options, hf, sidecar, model, name, tables or default
    guessed: bool = False  # size or window came from a file name or a default, not from anything that records them


def shape_facts(state: dict[str, Tensor]) -> dict[str, Any]:
    """Everything the tensors of an official-layout state dict say about the architecture."""
    if "patch_embed.proj.weight" not in state:
        raise CheckpointError("the weights have no patch embedding (patch_embed.proj.weight)")
    conv = state["patch_embed.proj.weight"]
    embed_dim, in_chans, ph, pw = conv.shape
    if ph != pw:
        raise CheckpointError(f"non-square patches ({ph}x{pw}) are not supported")
    depth: dict[int, int] = {}
    for key in state:
        if m := _BLOCK.match(key):
            depth[int(m.group(1))] = max(depth.get(int(m.group(1)), 0), int(m.group(2)) + 1)
    stages = sorted(depth)
    if not stages or stages != list(range(len(stages))):
        raise CheckpointError(f"the weights have no consecutive stages of blocks (found {stages})")
    version = 2 if any(k.endswith("attn.logit_scale") for k in state) else 1
    heads, windows = [], []
    for i in stages:
        attn = f"layers.{i}.blocks.0.attn."
        if version == 2:
            heads.append(state[attn + "logit_scale"].shape[0])
        elif attn + "relative_position_bias_table" in state:
            table = state[attn + "relative_position_bias_table"]
            heads.append(table.shape[1])
            side = math.isqrt(table.shape[0])
            if side * side != table.shape[0] or side % 2 == 0:
                raise CheckpointError(f"stage {i}: a position bias table of {table.shape[0]} rows is not a square window")
            windows.append((side + 1) // 2)
        else:
            raise CheckpointError(f"stage {i}: cannot tell the number of heads (no position bias table)")
    fc1 = state["layers.0.blocks.0.mlp.fc1.weight"]
    facts = dict(
        version=version,
        patch_size=ph,
        in_chans=in_chans,
        embed_dim=embed_dim,
        depths=tuple(depth[i] for i in stages),
        num_heads=tuple(heads),
        mlp_ratio=fc1.shape[0] / embed_dim,
        qkv_bias=("layers.0.blocks.0.attn.q_bias" if version == 2 else "layers.0.blocks.0.attn.qkv.bias") in state,
        num_classes=state["head.weight"].shape[0] if "head.weight" in state else 0,
        ape="absolute_pos_embed" in state,
        rel_pos=any("relative_position_bias_table" in k or "cpb_mlp" in k for k in state),
    )
    if windows:
        facts["v1_windows"] = windows
    if facts["ape"]:
        facts["ape_tokens"] = state["absolute_pos_embed"].shape[1]
    return facts


def name_hint(text: str, facts: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Config values suggested by a name in ``text`` (e.g. a file path): a registry name whose
    architecture agrees with the weights, else a timm/official-style ``window12to24_192to384`` pattern."""
    lowered = text.lower()
    candidates = sorted((e.name for e in list_models()), key=len, reverse=True)
    for name in candidates:
        if name in lowered and _agrees(facts, get_entry(name).config):
            return dict(get_entry(name).config), name
    return pattern_hint(lowered), None


def pattern_hint(text: str) -> dict[str, Any]:
    """Size, window and (``AtoB`` names) pretrained windows from a ``window12to24_192to384`` pattern, or {}."""
    m = _NAME_WINDOW.search(text.lower().replace("patch4_", ""))
    if not m:
        return {}
    pre_window, window = int(m.group(1)), int(m.group(2) or m.group(1))
    pre_size, size = int(m.group(3)), int(m.group(4) or m.group(3))
    hint: dict[str, Any] = dict(window_size=window, img_size=size)
    if m.group(2):  # "12to24_192to384": pretrained windows are the 192/window-12 effective windows
        pre = SwinConfig(version=2, img_size=pre_size, window_size=pre_window).layout()
        hint["pretrained_window_sizes"] = tuple(st.window[0] for st in pre)
    return hint


def infer_config(
    state: dict[str, Tensor],
    *,
    model: str | None = None,
    img_size: Any = None,
    window_size: Any = None,
    pretrained_window_sizes: Any = None,
    hf_kwargs: dict[str, Any] | None = None,
    carried: dict[str, Any] | None = None,
    path_text: str = "",
) -> Inferred:
    """``hf_kwargs``: from a Hugging Face config; ``carried``: from a sidecar (see :mod:`.sidecar`)."""
    facts = shape_facts(state)
    notes: list[str] = []
    chosen: dict[str, Any] = {}
    registry_name = None
    origin = "default"
    if hf_kwargs or carried:
        origin = "hf" if hf_kwargs else "sidecar"
        given = hf_kwargs or carried or {}
        chosen.update({k: given[k] for k in ("img_size", "window_size", "pretrained_window_sizes") if k in given})
    elif model:
        entry = get_entry(model)
        registry_name, origin = entry.name, "model"
        chosen.update({k: entry.config[k] for k in ("img_size", "window_size", "pretrained_window_sizes") if k in entry.config})
        _agree(facts, entry.config, f"--model {model}")
    else:
        hint, registry_name = name_hint(path_text, facts)
        picked = {k: hint[k] for k in ("img_size", "window_size", "pretrained_window_sizes") if k in hint}
        if picked and _tables_agree(facts, picked):
            chosen.update(picked)
            origin = "name"
            notes.append(f"{_describe(picked)} taken from the file name")
        elif picked:
            registry_name = None
            notes.append(f"the file name suggests {_describe(picked)}, but the weights' position tables disagree; ignored it")
    for key, value in (("img_size", img_size), ("window_size", window_size), ("pretrained_window_sizes", pretrained_window_sizes)):
        if value is not None and key != "pretrained_window_sizes":
            chosen[key] = value
            origin = "options"
        elif value is not None:
            chosen[key] = value
    told = set(chosen)
    if facts["version"] == 1 and "v1_windows" in facts:
        if origin == "default":
            origin = "tables"
        chosen = _v1_windows(facts, chosen)
    if "window_size" not in chosen:
        chosen["window_size"] = V2_DEFAULT["window_size"]
    if "img_size" not in chosen:
        default = V2_DEFAULT["img_size"] if facts["version"] == 2 else _first(chosen["window_size"]) * 32
        chosen["img_size"] = _size_from_ape(facts) or default
    note = _assumed_note(facts, chosen, told, path_text)
    notes += [note] if note else []
    kwargs = {k: v for k, v in facts.items() if k not in ("v1_windows", "ape_tokens")}
    kwargs.update(chosen)
    if kwargs["version"] == 1:
        kwargs.pop("pretrained_window_sizes", None)
    try:
        config = SwinConfig(**kwargs)
    except ConfigError as exc:
        raise CheckpointError(f"the inferred architecture is impossible: {exc.message}", hint=exc.hint) from None
    if facts["version"] == 1 and "v1_windows" in facts:
        got = [st.window[0] for st in config.layout()]
        if got != facts["v1_windows"]:
            raise CheckpointError(
                f"the weights' position tables are for windows {facts['v1_windows']}, but image size "
                f"{config.img_size} with window {config.window_size} gives {got}",
                hint="pass the --size and --window the weights were trained with",
            )
    return Inferred(config, notes, registry_name, origin, guessed=bool(note) or origin in ("name", "tables", "default"))


def _tables_agree(facts: dict, values: dict) -> bool:
    """Whether a V1 size/window choice gives the per-stage windows the weights' tables were built for."""
    if "v1_windows" not in facts or "window_size" not in values:
        return True
    try:
        config = SwinConfig(version=1, img_size=values.get("img_size", 224), window_size=values["window_size"],
                            depths=facts["depths"], num_heads=facts["num_heads"], embed_dim=facts["embed_dim"],
                            patch_size=facts["patch_size"])  # fmt: skip
    except ConfigError:
        return False
    return [st.window[0] for st in config.layout()] == facts["v1_windows"]


def _v1_windows(facts: dict, chosen: dict) -> dict:
    """V1 tables fix each stage's effective window; a smaller last window means it was clipped to the map."""
    wins = facts["v1_windows"]
    if "window_size" not in chosen:
        chosen["window_size"] = wins[0] if len(set(wins[:-1] or wins)) == 1 else tuple(wins)
    if "img_size" not in chosen and wins[-1] < wins[0] and len(set(wins[:-1])) == 1:
        chosen["img_size"] = wins[-1] * facts["patch_size"] * 2 ** (len(wins) - 1)
    return chosen


def _assumed_note(facts: dict, chosen: dict, told: set, path_text: str) -> str | None:
    """One note for whatever of size and window nothing told: what was assumed, from what, and the fix."""
    missing = [k for k in ("img_size", "window_size") if k not in told]
    if not missing:
        return None
    name = PurePath(path_text).name or "the weights"
    size, window = chosen["img_size"], chosen["window_size"]
    wins = facts.get("v1_windows")
    if "img_size" not in missing:  # a V1 window is in its position tables; a V2 one is not
        if wins:
            return None
        return f"{name} carries no window: assumed window {window} (V2 weights do not record it); pass --window or --model if it was trained otherwise"
    if facts.get("ape") and _size_from_ape(facts) == size:
        how = f"{size} px from the absolute position embedding"
    elif wins and wins[-1] < wins[0] and "window_size" in missing:
        how = f"{size} px (the last stage's window is clipped to {wins[-1]})"
    else:
        how = f"{size} px"
    if "window_size" not in missing:
        return f"{name} carries no image size: assumed {how}; pass --size or --model if it was trained otherwise"
    what = f"window {window} from the position tables" if wins else f"window {window} (SwinV2's standard setting)"
    return f"{name} carries no image size or window: assumed {how}, {what}; pass --size/--window if it was trained otherwise"


def _size_from_ape(facts: dict) -> int | None:
    if not facts.get("ape"):
        return None
    side = math.isqrt(facts["ape_tokens"])
    return side * facts["patch_size"] if side * side == facts["ape_tokens"] else None


def _first(window: Any) -> int:
    while not isinstance(window, int):
        window = window[0]
    return window


def _agrees(facts: dict, config: dict) -> bool:
    keys = ("version", "embed_dim", "depths", "num_heads")
    return all(tuple(config[k]) == facts[k] if isinstance(facts[k], tuple) else config[k] == facts[k] for k in keys if k in config)


def _agree(facts: dict, config: dict, source: str) -> None:
    if not _agrees(facts, config):
        found = f"V{facts['version']} C={facts['embed_dim']} depths {facts['depths']} heads {facts['num_heads']}"
        want = f"V{config['version']} C={config['embed_dim']} depths {tuple(config['depths'])} heads {tuple(config['num_heads'])}"
        raise CheckpointError(f"{source} is {want}, but the weights are {found}", hint="pick the matching model name")


def _describe(values: dict) -> str:
    names = {"img_size": "image size", "window_size": "window", "pretrained_window_sizes": "pretrained windows"}
    return ", ".join(f"{names[k]} {v}" for k, v in values.items())
