"""torchvision layout: one ``features`` Sequential with stages and patch merging interleaved.

``features.0`` is the patch embedding (conv, permute, norm), ``features.{2i+1}`` stage i,
``features.{2i+2}`` the patch merging after it; MLPs are ``mlp.0``/``mlp.3``. V2 keeps one 3C qkv bias
whose k third is unused (zeroed in every forward). torchvision stores the relative position index
(flattened) and the V2 coordinate table as persistent buffers, so exporting adds them back.

torchvision has no pretrained window and never clips a window to the feature map (it pads instead),
so only models without either feature can be written in its layout without changing the logits.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from swincli.convert.buffers import is_derived
from swincli.errors import CheckpointError

_STAGE = re.compile(r"^features\.(\d+)\.(\d+)\.(.*)$")
_MERGE = re.compile(r"^features\.(\d+)\.(reduction|norm)\.(.*)$")
_MLP = [("mlp.fc1.", "mlp.0."), ("mlp.fc2.", "mlp.3.")]


def from_torchvision(state: dict[str, Tensor]) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if is_derived(key):
            continue
        if key.startswith("features.0.0."):
            out["patch_embed.proj." + key[len("features.0.0.") :]] = value
        elif key.startswith("features.0.2."):
            out["patch_embed.norm." + key[len("features.0.2.") :]] = value
        elif m := _MERGE.match(key):
            out[f"layers.{int(m.group(1)) // 2 - 1}.downsample.{m.group(2)}.{m.group(3)}"] = value
        elif m := _STAGE.match(key):
            rest = m.group(3)
            for ours, theirs in _MLP:
                rest = ours + rest[len(theirs) :] if rest.startswith(theirs) else rest
            base = f"layers.{(int(m.group(1)) - 1) // 2}.blocks.{m.group(2)}."
            if rest == "attn.qkv.bias" and _is_v2(state, m.group(1), m.group(2)):
                q, _, v = value.chunk(3)  # the k third is never used by torchvision's forward
                out[base + "attn.q_bias"], out[base + "attn.v_bias"] = q.clone(), v.clone()
            else:
                out[base + rest] = value
        else:
            out[key] = value  # norm.*, head.*
    return out


def _is_v2(state: dict[str, Tensor], stage: str, block: str) -> bool:
    return f"features.{stage}.{block}.attn.logit_scale" in state


def to_torchvision(state: dict[str, Tensor], model) -> dict[str, Tensor]:
    config = model.config
    for st in config.layout():
        if st.window != config.stage_windows[st.index]:
            raise CheckpointError(
                f"torchvision pads instead of clipping windows; stage {st.index + 1} of this model clips its "
                f"window to {st.window}, so torchvision would compute different logits",
                hint="convert to timm, hf or official instead",
            )
        if config.version == 2 and st.pretrained_window not in ((0, 0), st.window):
            raise CheckpointError(
                "torchvision Swin V2 has no pretrained window; this model normalises its position bias by "
                f"{st.pretrained_window} (window {st.window}), so torchvision would compute different logits",
                hint="convert to timm, hf or official instead",
            )
    if len(set(config.stage_windows)) != 1:
        raise CheckpointError("torchvision Swin takes one window for all stages")
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("patch_embed.proj."):
            out["features.0.0." + key[len("patch_embed.proj.") :]] = value
        elif key.startswith("patch_embed.norm."):
            out["features.0.2." + key[len("patch_embed.norm.") :]] = value
        elif m := re.match(r"^layers\.(\d+)\.downsample\.(.*)$", key):
            out[f"features.{2 * int(m.group(1)) + 2}.{m.group(2)}"] = value
        elif m := re.match(r"^layers\.(\d+)\.blocks\.(\d+)\.(.*)$", key):
            base, rest = f"features.{2 * int(m.group(1)) + 1}.{m.group(2)}.", m.group(3)
            if rest == "attn.v_bias":
                continue
            if rest == "attn.q_bias":
                v = state[key[: -len("q_bias")] + "v_bias"]
                out[base + "attn.qkv.bias"] = torch.cat([value, torch.zeros_like(v), v])
                continue
            for ours, theirs in _MLP:
                rest = theirs + rest[len(ours) :] if rest.startswith(ours) else rest
            out[base + rest] = value
        elif key == "absolute_pos_embed":
            raise CheckpointError("torchvision Swin has no absolute position embedding (ape)")
        else:
            out[key] = value
    for i, stage in enumerate(model.layers):
        for j, block in enumerate(stage.blocks):
            attn, base = block.attn, f"features.{2 * i + 1}.{j}.attn."
            if not attn.rel_pos:
                raise CheckpointError("torchvision Swin always has a position bias (rel_pos=False models cannot be written)")
            out[base + "relative_position_index"] = attn.relative_position_index.cpu().flatten().clone()
            if attn.version == 2:
                out[base + "relative_coords_table"] = attn.relative_coords_table.cpu().clone()
    return out
