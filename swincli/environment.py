"""What ``swin env`` reports: versions, hardware, precision and attention support, plugins.

Every probe is guarded: a broken CUDA driver or a missing optional package shows up as a value in
the report, never as a crash, because this is what users run when something is already wrong.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from swincli._version import __version__
from swincli.plugins import discover

PACKAGES = ("torch", "torchvision", "typer", "rich", "pillow", "safetensors", "huggingface_hub", "timm", "transformers")
ENV_VARS = ("SWIN_DEBUG", "SWIN_DISABLE_PLUGINS", "HF_HUB_OFFLINE", "HF_HOME", "CUDA_VISIBLE_DEVICES",
            "OMP_NUM_THREADS")  # fmt: skip


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _torch_facts() -> dict[str, Any]:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - report, don't crash
        return {"torch_error": f"{type(exc).__name__}: {exc}"}
    facts: dict[str, Any] = {
        "torch_cuda_build": torch.version.cuda or "cpu-only",
        "threads": torch.get_num_threads(),
        "cpu_bf16": _guard(lambda: bool(torch.cpu._is_avx512_bf16_supported()) or bool(torch.cpu._is_amx_tile_supported())),
        "sdpa": hasattr(torch.nn.functional, "scaled_dot_product_attention"),
        "onednn_fused_linear": _guard(_onednn_fused),  # used by the CPU inference fast path (swincli.models.fast_path)
        "inference_fast_path": _guard(_fast_path),
        "cuda_available": _guard(torch.cuda.is_available),
    }
    if facts["cuda_available"] is True:
        facts["gpus"] = [
            {
                "name": torch.cuda.get_device_name(i),
                "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
                "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
            }
            for i in range(torch.cuda.device_count())
        ]
        facts["cuda_bf16"] = _guard(torch.cuda.is_bf16_supported)
        facts["sdpa_backends"] = {
            "flash": _guard(torch.backends.cuda.flash_sdp_enabled),
            "mem_efficient": _guard(torch.backends.cuda.mem_efficient_sdp_enabled),
            "math": _guard(torch.backends.cuda.math_sdp_enabled),
        }
    facts["mps_available"] = _guard(lambda: torch.backends.mps.is_available())
    return facts


def _onednn_fused() -> bool:
    from swincli.models.fused_linear import available

    return available()


def _fast_path() -> dict[str, Any]:
    from swincli.models.fast_path import status

    return status()


def _guard(fn) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"


def collect() -> dict[str, Any]:
    report: dict[str, Any] = {
        "swincli": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "packages": {name: _version(name) for name in PACKAGES},
    }
    report.update(_torch_facts())
    report["plugins"] = [
        {"name": s.name, "target": s.value, "dist": s.dist, "version": s.version, "builtin": s.builtin} for s in discover()
    ]
    report["env"] = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    return report
