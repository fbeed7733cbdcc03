"""Resolution and window transfer: run a model at a new image size and window, the official way.

V1 (paper, section 3.3, and the official fine-tuning code): each relative position bias table is
resized bicubically on its (2M-1) x (2M-1) grid; absolute position embeddings likewise.
V2: nothing learned depends on the window. The CPB MLP and logit scales are kept, and the coordinate
tables are rebuilt for the new windows but normalised by the *pretrained* windows. Those are the
model's effective windows before its first resize (12,12,12,6 for 192 px / window 12), and they stay
fixed across later resizes, so resizing A -> B -> C equals resizing A -> C.
Derived tensors (indices, masks) are rebuilt. Parameters that change shape are replaced, so build the
optimizer after resizing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from swincli.errors import ConfigError
from swincli.models.config import Pair, SizeLike, SwinConfig, WindowLike, per_stage, stage_layout
from swincli.models.relative_position_bias import resize_table

if TYPE_CHECKING:
    from swincli.models.swin import SwinTransformer


@dataclass
class StageChange:
    stage: int
    resolution: tuple[Pair, Pair]
    window: tuple[Pair, Pair]
    shift: tuple[Pair, Pair]
    pretrained_window: Pair
    padded: Pair
    actions: list[str] = field(default_factory=list)


@dataclass
class ResizeReport:
    img_size: tuple[Pair, Pair]
    version: int
    stages: list[StageChange] = field(default_factory=list)
    ape: str | None = None
    padding: list[str] = field(default_factory=list)  # one line per padded stage, with sizes that avoid it
    changed: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (pairs as lists)."""
        from dataclasses import asdict

        return json.loads(json.dumps(asdict(self)))


def resize_model(
    model: "SwinTransformer",
    img_size: SizeLike | None = None,
    window_size: WindowLike | None = None,
    patch_size: int | None = None,
) -> ResizeReport:
    """Adapt ``model`` in place to ``img_size`` and/or ``window_size``; returns what changed."""
    cfg = model.config
    if patch_size is not None and patch_size != cfg.patch_size:
        raise ConfigError(
            f"changing the patch size ({cfg.patch_size} -> {patch_size}) is not supported",
            hint="resolution transfer keeps the patch size; change the image size instead",
        )
    target = cfg.replace(
        img_size=cfg.img_size if img_size is None else img_size,
        window_size=cfg.window_size if window_size is None else window_size,
    )
    before = cfg.layout()
    report = ResizeReport((cfg.image_hw, target.image_hw), cfg.version)
    if target.image_hw == cfg.image_hw and target.stage_windows == cfg.stage_windows:
        report.changed = False
        report.stages = [_change(st, st, []) for st in before]
        return report
    if cfg.version == 2 and all(p == (0, 0) for p in _pretrained(cfg)):
        target = target.replace(pretrained_window_sizes=[list(st.window) for st in before])
    after = target.layout()
    device = model.patch_embed.proj.weight.device
    for stage, old, new in zip(model.layers, before, after):
        actions = []
        for j, block in enumerate(stage.blocks):
            attn = block.attn
            block.window = new.window
            block.shift = new.shift if j % 2 else (0, 0)
            if attn.rel_pos and cfg.version == 1 and old.window != new.window:
                table = attn.relative_position_bias_table
                attn.relative_position_bias_table = nn.Parameter(
                    resize_table(table, old.window, new.window), requires_grad=table.requires_grad
                )
            attn.window, attn.pretrained_window = new.window, new.pretrained_window
            attn._build_buffers(device)
        if attn.rel_pos and cfg.version == 1 and old.window != new.window:
            actions.append(f"bias tables {_grid(old.window)} -> {_grid(new.window)} (bicubic)")
        elif attn.rel_pos and cfg.version == 2 and (old.window, old.pretrained_window) != (new.window, new.pretrained_window):
            actions.append(f"coordinates rebuilt for window {_fmt(new.window)}, normalised by {_fmt(new.pretrained_window)}")
        if any(new.shift) and (old.shift, old.padded, old.window) != (new.shift, new.padded, new.window):
            actions.append("shift mask rebuilt")
        if new.padded != new.resolution:
            actions.append(f"map padded {_fmt(new.resolution)} -> {_fmt(new.padded)}")
        report.stages.append(_change(old, new, actions))
    if model.absolute_pos_embed is not None and cfg.patch_grid != target.patch_grid:
        _resize_ape(model, cfg.patch_grid, target.patch_grid)
        report.ape = f"absolute position embedding {_fmt(cfg.patch_grid)} -> {_fmt(target.patch_grid)} (bicubic)"
    report.padding = padding_notes(target)
    model.config = target
    if getattr(model, "preprocessing", None) is not None:
        model.preprocessing.input_size = target.image_hw
    return report


