"""Parameters and multiply-accumulates computed from a config, without building the model.

The MAC count follows the official analytic ``flops()`` term by term (linear layers, the two attention
matmuls and the norms; no softmax, GELU or position-bias MLP), which is what the papers report as
"FLOPs": Swin-T 4.5G, Swin-B/384 47.1G, SwinV2-T/256 5.9G. Parameter counts are exact and are checked
against the built model in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from swincli.models.config import SizeLike, StageLayout, SwinConfig, stage_layout, to_pair, per_stage
from swincli.sizes import pair_text

CPB_HIDDEN = 512  # width of the V2 continuous-position-bias MLP


@dataclass(frozen=True)
class MacReport:
    """MACs per image: patch embedding, each stage (blocks + its patch merging) and the head."""

    stem: int
    stages: tuple[int, ...]
    head: int

    @property
    def total(self) -> int:
        return self.stem + sum(self.stages) + self.head


def layout_at(config: SwinConfig, img_size: SizeLike | None = None) -> list[StageLayout]:
    """The stage layout for ``img_size`` (default: the configured size) with the config's windows."""
    if img_size is None:
        return config.layout()
    h, w = to_pair(img_size, "img_size")
    p = config.patch_size
    grid = (-(-h // p), -(-w // p))
    pretrained = per_stage(config.pretrained_window_sizes, config.num_stages, "pretrained_window_sizes")
    return stage_layout(
        grid, config.stage_windows, pretrained, config.embed_dim, config.depths, config.num_heads, config.shift
    )


def count_macs(config: SwinConfig, img_size: SizeLike | None = None) -> MacReport:
    layout = layout_at(config, img_size)
    c, p = config.embed_dim, config.patch_size
    gh, gw = layout[0].resolution
    stem = gh * gw * c * config.in_chans * p * p + gh * gw * c
    stages = []
    for st in layout:
        dim = st.dim
        hp, wp = st.padded
        n = st.window[0] * st.window[1]
        tokens = hp * wp
        hidden = int(dim * config.mlp_ratio)
        attn = st.num_windows * (n * dim * 3 * dim + 2 * n * n * dim + n * dim * dim)
        block = 2 * dim * tokens + attn + 2 * tokens * dim * hidden
        macs = st.depth * block
        if st.index < config.num_stages - 1:
            h, w = st.resolution
            merge = (h // 2) * (w // 2) * 4 * dim * 2 * dim
            # the official counters differ on the norm term: V1 norms 4C at H/2 x W/2, V2 norms 2C
            merge += h * w * dim if config.version == 1 else h * w * dim // 2
            macs += merge
        stages.append(macs)
    nf = config.num_features
    head = nf * gh * gw // 2**config.num_stages + nf * config.num_classes
    return MacReport(stem, tuple(stages), head)


def count_params(config: SwinConfig) -> int:
    c, p = config.embed_dim, config.patch_size
    total = config.in_chans * c * p * p + c + 2 * c  # conv + patch norm
    if config.ape:
        gh, gw = config.patch_grid
        total += gh * gw * c
    for st in config.layout():
        dim, heads = st.dim, st.num_heads
        hidden = int(dim * config.mlp_ratio)
        block = 4 * dim  # two LayerNorms
        block += 3 * dim * dim + dim * dim + dim  # qkv + proj
        block += dim * hidden + hidden + hidden * dim + dim  # MLP
        if config.version == 1:
            block += 3 * dim if config.qkv_bias else 0
            if config.rel_pos:
                block += (2 * st.window[0] - 1) * (2 * st.window[1] - 1) * heads
        else:
            block += 2 * dim if config.qkv_bias else 0  # q and v biases; k has none
            block += heads  # logit scale
            if config.rel_pos:
                block += 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * heads
        total += st.depth * block
        if st.index < config.num_stages - 1:
            total += 4 * dim * 2 * dim + (2 * 4 * dim if config.version == 1 else 2 * 2 * dim)
    nf = config.num_features
    total += 2 * nf
    if config.num_classes:
        total += nf * config.num_classes + config.num_classes
    return total


def window_notes(config: SwinConfig) -> list[str]:
    """A note when a requested window is clipped to a feature map it exceeds even at the stage before.

    The last stages' routine clip (a 7-window on Swin-T's 7x7 map, 3 on the demo's 2x2) is the official
    rule and goes unmentioned; ``--window 1000`` at 48 px, where every stage attends over its whole map,
    does not.
    """
    layout, wanted = config.layout(), config.stage_windows
    clipped = [
        st for st in layout
        if any(w > r and (st.index == 0 or w > layout[st.index - 1].resolution[i])
               for i, (w, r) in enumerate(zip(wanted[st.index], st.resolution)))
    ]  # fmt: skip
    if not clipped:
        return []
    stages = ", ".join(f"stage {st.index + 1} {pair_text(wanted[st.index])} -> {pair_text(st.window)}" for st in clipped)
    return [f"window larger than the feature map, clipped to it ({stages}): those stages attend globally, without shift"]
