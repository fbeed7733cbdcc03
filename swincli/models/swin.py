"""The Swin Transformer (V1 and V2): patch embedding, four stages of blocks, patch merging, head.

Parameter names follow the official layout (``layers.i.blocks.j``, patch merging at the *end* of
stage i as ``layers.i.downsample``, ``head``), so official checkpoints load by name and the other
layouts are renames. Tokens flow channels-last, ``(B, H, W, C)``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swincli.errors import ConfigError
from swincli.models.attention import ATTENTION_IMPLS, WindowAttention
from swincli.models.block import SwinBlock
from swincli.models.config import Pair, SizeLike, StageLayout, SwinConfig, WindowLike
from swincli.models.patch_embed import PatchEmbed
from swincli.models.patch_merging import PatchMerging
from swincli.models.resize import ResizeReport, plan_resize
from swincli.models.sequential_attention import DEFAULT_STAGES


def drop_path_rates(depths: Sequence[int], rate: float) -> list[float]:
    """Stochastic depth growing linearly from 0 to ``rate`` over all blocks, as in the official code."""
    total = sum(depths)
    return [rate * i / max(total - 1, 1) for i in range(total)]


class SwinStage(nn.Module):
    """Blocks alternating regular and shifted windows, then (except in the last stage) patch merging."""

    def __init__(self, config: SwinConfig, layout: StageLayout, drop_path: Sequence[float], downsample: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(
                layout.dim,
                layout.num_heads,
                layout.window,
                shift=layout.shift if i % 2 else (0, 0),
                version=config.version,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                drop=config.drop_rate,
                attn_drop=config.attn_drop_rate,
                drop_path=drop_path[i],
                pretrained_window=layout.pretrained_window,
                rel_pos=config.rel_pos,
            )
            for i in range(layout.depth)
        )
        self.downsample = PatchMerging(layout.dim, config.version) if downsample else None

    def run_blocks(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        x = self.run_blocks(x)
        return x if self.downsample is None else self.downsample(x)

    def set_window_size(self, layout: StageLayout) -> None:
        """Every block to the window, shift and pretrained window of ``layout`` (odd blocks shift)."""
        for i, block in enumerate(self.blocks):
            block.set_window_size(layout.window, layout.shift if i % 2 else (0, 0), layout.pretrained_window)


class SwinTransformer(nn.Module):
    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.config = config
        layout = config.layout()
        self.patch_embed = PatchEmbed(config.patch_size, config.in_chans, config.embed_dim)
        if config.ape:
            gh, gw = config.patch_grid
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, gh * gw, config.embed_dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        else:
            self.absolute_pos_embed = None
        self.pos_drop = nn.Dropout(config.drop_rate)
        rates = drop_path_rates(config.depths, config.drop_path_rate)
        starts = [sum(config.depths[:i]) for i in range(config.num_stages)]
        self.layers = nn.ModuleList(
            SwinStage(config, st, rates[starts[i] : starts[i] + st.depth], i < config.num_stages - 1)
            for i, st in enumerate(layout)
        )
        self.num_features = config.num_features
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, config.num_classes) if config.num_classes else nn.Identity()
        self.apply(_init_weights)
        if config.version == 2:
            for block in self.blocks():
                block.init_respostnorm()
        # what a checkpoint carries besides weights (see swincli.checkpoint)
        self.class_names: list[str] | None = None
        self.preprocessing = None
        self.provenance: dict = {}

    # ------------------------------------------------------------------ introspection
    def blocks(self) -> Iterable[SwinBlock]:
        for stage in self.layers:
            yield from stage.blocks

    def attentions(self) -> Iterable[WindowAttention]:
        for block in self.blocks():
            yield block.attn

    @property
    def feature_info(self) -> list[dict]:
        """Channels and stride of each stage output (what detection/segmentation necks need)."""
        p = self.config.patch_size
        return [
            {"stage": i, "num_chs": self.config.embed_dim * 2**i, "reduction": p * 2**i}
            for i in range(self.config.num_stages)
        ]

    def no_weight_decay(self) -> set[str]:
        """Names of parameters the official recipe trains without weight decay (besides norms and biases)."""
        keys = ("absolute_pos_embed", "relative_position_bias_table", "cpb_mlp", "logit_scale")
        return {name for name, _ in self.named_parameters() if any(k in name for k in keys)}

    def rebuild_buffers(self, device: torch.device | str | None = None) -> None:
        """Recompute the derived buffers (position indices, V2 coordinate tables), e.g. after a meta-device build."""
        for attn in self.attentions():
            attn._build_buffers(device)

    def set_input_size(self, img_size: SizeLike | None = None, window_size: WindowLike | None = None) -> ResizeReport:
        """Run at a new image size and/or window from now on, by the official transfer rules
        (see :mod:`swincli.models.resize`); returns what changed per stage."""
        target, report = plan_resize(self.config, img_size, window_size)
        if not report.changed:
            return report
        for stage, layout in zip(self.layers, target.layout()):
            stage.set_window_size(layout)
        if self.absolute_pos_embed is not None and target.patch_grid != self.config.patch_grid:
            pos = self.absolute_pos_embed
            data = _resize_grid(pos.detach(), self.config.patch_grid, target.patch_grid)
            self.absolute_pos_embed = nn.Parameter(data.flatten(1, 2), requires_grad=pos.requires_grad)
        self.config = target
        if self.preprocessing is not None:
            self.preprocessing.input_size = target.image_hw
        return report

    def reset_classifier(self, num_classes: int, row_map: Sequence[int] | None = None) -> None:
        """A new head for ``num_classes`` (0: none, the model returns pooled features). Zero-initialised, as
        the official fine-tuning does, or, with ``row_map``, row i of the old head for new class i."""
        if num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0, got {num_classes}")
        ref = next(self.parameters())
        if num_classes == 0:
            self.head = nn.Identity()
        else:
            head = nn.Linear(self.num_features, num_classes, device=ref.device, dtype=ref.dtype)
            with torch.no_grad():
                if row_map is not None:
                    rows = torch.as_tensor(list(row_map), device=ref.device)
                    head.weight.copy_(self.head.weight[rows])
                    head.bias.copy_(self.head.bias[rows])
                else:
                    nn.init.zeros_(head.weight)
                    nn.init.zeros_(head.bias)
            self.head = head
        self.config = self.config.replace(num_classes=num_classes)

    # ------------------------------------------------------------------ switches
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's two residual branches in the backward pass (:meth:`SwinBlock.forward`): far
        less activation memory, about a third slower."""
        for block in self.blocks():
            block.grad_checkpointing = enable

    def set_attention_chunk(self, windows: int | None, stages: Sequence[int] | None = DEFAULT_STAGES) -> None:
        """Attend over at most ``windows`` windows at a time in ``stages`` (0-based; None: all), the V2 paper's
        sequential attention (:mod:`swincli.models.sequential_attention`): the attention memory of a block is
        bounded by one chunk's, in inference and training, with the same results. ``windows=None``: off."""
        if windows is not None and windows < 1:
            raise ConfigError(f"attention chunk must be a positive number of windows, got {windows}")
        n = self.config.num_stages
        chosen = set(range(n)) if stages is None else set(stages)
        if not chosen or any(not 0 <= s < n for s in chosen):
            raise ConfigError(f"attention chunk stages must be among 1..{n}, got {sorted(s + 1 for s in chosen)}")
        for i, stage in enumerate(self.layers):
            for block in stage.blocks:
                block.attn.chunk = windows if i in chosen else None

    def attention_chunk(self) -> tuple[int | None, tuple[int, ...]]:
        """The chunk (windows) and the 0-based stages it applies to (empty when off)."""
        chunks = [(i, block.attn.chunk) for i, stage in enumerate(self.layers) for block in stage.blocks if block.attn.chunk]
        return (chunks[0][1] if chunks else None), tuple(sorted({i for i, _ in chunks}))

    def set_drop_path(self, rate: float) -> None:
        """Stochastic depth growing linearly from 0 to ``rate`` over all blocks (e.g. after loading weights)."""
        for block, p in zip(self.blocks(), drop_path_rates(self.config.depths, rate)):
            block.drop_path.p = p
        self.config = self.config.replace(drop_path_rate=rate)

    def set_attention(self, impl: str) -> None:
        """``"auto"`` (default: SDPA on GPUs, explicit softmax on CPU, whichever measured faster there),
        ``"sdpa"`` (always fused) or ``"eager"`` (always the explicit softmax, the reference path)."""
        if impl not in ATTENTION_IMPLS:
            raise ConfigError(f"attention must be one of {ATTENTION_IMPLS}, got {impl!r}")
        for attn in self.attentions():
            attn.impl = impl

    # ------------------------------------------------------------------ forward
    def embed(self, x: Tensor) -> Tensor:
        """Image ``(B, C, H, W)`` -> tokens ``(B, h, w, D)`` (with absolute position, if enabled)."""
        x = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            x = x + self._pos_embed_for(x.shape[1], x.shape[2])
        return self.pos_drop(x)

    def _pos_embed_for(self, h: int, w: int) -> Tensor:
        gh, gw = self.config.patch_grid
        pos = self.absolute_pos_embed.view(1, gh, gw, -1)
        if (h, w) != (gh, gw):  # another input size: resize the grid bicubically, as fine-tuning does
            pos = _resize_grid(self.absolute_pos_embed, (gh, gw), (h, w))
        return pos

    def forward_features(self, x: Tensor) -> Tensor:
        """Image -> final normalised feature map ``(B, C, h, w)``."""
        x = self.embed(x)
        for stage in self.layers:
            x = stage(x)
        return self.norm(x).permute(0, 3, 1, 2)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature map ``(B, C, h, w)`` -> logits (or the pooled features with ``pre_logits``)."""
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """Per-stage feature maps ``(B, C_i, H/(4*2^i), W/(4*2^i))`` for any input size.

        ``indices``: stage indices, or an int n for the last n stages (default: all). A stage's output
        is taken after its blocks and before its patch merging. ``norm`` applies the final norm to the
        last stage's map. Returns the maps, or ``(final normalised map, maps)``.
        """
        n = self.config.num_stages
        if indices is None:
            take = list(range(n))
        elif isinstance(indices, int):
            take = list(range(n - indices, n))
        else:
            take = [i % n for i in indices]
        if not take or any(i < 0 or i >= n for i in take):
            raise ConfigError(f"indices must select stages 0..{n - 1}, got {indices!r}")
        out = []
        x = self.embed(x)
        last = max(take) if intermediates_only else n - 1
        for i, stage in enumerate(self.layers[: last + 1]):
            x = stage.run_blocks(x)
            if i in take:
                y = self.norm(x) if norm and i == n - 1 else x
                out.append(y.permute(0, 3, 1, 2))
            if stage.downsample is not None and i < last:
                x = stage.downsample(x)
        if intermediates_only:
            return out
        return self.norm(x).permute(0, 3, 1, 2), out


def _resize_grid(pos: Tensor, old: Pair, new: Pair) -> Tensor:
    """Absolute position embeddings ``(1, h*w, C)`` on an ``old`` grid -> ``(1, h', w', C)`` on ``new``, bicubic."""
    grid = pos.reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=new, mode="bicubic", align_corners=False).to(pos.dtype)
    return grid.permute(0, 2, 3, 1)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