def padding_notes(config: SwinConfig) -> list[str]:
    """A line per stage whose map is padded to a window multiple, naming the nearest sizes that avoid it."""
    notes = []
    for st in config.layout():
        if st.padded != st.resolution:
            notes.append(f"stage {st.index + 1}: map {_fmt(st.resolution)} is padded to {_fmt(st.padded)}")
    if notes:
        h, w = config.image_hw
        sizes = [_nearest_unpadded(config, h, 0), _nearest_unpadded(config, w, 1)]
        options = " or ".join(str(s) for s in sizes[0]) if h == w else (
            f"height {' or '.join(map(str, sizes[0]))}, width {' or '.join(map(str, sizes[1]))}"
        )  # fmt: skip
        notes.append(f"sizes that need no padding: {options}")
    return notes


def _nearest_unpadded(config: SwinConfig, size: int, axis: int) -> list[int]:
    p = config.patch_size
    windows = [(w[axis], w[axis]) for w in config.stage_windows]
    pre = [(0, 0)] * config.num_stages

    def clean(s: int) -> bool:
        grid = (s // p, s // p)
        layout = stage_layout(grid, windows, pre, config.embed_dim, config.depths, config.num_heads)
        return s % p == 0 and all(st.padded == st.resolution for st in layout)

    below = next((s for s in range(size, p * 2 ** config.num_stages - 1, -1) if clean(s)), None)
    above = next((s for s in range(size, size * 4 + 64) if clean(s)), None)
    return [s for s in (below, above) if s is not None]


def reset_head(model: "SwinTransformer", num_classes: int) -> str:
    """New classifier for ``num_classes``; 21841 -> 1000 keeps the matching rows (official 22k -> 1k map)."""
    from swincli.labels import imagenet_names, map_22k_to_1k

    old = model.config.num_classes
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0, got {num_classes}")
    if num_classes == old:
        return "head unchanged"
    head = model.head
    if old == 21841 and num_classes == 1000:
        rows = torch.tensor(map_22k_to_1k(), device=head.weight.device)
        new = nn.Linear(model.num_features, 1000, device=head.weight.device, dtype=head.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(head.weight[rows])
            new.bias.copy_(head.bias[rows])
        model.head = new
        model.class_names = list(imagenet_names(1000))
        what = "head 21841 -> 1000 classes with the official ImageNet-22k -> 1k row mapping"
    elif num_classes == 0:
        model.head = nn.Identity()
        model.class_names = None
        what = f"head removed ({old} -> 0 classes): the model returns pooled features"
    else:
        ref = next(model.parameters())
        new = nn.Linear(model.num_features, num_classes, device=ref.device, dtype=ref.dtype)
        nn.init.zeros_(new.weight)  # the official fine-tuning initialisation of a new head
        nn.init.zeros_(new.bias)
        model.head = new
        model.class_names = None
        what = f"head {old} -> {num_classes} classes, zero-initialised"
    model.config = model.config.replace(num_classes=num_classes)
    return what


def _resize_ape(model: "SwinTransformer", old: Pair, new: Pair) -> None:
    pos = model.absolute_pos_embed
    grid = pos.detach().reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=new, mode="bicubic", align_corners=False)
    data = grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], -1).to(pos.dtype)
    model.absolute_pos_embed = nn.Parameter(data, requires_grad=pos.requires_grad)


def _pretrained(cfg: SwinConfig) -> list[Pair]:
    return per_stage(cfg.pretrained_window_sizes, cfg.num_stages, "pretrained_window_sizes")


def _change(old, new, actions: list[str]) -> StageChange:
    return StageChange(old.index, (old.resolution, new.resolution), (old.window, new.window), (old.shift, new.shift),
                       new.pretrained_window, new.padded, actions)  # fmt: skip


def _grid(window: Pair) -> str:
    return f"{2 * window[0] - 1}x{2 * window[1] - 1}"


def _fmt(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"

