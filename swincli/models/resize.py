"""Resolution and window transfer: run a model at a new image size and window, the official way.

V1 (paper, section 3.3, and the official fine-tuning code): each relative position bias table is
resized bicubically on its (2M-1) x (2M-1) grid; absolute position embeddings likewise.
V2: nothing learned depends on the window. The CPB MLP and logit scales are kept, and the coordinate
tables are rebuilt for the new windows but normalised by the *pretrained* windows. Those are the
model's effective windows before its first resize (12,12,12,6 for 192 px / window 12), and they stay
fixed across later resizes, so resizing A -> B -> C equals resizing A -> C.
Derived tensors (indices, masks) are rebuilt. Parameters that change shape are replaced, so build the
optimizer after resizing.

This module plans a resize on configs alone; the modules carry it out (``set_input_size`` on the model,
``set_window_size`` on stages, blocks and attention), as in timm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from swincli.errors import ConfigError
from swincli.models.config import Pair, SizeLike, SwinConfig, WindowLike, per_stage, stage_layout
from swincli.sizes import pair_text


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


def plan_resize(
    config: SwinConfig,
    img_size: SizeLike | None = None,
    window_size: WindowLike | None = None,
    patch_size: int | None = None,
) -> tuple[SwinConfig, ResizeReport]:
    """The config a model of ``config`` has at ``img_size`` / ``window_size``, and what changes per stage.

    Pure: the model applies it (:meth:`SwinTransformer.set_input_size`). On a V2 model's first resize,
    the windows it was trained with become its pretrained windows.
    """
    if patch_size is not None and patch_size != config.patch_size:
        raise ConfigError(
            f"changing the patch size ({config.patch_size} -> {patch_size}) is not supported",
            hint="resolution transfer keeps the patch size; change the image size instead",
        )
    target = config.replace(
        img_size=config.img_size if img_size is None else img_size,
        window_size=config.window_size if window_size is None else window_size,
    )
    before = config.layout()
    report = ResizeReport((config.image_hw, target.image_hw), config.version)
    if target.image_hw == config.image_hw and target.stage_windows == config.stage_windows:
        report.changed = False
        report.stages = [_change(st, st, []) for st in before]
        return config, report
    if config.version == 2 and all(p == (0, 0) for p in _pretrained(config)):
        target = target.replace(pretrained_window_sizes=[list(st.window) for st in before])
    for old, new in zip(before, target.layout()):
        report.stages.append(_change(old, new, _actions(config, old, new)))
    if config.ape and config.patch_grid != target.patch_grid:
        report.ape = f"absolute position embedding {pair_text(config.patch_grid)} -> {pair_text(target.patch_grid)} (bicubic)"
    report.padding = padding_notes(target)
    return target, report


def _actions(config: SwinConfig, old, new) -> list[str]:
    actions = []
    if config.rel_pos and config.version == 1 and old.window != new.window:
        actions.append(f"bias tables {_grid(old.window)} -> {_grid(new.window)} (bicubic)")
    elif config.rel_pos and config.version == 2 and (old.window, old.pretrained_window) != (new.window, new.pretrained_window):
        actions.append(f"coordinates rebuilt for window {pair_text(new.window)}, normalised by {pair_text(new.pretrained_window)}")
    if any(new.shift) and (old.shift, old.padded, old.window) != (new.shift, new.padded, new.window):
        actions.append("shift mask rebuilt")
    if new.padded != new.resolution:
        actions.append(f"map padded {pair_text(new.resolution)} -> {pair_text(new.padded)}")
    return actions


def padding_notes(config: SwinConfig) -> list[str]:
    """A line per stage whose map is padded to a window multiple, naming the nearest sizes that avoid it."""
    notes = []
    for st in config.layout():
        if st.padded != st.resolution:
            notes.append(f"stage {st.index + 1}: map {pair_text(st.resolution)} is padded to {pair_text(st.padded)}")
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


def _pretrained(cfg: SwinConfig) -> list[Pair]:
    return per_stage(cfg.pretrained_window_sizes, cfg.num_stages, "pretrained_window_sizes")


def _change(old, new, actions: list[str]) -> StageChange:
    return StageChange(old.index, (old.resolution, new.resolution), (old.window, new.window), (old.shift, new.shift),
                       new.pretrained_window, new.padded, actions)  # fmt: skip


def _grid(window: Pair) -> str:
    return f"{2 * window[0] - 1}x{2 * window[1] - 1}"
