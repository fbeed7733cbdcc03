"""swincli: Swin Transformer V1/V2 for PyTorch, as a command line (``swin``) and a Python API.

The names below are imported lazily, so ``import swincli`` (and ``swin --help``) never imports torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from swincli._version import __version__

_EXPORTS = {
    "SwinConfig": "swincli.models.config",
    "SwinTransformer": "swincli.models.swin",
    "create_model": "swincli.models.registry",
    "list_models": "swincli.models.registry",
    "get_entry": "swincli.models.registry",
    "count_params": "swincli.models.complexity",
    "count_macs": "swincli.models.complexity",
    "save_model": "swincli.checkpoint",
    "load_model": "swincli.checkpoint",
    "read_info": "swincli.checkpoint",
    "Preprocessing": "swincli.checkpoint",
    "SwinError": "swincli.errors",
    "reset_head": "swincli.labels",
    "optimize_for_inference": "swincli.models.fast_path",
    "load": "swincli.loader",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'swincli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
