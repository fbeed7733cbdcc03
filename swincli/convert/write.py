"""Writing a state dict in a target layout: a single file, or a Hugging Face model folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor


def write_state(path: Path, state: dict[str, Tensor], wrap: str | None = None, safetensors: bool = False) -> None:
    """A safetensors file, or a ``torch.save`` pickle of plain tensors (optionally wrapped as ``{wrap: ...}``)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    if safetensors:
        from safetensors.torch import save_file

        save_file(tensors, str(path))
    else:
        import torch

        torch.save({wrap: tensors} if wrap else tensors, path)


def write_hf_files(folder: Path, state: dict[str, Tensor], config: dict[str, Any],
                   preprocessor: dict[str, Any] | None = None) -> None:  # fmt: skip
    """What ``from_pretrained`` opens: config.json, model.safetensors and preprocessor_config.json."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")


def hf_preprocessor(prep) -> dict[str, Any]:
    """Our eval preprocessing as an image-processor config (resize to the crop size, as the Hub's Swin models)."""
    h, w = prep.input_size
    resample = {"bicubic": 3, "bilinear": 2, "nearest": 0}.get(prep.interpolation, 3)
    return {
        "image_processor_type": "ViTImageProcessor",
        "do_resize": True,
        "size": {"height": h, "width": w},
        "resample": resample,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(prep.mean),
        "image_std": list(prep.std),
    }
