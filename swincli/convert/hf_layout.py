"""Hugging Face transformers layout (``Swin*``/``Swinv2*``) and its ``config.json``.

On disk, transformers 4.x and 5.x both write the classic names: separate query/key/value linears
(V2's key has no bias), ``layernorm_before``/``layernorm_after`` for norm1/norm2, ``intermediate``/
``output`` for the MLP, a ``swin.``/``swinv2.`` prefix and a ``classifier``. 5.x renames these in
memory on load and back on save, so files in this layout load with either version.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor

from swincli.convert.buffers import is_derived
from swincli.errors import CheckpointError
from swincli.models.config import SwinConfig, per_stage

# (ours, theirs) inside a block, V1 and V2
_BLOCK = [
    ("norm1.", "layernorm_before."),
    ("norm2.", "layernorm_after."),
    ("attn.proj.", "attention.output.dense."),
    ("mlp.fc1.", "intermediate.dense."),
    ("mlp.fc2.", "output.dense."),
    ("attn.relative_position_bias_table", "attention.self.relative_position_bias_table"),
    ("attn.logit_scale", "attention.self.logit_scale"),
    ("attn.cpb_mlp.", "attention.self.continuous_position_bias_mlp."),
    ("attn.q_bias", "attention.self.query.bias"),
    ("attn.v_bias", "attention.self.value.bias"),
]
_TOP = [
    ("patch_embed.proj.", "embeddings.patch_embeddings.projection."),
    ("patch_embed.norm.", "embeddings.norm."),
    ("absolute_pos_embed", "embeddings.position_embeddings"),
    ("norm.", "layernorm."),
]
_BLOCK_KEY = re.compile(r"^(encoder\.)?layers\.(\d+)\.blocks\.(\d+)\.(.*)$")


def _prefix(state: dict[str, Tensor]) -> str:
    for p in ("swinv2.", "swin."):
        if any(k.startswith(p) for k in state):
            return p
    return ""


def from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    prefix = _prefix(state)
    v2 = any("logit_scale" in k for k in state)
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        if is_derived(key):
            continue
        if key.startswith("classifier."):
            out["head." + key[len("classifier.") :]] = value
            continue
        key = key[len(prefix) :] if key.startswith(prefix) else key
        m = _BLOCK_KEY.match(key)
        if m:
            base, rest = f"layers.{m.group(2)}.blocks.{m.group(3)}.", m.group(4)
            part = re.match(r"attention\.self\.(query|key|value)\.(weight|bias)$", rest)
            if part and not (v2 and part.group(2) == "bias"):  # V2: q/v biases are separate parameters
                qkv.setdefault(base + "attn.qkv." + part.group(2), {})[part.group(1)] = value
                continue
            out[base + _rename(rest, _BLOCK, reverse=True)] = value
            continue
        key = re.sub(r"^encoder\.layers\.", "layers.", key)
        if key.startswith("embeddings.position_embeddings"):
            value = _drop_cls_row(value)
        out[_rename(key, _TOP, reverse=True)] = value
    for key, parts in qkv.items():
        names = ("query", "key", "value")
        if set(parts) != set(names):
            raise CheckpointError(f"Hugging Face weights for {key} lack one of query/key/value")
        out[key] = torch.cat([parts[n] for n in names])
    return out


def to_hf(state: dict[str, Tensor], version: int) -> dict[str, Tensor]:
    prefix = "swinv2." if version == 2 else "swin."
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("head."):
            out["classifier." + key[len("head.") :]] = value
            continue
        m = _BLOCK_KEY.match(key)
        if m:
            base, rest = f"{prefix}encoder.layers.{m.group(2)}.blocks.{m.group(3)}.", m.group(4)
            if rest.startswith("attn.qkv."):
                kind = rest.rsplit(".", 1)[1]
                for name, chunk in zip(("query", "key", "value"), value.chunk(3)):
                    out[f"{base}attention.self.{name}.{kind}"] = chunk.clone()
                continue
            out[base + _rename(rest, _BLOCK)] = value
            continue
        if key.startswith("layers."):
            out[prefix + "encoder." + key] = value
            continue
        out[prefix + _rename(key, _TOP)] = value
    return out


def _rename(key: str, table: list[tuple[str, str]], reverse: bool = False) -> str:
    for ours, theirs in table:
        src, dst = (theirs, ours) if reverse else (ours, theirs)
        if key.startswith(src):
            return dst + key[len(src) :]
    return key


def _drop_cls_row(value: Tensor) -> Tensor:
    """HF sizes absolute position embeddings for a (never used) class token: (1, L + 1, C)."""
    n = value.shape[1]
    side = int(round((n - 1) ** 0.5))
    return value[:, 1:] if side * side == n - 1 else value


# ---------------------------------------------------------------------- config.json
def config_from_hf(cfg: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """config.json -> (SwinConfig keyword arguments, class names or None)."""
    model_type = cfg.get("model_type")
    if model_type not in ("swin", "swinv2"):
        raise CheckpointError(f"config.json describes a {model_type!r} model, not Swin (swin/swinv2)")
    version = 2 if model_type == "swinv2" else 1
    kwargs: dict[str, Any] = dict(
        version=version,
        img_size=cfg.get("image_size", 224),
        patch_size=cfg.get("patch_size", 4),
        in_chans=cfg.get("num_channels", 3),
        embed_dim=cfg.get("embed_dim", 96),
        depths=tuple(cfg.get("depths", (2, 2, 6, 2))),
        num_heads=tuple(cfg.get("num_heads", (3, 6, 12, 24))),
        window_size=cfg.get("window_size", 7),
        mlp_ratio=cfg.get("mlp_ratio", 4.0),
        qkv_bias=cfg.get("qkv_bias", True),
        ape=cfg.get("use_absolute_embeddings", False),
        drop_path_rate=cfg.get("drop_path_rate", 0.1),
    )
    if version == 2:
        kwargs["pretrained_window_sizes"] = tuple(cfg.get("pretrained_window_sizes", (0, 0, 0, 0)))
    labels = cfg.get("id2label") or {}
    names = [labels[k] for k in sorted(labels, key=int)] if labels else None
    if names and all(re.fullmatch(r"LABEL_\d+", n) for n in names):
        names = None  # transformers' placeholders carry no information
    return kwargs, names


def hf_config(config: SwinConfig, class_names: list[str] | None) -> dict[str, Any]:
    """A config.json that ``AutoModelForImageClassification.from_pretrained`` builds the same model from."""
    windows = set(config.stage_windows)
    if len(windows) != 1 or next(iter(windows))[0] != next(iter(windows))[1]:
        raise CheckpointError(
            "Hugging Face Swin models take one square window for all stages; this model has "
            f"{config.window_size!r}",
        )
    if config.version == 1 and any(st.window != config.stage_windows[0] for st in config.layout()):
        raise CheckpointError(
            "Hugging Face Swin V1 cannot run a model whose last stages clip the window "
            f"({[st.window[0] for st in config.layout()]}); its position tables are sized for the full window",
            hint="convert to timm or official instead",
        )
    if config.ape and config.version == 2:
        raise CheckpointError("Hugging Face Swin V2 cannot run absolute position embeddings (ape)")
    h, w = config.image_hw
    if config.num_classes == 0:
        arch = "Swinv2Model" if config.version == 2 else "SwinModel"
    else:
        arch = "Swinv2ForImageClassification" if config.version == 2 else "SwinForImageClassification"
    names = class_names or [f"LABEL_{i}" for i in range(config.num_classes)]
    out: dict[str, Any] = {
        "architectures": [arch],
        "model_type": "swinv2" if config.version == 2 else "swin",
        "image_size": h if h == w else [h, w],
        "patch_size": config.patch_size,
        "num_channels": config.in_chans,
        "embed_dim": config.embed_dim,
        "depths": list(config.depths),
        "num_heads": list(config.num_heads),
        "window_size": config.stage_windows[0][0],
        "mlp_ratio": config.mlp_ratio,
        "qkv_bias": config.qkv_bias,
        "hidden_act": "gelu",
        "hidden_dropout_prob": config.drop_rate,
        "attention_probs_dropout_prob": config.attn_drop_rate,
        "drop_path_rate": config.drop_path_rate,
        "use_absolute_embeddings": config.ape,
        "layer_norm_eps": 1e-5,
        "initializer_range": 0.02,
        "encoder_stride": 32,
        "num_labels": config.num_classes,
        "id2label": {str(i): n for i, n in enumerate(names)},
        "label2id": {n: i for i, n in enumerate(names)},
    }
    if config.version == 2:
        pre = per_stage(config.pretrained_window_sizes, config.num_stages, "pretrained_window_sizes")
        if any(p[0] != p[1] for p in pre):
            raise CheckpointError("Hugging Face Swin V2 takes square pretrained windows only")
        out["pretrained_window_sizes"] = [p[0] for p in pre]
    return out

