"""``--check``: run the other library's own model on the same input and compare logits.

This is the one place swincli touches timm or transformers, and only when they are installed: they
are the ground truth a conversion is checked against, never something the product needs. The official
code is not a package; timm (numerically identical to it) loads official files through timm's own
filter function, so that check stays independent of our key mapping.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from swincli.models.config import SwinConfig

LIBRARY = {"official": "timm", "timm": "timm", "hf": "transformers", "torchvision": "torchvision"}
TOLERANCE = 1e-4  # max |diff| / max |logit|; exact conversions land around 1e-7 in float32


def available(layout: str) -> bool:
    lib = LIBRARY.get(layout)
    return lib is not None and importlib.util.find_spec(lib) is not None


def why_not(layout: str, config: SwinConfig) -> str | None:
    """A reason the reference library cannot build this architecture, or None."""
    if layout in ("official", "timm") and (config.ape or not config.rel_pos or not config.shift):
        return "timm has no ape/rel_pos/shift ablation switches"
    if layout == "torchvision" and config.num_classes == 0:
        return "torchvision models always have a classifier"
    return None


def reference_model(layout: str, config: SwinConfig, state: dict[str, Tensor], hf_dir: Path | None = None) -> nn.Module:
    """The reference library's model with ``state`` (in that library's layout) loaded strictly."""
    if layout in ("official", "timm"):
        return _timm(config, state, official=layout == "official")
    if layout == "hf":
        return _hf(config, state, hf_dir)
    if layout == "torchvision":
        return _torchvision(config, state)
    raise ValueError(layout)


def compare(ours: nn.Module, reference: nn.Module, config: SwinConfig, layout: str, seed: int = 0) -> float:
    """Max |ours - reference| / max |reference| on one random batch of two images."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, config.in_chans, *config.image_hw, generator=g)
    ours.eval()
    reference.eval()
    with torch.no_grad():
        want = _logits(reference, x, layout, config)
        got = ours(x) if config.num_classes else ours.forward_head(ours.forward_features(x), pre_logits=True)
    return ((want - got).abs().max() / want.abs().max().clamp_min(1e-12)).item()


def _logits(model: nn.Module, x: Tensor, layout: str, config: SwinConfig) -> Tensor:
    if layout == "hf":
        out = model(pixel_values=x)
        return out.logits if config.num_classes else out.pooler_output
    if layout in ("official", "timm") and not config.num_classes:
        return model.forward_head(model.forward_features(x), pre_logits=True)
    return model(x)


def _timm(config: SwinConfig, state: dict[str, Tensor], official: bool) -> nn.Module:
    kwargs = dict(
        img_size=config.image_hw,
        patch_size=config.patch_size,
        in_chans=config.in_chans,
        num_classes=config.num_classes,
        embed_dim=config.embed_dim,
        depths=config.depths,
        num_heads=config.num_heads,
        window_size=[w for w in config.stage_windows],
        mlp_ratio=config.mlp_ratio,
        qkv_bias=config.qkv_bias,
    )
    if config.version == 1:
        from timm.models.swin_transformer import SwinTransformer, checkpoint_filter_fn
    else:
        from timm.models.swin_transformer_v2 import SwinTransformerV2 as SwinTransformer
        from timm.models.swin_transformer_v2 import checkpoint_filter_fn

        pre = config.layout()
        kwargs["pretrained_window_sizes"] = tuple(st.pretrained_window[0] for st in pre)
    model = SwinTransformer(**kwargs)
    if official:
        state = checkpoint_filter_fn(dict(state), model)
    model.load_state_dict(state, strict=True)
    return model


def _hf(config: SwinConfig, state: dict[str, Tensor], hf_dir: Path | None) -> nn.Module:
    from transformers import AutoModel, AutoModelForImageClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    auto = AutoModelForImageClassification if config.num_classes else AutoModel
    if hf_dir is not None:
        return auto.from_pretrained(str(hf_dir))
    from swincli.convert.hf_layout import hf_config
    from swincli.convert.write import write_hf_files

    with tempfile.TemporaryDirectory() as tmp:
        write_hf_files(Path(tmp), state, hf_config(config, None))
        return auto.from_pretrained(tmp)


def _torchvision(config: SwinConfig, state: dict[str, Tensor]) -> nn.Module:
    from torchvision.models import swin_transformer as tv

    v2 = config.version == 2
    model = tv.SwinTransformer(
        patch_size=[config.patch_size, config.patch_size],
        embed_dim=config.embed_dim,
        depths=list(config.depths),
        num_heads=list(config.num_heads),
        window_size=list(config.stage_windows[0]),
        mlp_ratio=config.mlp_ratio,
        stochastic_depth_prob=0.0,
        num_classes=config.num_classes,
        block=tv.SwinTransformerBlockV2 if v2 else tv.SwinTransformerBlock,
        downsample_layer=tv.PatchMergingV2 if v2 else tv.PatchMerging,
    )
    model.load_state_dict(state, strict=True)
    return model
