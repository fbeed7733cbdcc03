"""Reading a weight source: a state-dict file of any library (and its sidecar), or a Hugging Face or timm model folder.

Pickled files (``.pth``/``.pt``/``.bin``) are opened with ``torch.load(weights_only=True)`` only: a
pickle that needs to run code to load is refused and named, never executed. Wrappers are unwrapped
(``{'model': ...}``, ``{'state_dict': ...}``, ``{'module': ...}``, DDP's ``module.`` prefix).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from swincli.checkpoint import is_pickle_or_zip, safetensors_header
from swincli.convert.sidecar import SidecarFacts, find as find_sidecar, from_timm, is_timm_config
from swincli.errors import CheckpointError

WRAPPERS = ("model", "state_dict", "module", "model_state_dict", "model_ema")
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
HF_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass
class Source:
    """Everything read from SRC before any interpretation."""

    path: Path
    state: dict[str, Tensor]
    metadata: dict[str, str] = field(default_factory=dict)  # safetensors header metadata
    hf_config: dict[str, Any] | None = None
    hf_preprocessor: dict[str, Any] | None = None
    carried: SidecarFacts | None = None  # what a sidecar or timm config.json says beyond the tensors


def read_source(path: str | Path, sidecar: bool = True) -> Source:
    """``sidecar=False``: ignore a weight file's sidecar (e.g. published weights, which the registry describes)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such file or directory: {path}", hint="check the path")
    if path.is_dir():
        return _read_hf_dir(path)
    state, meta = read_weights(path)
    return Source(path, state, meta, carried=find_sidecar(path) if sidecar and meta.get("format") != "swincli" else None)


def read_weights(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """One weight file -> (flat state dict, safetensors metadata)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        raise CheckpointError(f"{path} is empty", hint="re-download or re-export it")
    # a safetensors header length whose low byte is 0x80 starts with pickle's PROTO byte: ask safetensors first
    if not safetensors_header(head[:9], path.stat().st_size) and is_pickle_or_zip(head):
        return _unwrap(_torch_load(path), path), {}
    return _read_safetensors(path)


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        reason = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is neither a PyTorch checkpoint nor a readable safetensors file ({reason})",
            hint="the file may be truncated or not a weight file at all",
        ) from None


def _torch_load(path: Path) -> Any:
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"unsupported GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path} contains Python objects{what} that can only be loaded by executing code; it was not loaded",
            hint="if you trust the file, re-save just its tensors: torch.save(ckpt['model'], 'weights.pth')",
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/EOFError/... for damaged archives
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:100]})",
            hint="the file may be truncated or corrupt",
        ) from None


def _unwrap(obj: Any, path: Path) -> dict[str, Tensor]:
    from torch import Tensor

    for _ in range(3):  # e.g. {'model': {'state_dict': ...}}
        if isinstance(obj, dict) and not any(isinstance(v, Tensor) for v in obj.values()):
            inner = next((obj[k] for k in WRAPPERS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not any(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors", hint="expected a model state_dict")
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if state and all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _read_hf_dir(path: Path) -> Source:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} is a directory without config.json", hint="pass a weight file, or a Hugging Face or timm model folder")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{config_file} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} must hold a JSON object, not {type(config).__name__}")
    files = [path / name for name in HF_WEIGHTS if (path / name).is_file()]
    if not files:
        for index in HF_INDEXES:
            if (path / index).is_file():
                shards = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
                files = [path / s for s in shards]
                missing = [f.name for f in files if not f.is_file()]
                if missing:
                    raise CheckpointError(f"{path} is missing weight shards: {', '.join(missing)}")
                break
    if not files:
        raise CheckpointError(
            f"{path} has a config.json but no weights (model.safetensors or pytorch_model.bin)",
            hint="download the weight files into the directory too",
        )
    state: dict[str, Tensor] = {}
    for file in files:
        state.update(read_weights(file)[0])
    if is_timm_config(config):  # timm's Hub layout (save_for_hf): config.json + model.safetensors
        return Source(path, state, carried=from_timm(config, config_file))
    prep_file = path / "preprocessor_config.json"
    prep = json.loads(prep_file.read_text()) if prep_file.is_file() else None
    return Source(path, state, {}, config, prep)
