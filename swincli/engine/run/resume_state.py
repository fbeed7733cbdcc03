"""The resume state: everything needed to continue a run exactly where it stopped, in one file.

``resume.safetensors`` holds the model, the EMA copy, the optimizer state, the RNG state and the
progress counters, so a kill can never leave them out of step with each other; it is written to a
temporary name and renamed. safetensors, not pickle: our own files never need code to load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from swincli import distributed
from swincli.errors import CheckpointError
from swincli.fileio import atomic_file

FORMAT = "swincli-resume"
VERSION = 1
RESUME_FILE = "resume.safetensors"


def _flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for key, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{key}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{key}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars, "int_keys": all(isinstance(k, int) for k in sd["state"])}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    state: dict = {}
    convert = int if meta["int_keys"] else str
    for full, value in tensors.items():
        key, name = full[len("optim.") :].rsplit(".", 1)
        state.setdefault(convert(key), {})[name] = value
    for full, value in meta["scalars"].items():
        key, name = full.rsplit(".", 1)
        state.setdefault(convert(key), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_resume(path: Path, model_state: dict, optimizer_state: dict, progress: dict, config: dict, model_config: dict,
                rng_states: list[torch.Tensor], ema_state: dict | None = None, scaler_state: dict | None = None) -> None:  # fmt: skip
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    if ema_state is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema_state.items()})
    optim_tensors, optim_meta = _flatten_optimizer(optimizer_state)
    tensors.update(optim_tensors)
    for rank, state in enumerate(rng_states):
        tensors[f"rng.cpu.{rank}"] = state
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {
        "format": FORMAT,
        "format_version": str(VERSION),
        "progress": json.dumps(progress),
        "optimizer": json.dumps(optim_meta),
        "scaler": json.dumps(scaler_state or {}),
        "config": json.dumps(config),
        "model_config": json.dumps(model_config),
    }
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_resume(run_dir: str | Path) -> dict[str, Any]:
    from safetensors import safe_open

    path = Path(run_dir) / RESUME_FILE
    if not path.is_file():
        raise CheckpointError(f"no resume state in {run_dir} (expected {RESUME_FILE})",
                              hint="pass the run directory of an earlier `swin train`")  # fmt: skip
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path} is unreadable ({str(exc)[:80]})", hint="resume from another run") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a swincli resume state")
    split = lambda prefix: {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}  # noqa: E731
    optim_meta = json.loads(meta["optimizer"])
    return {
        "model": split("model."),
        "ema": split("ema.") or None,
        "optimizer": _unflatten_optimizer({k: v for k, v in tensors.items() if k.startswith("optim.")}, optim_meta),
        "rng_cpu": {int(k.rsplit(".", 1)[1]): v for k, v in tensors.items() if k.startswith("rng.cpu.")},
        "rng_cuda": tensors.get("rng.cuda"),
        "progress": json.loads(meta["progress"]),
        "scaler": json.loads(meta["scaler"]),
        "config": json.loads(meta["config"]),
        "model_config": json.loads(meta["model_config"]),
    }


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer, fsdp: bool, zero: bool) -> tuple[dict, dict]:
    """Unsharded model and optimizer state (collective under FSDP/ZeRO: call on every rank)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(model, options=options), get_optimizer_state_dict(model, optimizer, options=options)
    if zero:
        optimizer.consolidate_state_dict(to=0)
        import torch.distributed as dist

        optim = optimizer.state_dict() if dist.get_rank() == 0 else {"state": {}, "param_groups": []}
    else:
        optim = optimizer.state_dict()
    module = distributed.unwrap(model)
    return module.state_dict(), optim


def restore(model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict, fsdp: bool) -> None:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, saved["model"], options=options)
        set_optimizer_state_dict(model, optimizer, saved["optimizer"], options=options)
        return
    distributed.unwrap(model).load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
