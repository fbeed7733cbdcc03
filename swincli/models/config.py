"""One configuration for Swin V1 and V2, and the per-stage layout it implies.

Pure Python on purpose: the registry, ``swin models`` and the FLOP counter read configs without
importing torch. The layout (stage resolution, clipped window, shift) follows the official rule:
a stage whose feature map is not larger than the window uses the whole map as its window and does
not shift. We apply it per dimension, which equals the official rule for square inputs and extends
it sensibly to non-square ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Sequence, Union

from swincli.errors import ConfigError
from swincli.models.config_check import check_config_fields

Pair = tuple[int, int]
SizeLike = Union[int, Sequence[int]]
# int, (h, w), or one entry (int or (h, w)) per stage
WindowLike = Union[int, Sequence[Union[int, Sequence[int]]]]


def to_pair(value: SizeLike, what: str = "size") -> Pair:
    """``7`` -> ``(7, 7)``; ``(7, 9)`` -> ``(7, 9)``; anything else is a ConfigError."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be an integer or a pair, got {value!r}")
    if isinstance(value, int):
        pair = (value, value)
    else:
        try:
            items = [int(v) for v in value]
        except (TypeError, ValueError):
            raise ConfigError(f"{what} must be an integer or a pair, got {value!r}") from None
        if len(items) != 2:
            raise ConfigError(f"{what} must be an integer or a pair (h, w), got {value!r}")
        pair = (items[0], items[1])
    if pair[0] < 0 or pair[1] < 0:
        raise ConfigError(f"{what} must not be negative, got {value!r}")
    return pair


