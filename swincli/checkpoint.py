"""Our checkpoint format: one ``.safetensors`` file per model.

The tensors are the model's state dict in the official key layout (derived buffers excluded). The
safetensors metadata (string to string) carries everything needed to rebuild and use the model:

- ``format`` = ``"swincli"`` and ``format_version`` (an integer, bumped on incompatible changes)
- ``config``: the full :class:`SwinConfig` as JSON
- ``class_names``: JSON list (or absent)
- ``preprocessing``: JSON object: input_size [H, W], crop_pct, interpolation, mean, std
- ``provenance``: JSON object: where the weights came from, training arguments, swincli version

safetensors cannot execute code on load, unlike pickle, so reading a file from anywhere is safe.
Writes go to a temporary file in the same folder and are renamed over the target, so an interrupted
save never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swincli.errors import CheckpointError, SwinError
from swincli.fileio import atomic_file
from swincli.models.config import SwinConfig, to_pair
from swincli.models.config_check import check_preprocessing

if TYPE_CHECKING:
    from swincli.models.swin import SwinTransformer

FORMAT_NAME = "swincli"
FORMAT_VERSION = 1
DEFAULT_CROP_PCT = 0.875  # the official evaluation: resize to size/0.875, centre crop


@dataclass
class Preprocessing:
    """Evaluation preprocessing: resize the short side to size/crop_pct, centre-crop, normalise."""

    input_size: tuple[int, int] = (224, 224)
    crop_pct: float = DEFAULT_CROP_PCT
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        check_preprocessing(data)
        return cls(
            input_size=to_pair(data.get("input_size", 224), "input_size"),
            crop_pct=float(data.get("crop_pct", DEFAULT_CROP_PCT)),
            interpolation=str(data.get("interpolation", "bicubic")),
            mean=tuple(float(v) for v in data.get("mean", cls.mean)),
            std=tuple(float(v) for v in data.get("std", cls.std)),
        )

    @classmethod
    def for_config(cls, config: SwinConfig, crop_pct: float = DEFAULT_CROP_PCT) -> "Preprocessing":
        return cls(input_size=config.image_hw, crop_pct=crop_pct)


@dataclass
class CheckpointInfo:
    """What a checkpoint's metadata says, read without loading the tensors."""

    path: Path
    format_version: int
    config: SwinConfig
    class_names: list[str] | None = None
    preprocessing: Preprocessing | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def save_model(
    model: "SwinTransformer",
    path: str | os.PathLike,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` atomically; class names and preprocessing default to the model's own."""
    from safetensors.torch import save_file

    from swincli._version import __version__

    path = Path(path)
    class_names = class_names if class_names is not None else getattr(model, "class_names", None)
    if class_names is not None and len(class_names) != model.config.num_classes:
        raise SwinError(
            f"{len(class_names)} class names for a model with {model.config.num_classes} classes",
            hint="pass one name per output class",
        )
    preprocessing = preprocessing or getattr(model, "preprocessing", None) or Preprocessing.for_config(model.config)
    prov = dict(getattr(model, "provenance", None) or {})
    prov.update(provenance or {})
    prov.setdefault("swincli_version", __version__)
    meta = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": model.config.to_json(),
        "preprocessing": json.dumps(preprocessing.to_dict()),
        "provenance": json.dumps(prov, default=str),
    }
    if class_names is not None:
        meta["class_names"] = json.dumps(list(class_names))
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_info(path: str | os.PathLike) -> CheckpointInfo:
    """Parse and validate a checkpoint's metadata; one-line errors for anything that is not ours."""
    path = Path(path)
    meta, keys = _open(path)
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is a safetensors file without swincli metadata ({len(keys)} tensors: weights of another library?)",
            hint=f"swincli.load({str(path)!r}) reads every layout; or convert it: swin convert {path} -o model.safetensors",
        )
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        raise CheckpointError(f"{path}: unreadable format_version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version}; this swincli reads up to {FORMAT_VERSION}",
            hint="upgrade swincli: python -m pip install -U swincli",
        )
    try:
        config = SwinConfig.from_json(meta["config"])
        names = json.loads(meta["class_names"]) if "class_names" in meta else None
        prep = Preprocessing.from_dict(json.loads(meta["preprocessing"])) if "preprocessing" in meta else None
        prov = json.loads(meta.get("provenance", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: corrupt swincli metadata ({exc})") from None
    return CheckpointInfo(path, version, config, names, prep, prov)


def load_model(path: str | os.PathLike, device: str | None = None) -> "SwinTransformer":
    """Our checkpoint format only, strictly: build the model from the stored config and load the weights.
    :func:`swincli.load` reads every layout, published weights by name, and adapts size and head."""
    from safetensors.torch import load_file

    info = read_info(path)
    try:
        state = load_file(str(info.path), device=str(device or "cpu"))
    except Exception as exc:  # safetensors raises its own error types for damaged data
        raise CheckpointError(f"{info.path} is truncated or corrupt ({exc})", hint="re-download or re-save it") from None
    model = build_model(info.config, state, str(info.path), device)
    model.class_names = info.class_names
    model.preprocessing = info.preprocessing
    model.provenance = info.provenance
    return model.eval()


def is_swincli_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a safetensors file with our metadata (reads the header only)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return _open(path)[0].get("format") == FORMAT_NAME
    except CheckpointError:
        return False


def build_model(config: SwinConfig, state: dict, source: str, device: str | None = None) -> "SwinTransformer":
    """A model for ``config`` holding exactly ``state``: missing, unexpected or misshapen tensors are named."""
    import torch

    from swincli.models.swin import SwinTransformer

    with torch.device("meta"):  # no initialisation work: every tensor is replaced by the loaded one
        model = SwinTransformer(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}")
        raise CheckpointError(f"{source}: weights do not match the architecture ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True, assign=True)
    model.rebuild_buffers(device or "cpu")
    return model


def _open(path: Path) -> tuple[dict[str, str], list[str]]:
    from safetensors import safe_open

    if not path.exists():
        raise CheckpointError(f"no such checkpoint: {path}", hint="check the path")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file", hint="pass the .safetensors file")
    with open(path, "rb") as fh:
        head = fh.read(9)
    if not safetensors_header(head, path.stat().st_size) and is_pickle_or_zip(head):
        raise CheckpointError(
            f"{path} is a PyTorch pickle checkpoint, not a swincli .safetensors file",
            hint=f"convert it first: swin convert {path} -o model.safetensors",
        )
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {}), list(fh.keys())
    except Exception as exc:
        size = path.stat().st_size
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({size} bytes: {_short(exc)})",
            hint="the file may be truncated or corrupt; re-download or re-save it",
        ) from None


def safetensors_header(head: bytes, size: int) -> bool:
    """A safetensors file starts with its JSON header's length (u64, little-endian), then ``{``."""
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= size - 8


def is_pickle_or_zip(head: bytes) -> bool:
    """torch.save's zip archive, or a bare pickle: the PROTO opcode 0x80 and a protocol number 2..5.

    Only asked of files whose header is not safetensors': a header length whose low byte is 0x80
    starts a valid safetensors file with the same byte.
    """
    return head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
