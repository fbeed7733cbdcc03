"""Named Swin variants: canonical names in timm's scheme, short aliases, and the weights each has.

An alias is another spelling of exactly one canonical name, with the same meaning in every command.
Canonical names match timm's exactly, so a public weight tag (``arch.tag``, e.g.
``swinv2_base_window12to24_192to384.ms_in22k_ft_in1k``) maps one to one onto an entry here. Like
torchvision's weight enums, each weight carries what evaluating it needs: classes, eval
preprocessing and its published accuracy. This module imports no torch; ``create_model`` does.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swincli.errors import UnknownModelError
from swincli.models.config import SwinConfig

if TYPE_CHECKING:
    from swincli.models.swin import SwinTransformer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TINY = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
SMALL = dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24))
BASE = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))
LARGE = dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48))
HUGE = dict(embed_dim=352, depths=(2, 2, 18, 2), num_heads=(11, 22, 44, 88))
GIANT = dict(embed_dim=512, depths=(2, 2, 42, 4), num_heads=(16, 32, 64, 128))
NANO = dict(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
TO_LARGE_WINDOW = (12, 12, 12, 6)  # effective windows of a 192 px / window 12 pretraining


@dataclass(frozen=True)
class Weights:
    """A released weight file for an architecture, in timm's ``arch.tag`` naming."""

    tag: str
    num_classes: int = 1000
    top1: float | None = None  # ImageNet-1k top-1 as published (timm's evaluation)
    crop_pct: float = 0.9
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    hub: bool = True  # on the Hugging Face Hub as timm/<arch>.<tag>

    @property
    def dataset(self) -> str:
        return "imagenet-22k" if self.num_classes == 21841 else "imagenet-1k"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config: dict[str, Any]
    weights: tuple[Weights, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def default_weights(self) -> Weights | None:
        """The best ImageNet-1k weight, else the first one: what ``--model NAME`` loads for this entry's
        name and every alias of it (an alias never means another entry's weights)."""
        ones = [w for w in self.weights if w.num_classes == 1000 and w.top1 is not None]
        return max(ones, key=lambda w: w.top1) if ones else (self.weights[0] if self.weights else None)

    def build_config(self, **overrides: Any) -> SwinConfig:
        values = dict(self.config)
        default = self.default_weights
        if default is not None:
            values.setdefault("num_classes", default.num_classes)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return SwinConfig(**values)


_REGISTRY: dict[str, ModelEntry] = {}
_ALIASES: dict[str, str] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a variant (plugins may call this too). Names and aliases must be new."""
    for key in (entry.name, *entry.aliases):
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(f"model name {key!r} is already registered")
    _REGISTRY[entry.name] = entry
    for alias in entry.aliases:
        _ALIASES[alias] = entry.name
    return entry


def _v1(name: str, arch: dict, img: int, win: int, dp: float, weights: tuple, aliases=(), desc="") -> None:
    config = dict(version=1, img_size=img, window_size=win, drop_path_rate=dp, **arch)
    register(ModelEntry(name, config, weights, aliases, desc))


def _v2(name: str, arch: dict, img: int, win: int, dp: float, weights: tuple, pre=0, aliases=(), desc="") -> None:
    config = dict(version=2, img_size=img, window_size=win, pretrained_window_sizes=pre, drop_path_rate=dp, **arch)
    register(ModelEntry(name, config, weights, aliases, desc))


def _ms(top1_1k: float | None, top1_22k_ft: float | None, crop: float = 0.9, in22k: bool = True) -> tuple:
    out = []
    if top1_22k_ft is not None:
        out.append(Weights("ms_in22k_ft_in1k", top1=top1_22k_ft, crop_pct=crop))
    if top1_1k is not None:
        out.append(Weights("ms_in1k", top1=top1_1k, crop_pct=crop))
    if in22k:
        out.append(Weights("ms_in22k", num_classes=21841, crop_pct=crop))
    return tuple(out)


# --- Swin V1 (paper Table 1; drop path = the official ImageNet-1k training value)
_v1("swin_tiny_patch4_window7_224", TINY, 224, 7, 0.2, _ms(81.388, 80.966), ("swin-t",), "Swin-T")
_v1("swin_small_patch4_window7_224", SMALL, 224, 7, 0.3, _ms(83.228, 83.330), ("swin-s",), "Swin-S")
_v1("swin_base_patch4_window7_224", BASE, 224, 7, 0.5, _ms(83.604, 85.276), ("swin-b",), "Swin-B")
_v1("swin_base_patch4_window12_384", BASE, 384, 12, 0.5, _ms(84.478, 86.442, crop=1.0), (), "Swin-B at 384")
_v1("swin_large_patch4_window7_224", LARGE, 224, 7, 0.2, _ms(None, 86.320), ("swin-l",), "Swin-L")
_v1("swin_large_patch4_window12_384", LARGE, 384, 12, 0.2, _ms(None, 87.142, crop=1.0), (), "Swin-L at 384")
_v1(
    "swin_tiny_c24_patch4_window8_256",
    dict(TINY, num_heads=(4, 8, 16, 32)),
    256,
    8,
    0.2,
    (Weights("ms_in1k", top1=81.6, crop_pct=0.875, hub=False),),
    (),
    "Swin-T with head dim 24 (official release, not on the Hub)",
)
_v1("swin_nano_patch4_window7_224", NANO, 224, 7, 0.1, (), ("swin-nano",), "C=32 toy model for CPU demos and tests")

# --- Swin V2 (model zoo); "AtoB" names are 192 px / window 12 pretrainings fine-tuned at a larger size
_in1k = lambda top1: (Weights("ms_in1k", top1=top1),)  # noqa: E731
_ft = lambda top1, crop=0.9: (Weights("ms_in22k_ft_in1k", top1=top1, crop_pct=crop),)  # noqa: E731
_22k = (Weights("ms_in22k", num_classes=21841),)
_v2("swinv2_tiny_window8_256", TINY, 256, 8, 0.2, _in1k(81.824), aliases=("swinv2-t",), desc="SwinV2-T")
_v2("swinv2_tiny_window16_256", TINY, 256, 16, 0.2, _in1k(82.828), desc="SwinV2-T, window 16")
_v2("swinv2_small_window8_256", SMALL, 256, 8, 0.3, _in1k(83.844), aliases=("swinv2-s",), desc="SwinV2-S")
_v2("swinv2_small_window16_256", SMALL, 256, 16, 0.3, _in1k(84.216), desc="SwinV2-S, window 16")
_v2("swinv2_base_window8_256", BASE, 256, 8, 0.5, _in1k(84.246), aliases=("swinv2-b",), desc="SwinV2-B")
_v2("swinv2_base_window16_256", BASE, 256, 16, 0.5, _in1k(84.608), desc="SwinV2-B, window 16")
_v2("swinv2_base_window12_192", BASE, 192, 12, 0.2, _22k, desc="SwinV2-B ImageNet-22k pretraining")
_v2("swinv2_base_window12to16_192to256", BASE, 256, 16, 0.2, _ft(86.270), TO_LARGE_WINDOW, desc="SwinV2-B 22k->1k")
_v2(
    "swinv2_base_window12to24_192to384", BASE, 384, 24, 0.2, _ft(87.142, 1.0), TO_LARGE_WINDOW, desc="SwinV2-B 22k->1k at 384"
)
_v2("swinv2_large_window12_192", LARGE, 192, 12, 0.2, _22k, desc="SwinV2-L ImageNet-22k pretraining")
_v2(
    "swinv2_large_window12to16_192to256",
    LARGE,
    256,
    16,
    0.2,
    _ft(86.934),
    TO_LARGE_WINDOW,
    aliases=("swinv2-l",),
    desc="SwinV2-L 22k->1k",
)
_v2(
    "swinv2_large_window12to24_192to384", LARGE, 384, 24, 0.2, _ft(87.474, 1.0), TO_LARGE_WINDOW, desc="SwinV2-L 22k->1k at 384"
)
_v2("swinv2_huge_window8_256", HUGE, 256, 8, 0.2, (), aliases=("swinv2-h",), desc="SwinV2-H (paper; no public weights)")
_v2("swinv2_giant_window8_256", GIANT, 256, 8, 0.2, (), aliases=("swinv2-g",), desc="SwinV2-G (paper; no public weights)")
_v2("swinv2_nano_window8_256", NANO, 256, 8, 0.1, (), aliases=("swinv2-nano",), desc="C=32 toy model for CPU demos and tests")


# ---------------------------------------------------------------------- lookup
def split_name(name: str) -> tuple[str, str | None]:
    """``"arch.tag"`` -> ``("arch", "tag")``; ``"arch"`` -> ``("arch", None)``."""
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def get_entry(name: str) -> ModelEntry:
    """Resolve a canonical name or alias (a ``.tag`` suffix is allowed); suggests close names if unknown."""
    arch, _ = split_name(name.strip())
    key = arch.lower()
    key = _ALIASES.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    choices = list(_REGISTRY) + list(_ALIASES)
    close = difflib.get_close_matches(key, choices, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "run `swin models list` to see every name"
    raise UnknownModelError(f"unknown model {name!r}", hint=hint)


def get_weights(name: str) -> Weights | None:
    """The weight an ``arch.tag`` name points at (default weight when no tag)."""
    entry = get_entry(name)
    _, tag = split_name(name)
    if tag is None:
        return entry.default_weights
    for w in entry.weights:
        if w.tag == tag:
            return w
    known = ", ".join(w.tag for w in entry.weights) or "none"
    raise UnknownModelError(f"model {entry.name!r} has no weights tagged {tag!r}", hint=f"known tags: {known}")


def list_models(pattern: str | None = None, version: int | None = None, pretrained: bool = False) -> list[ModelEntry]:
    """Entries whose name or an alias matches ``pattern`` (fnmatch, e.g. ``"swinv2*"``), sorted by name."""
    out = []
    for entry in _REGISTRY.values():
        if version is not None and entry.config["version"] != version:
            continue
        if pretrained and not entry.weights:
            continue
        if pattern and not any(fnmatch.fnmatch(n, pattern) for n in (entry.name, *entry.aliases)):
            continue
        out.append(entry)
    return sorted(out, key=lambda e: e.name)


def aliases() -> dict[str, str]:
    return dict(_ALIASES)


def create_model(name: str, **overrides: Any) -> "SwinTransformer":
    """Build a randomly initialised model by name.

    Overrides (None means "keep the default"): img_size, window_size, num_classes,
    pretrained_window_sizes, drop_path_rate, drop_rate, attn_drop_rate, in_chans, and the ablation
    switches ape, shift, rel_pos.
    """
    from swincli.models.swin import SwinTransformer

    allowed = {
        "img_size", "window_size", "num_classes", "pretrained_window_sizes", "drop_path_rate", "drop_rate",
        "attn_drop_rate", "in_chans", "ape", "shift", "rel_pos",
    }  # fmt: skip
    bad = sorted(set(overrides) - allowed)
    if bad:
        raise TypeError(f"create_model() got unsupported overrides {bad}; allowed: {sorted(allowed)}")
    return SwinTransformer(get_entry(name).build_config(**overrides))


__all__ = [
    "ModelEntry", "Weights", "register", "get_entry", "get_weights", "list_models", "aliases", "create_model",
    "split_name",
]  # fmt: skip

