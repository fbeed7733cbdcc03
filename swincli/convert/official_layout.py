"""The official (Microsoft) layout: ours, plus stored derived buffers and SimMIM's naming.

Importing drops the buffers (and a SimMIM checkpoint's ``encoder.`` prefix, ``rpe_mlp`` name and
decoder). Exporting adds them back, computed for the model's windows, so the official code can load
the file strictly.
"""

from __future__ import annotations

from torch import Tensor

from swincli.convert.buffers import is_derived
from swincli.models.shift_mask import shift_mask


def from_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    if any(k.startswith("encoder.") for k in state):  # SimMIM: encoder + decoder + mask token
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
        state = {k: v for k, v in state.items() if k != "mask_token"}
    return {k.replace(".rpe_mlp.", ".cpb_mlp."): v for k, v in state.items() if not is_derived(k)}


def to_official(state: dict[str, Tensor], model) -> dict[str, Tensor]:
    """Ours -> official, with ``relative_position_index``, ``attn_mask`` and V2 ``relative_coords_table``."""
    out = dict(state)
    layout = model.config.layout()
    for i, stage in enumerate(model.layers):
        for j, block in enumerate(stage.blocks):
            prefix = f"layers.{i}.blocks.{j}."
            attn = block.attn
            if attn.rel_pos:
                out[prefix + "attn.relative_position_index"] = attn.relative_position_index.cpu().clone()
                if attn.version == 2:
                    out[prefix + "attn.relative_coords_table"] = attn.relative_coords_table.cpu().clone()
            mask = shift_mask(layout[i].padded, block.window, block.shift)
            if mask is not None:
                out[prefix + "attn_mask"] = mask
    return out