def per_stage(value: WindowLike, num_stages: int, what: str) -> list[Pair]:
    """Expand a window-like value to one (h, w) pair per stage.

    A pair of ints means (h, w) for every stage; a sequence with one entry per stage is per stage.
    (With exactly two stages a pair of ints is read as (h, w).)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return [to_pair(value, what)] * num_stages
    items = list(value)
    if len(items) == 2 and all(isinstance(v, int) for v in items):
        return [to_pair(items, what)] * num_stages
    if len(items) != num_stages:
        raise ConfigError(
            f"{what} needs one value, a pair (h, w), or {num_stages} values (one per stage); got {value!r}"
        )
    return [to_pair(v, what) for v in items]


@dataclass(frozen=True)
class StageLayout:
    """What one stage looks like at the configured image size."""

    index: int
    dim: int
    depth: int
    num_heads: int
    resolution: Pair  # feature map entering the stage's blocks (after padding to even sizes upstream)
    window: Pair  # effective window, clipped to the map
    shift: Pair  # shift of the odd blocks (0 where the map is not larger than the window)
    pretrained_window: Pair  # V2 coordinate normaliser; (0, 0) = use the window itself
    padded: Pair  # map size after padding to window multiples (== resolution when divisible)

    @property
    def num_windows(self) -> int:
        return (self.padded[0] // self.window[0]) * (self.padded[1] // self.window[1])


@dataclass
class SwinConfig:
    """The architecture of a Swin V1/V2 model; round-trips through JSON."""

    version: int = 1
    img_size: SizeLike = 224
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 96
    depths: Sequence[int] = (2, 2, 6, 2)
    num_heads: Sequence[int] = (3, 6, 12, 24)
    window_size: WindowLike = 7
    pretrained_window_sizes: WindowLike = 0
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1
    ape: bool = False
    shift: bool = True
    rel_pos: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # reserved for forward-compatible fields

    def __post_init__(self) -> None:
        check_config_fields(self)  # types and bounds first: nothing below may see nan, a string or 1e9 blocks
        self.depths = tuple(int(d) for d in self.depths)
        self.num_heads = tuple(int(h) for h in self.num_heads)
        for name in ("img_size", "window_size", "pretrained_window_sizes"):  # lists and tuples compare equal
            setattr(self, name, _tuplify(getattr(self, name)))
        self.validate()

    # ----------------------------------------------------------------- checks
    def validate(self) -> None:
        if self.version not in (1, 2):
            raise ConfigError(f"version must be 1 or 2, got {self.version!r}")
        if not self.depths or len(self.depths) != len(self.num_heads):
            raise ConfigError(
                f"depths {list(self.depths)} and num_heads {list(self.num_heads)} need the same, non-zero length"
            )
        if any(d < 1 for d in self.depths) or any(h < 1 for h in self.num_heads):
            raise ConfigError("depths and num_heads must be positive")
        for i, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**i
            if dim % heads:
                raise ConfigError(f"stage {i}: dim {dim} is not divisible by {heads} heads")
        if self.patch_size < 1 or self.in_chans < 1 or self.num_classes < 0 or self.embed_dim < 1:
            raise ConfigError("patch_size, in_chans and embed_dim must be positive, num_classes >= 0")
        h, w = self.image_hw
        if h < 1 or w < 1:
            raise ConfigError(f"img_size must be positive, got {self.img_size!r}")
        need = 2 ** (self.num_stages - 1)
        if min(self.patch_grid) < need:
            side = need * self.patch_size
            raise ConfigError(
                f"img_size {self.img_size!r} is too small for {self.num_stages} stages",
                hint=f"use at least {side}x{side} pixels (patch {self.patch_size} x 2^{self.num_stages - 1})",
            )
        windows = self.stage_windows
        if any(a < 1 or b < 1 for a, b in windows):
            raise ConfigError(f"window_size must be positive, got {self.window_size!r}")
        per_stage(self.pretrained_window_sizes, self.num_stages, "pretrained_window_sizes")
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.mlp_ratio <= 0:
            raise ConfigError(f"mlp_ratio must be positive, got {self.mlp_ratio}")

    # ----------------------------------------------------------------- derived
    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def image_hw(self) -> Pair:
        return to_pair(self.img_size, "img_size")

    @property
    def stage_windows(self) -> list[Pair]:
        """The requested window of each stage, before clipping."""
        return per_stage(self.window_size, self.num_stages, "window_size")

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (self.num_stages - 1)

    @property
    def patch_grid(self) -> Pair:
        h, w = self.image_hw
        return (math.ceil(h / self.patch_size), math.ceil(w / self.patch_size))

    def layout(self) -> list[StageLayout]:
        return stage_layout(
            self.patch_grid,
            self.stage_windows,
            per_stage(self.pretrained_window_sizes, self.num_stages, "pretrained_window_sizes"),
            self.embed_dim,
            self.depths,
            self.num_heads,
            self.shift,
        )

    # ----------------------------------------------------------------- io
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = _listify(value)
        if not out["extra"]:
            del out["extra"]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SwinConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config fields {unknown}", hint="was this file written by a newer swincli?")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "SwinConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("config JSON must be an object")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "SwinConfig":
        data = self.to_dict()
        data.update(changes)
        return SwinConfig.from_dict(data)


def stage_layout(
    grid: Pair,
    windows: Sequence[Pair],
    pretrained: Sequence[Pair],
    embed_dim: int,
    depths: Sequence[int],
    num_heads: Sequence[int],
    shift: bool = True,
) -> list[StageLayout]:
    """Resolution, effective window and shift of every stage for a patch grid ``grid``.

    Patch merging halves the map (rounding up: odd maps are padded), so the same function serves the
    configured size and any other input size at run time.
    """
    out = []
    h, w = grid
    for i, (depth, heads) in enumerate(zip(depths, num_heads)):
        if i > 0:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        win = (min(windows[i][0], h), min(windows[i][1], w))
        shf = (
            win[0] // 2 if shift and h > windows[i][0] else 0,
            win[1] // 2 if shift and w > windows[i][1] else 0,
        )
        padded = (math.ceil(h / win[0]) * win[0], math.ceil(w / win[1]) * win[1])
        out.append(StageLayout(i, embed_dim * 2**i, depth, heads, (h, w), win, shf, tuple(pretrained[i]), padded))
    return out


def _listify(value: Any) -> Any:
    return [_listify(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuplify(value: Any) -> Any:
    return tuple(_tuplify(v) for v in value) if isinstance(value, (tuple, list)) else value
