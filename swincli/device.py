"""Choosing the device a command runs on, with a one-line answer when it is not there.

torch's own errors for ``cuda`` on a machine without a GPU ("Found no NVIDIA driver") or ``cuda:3``
with two GPUs ("invalid device ordinal") come late and read like bugs; this check comes first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swincli.errors import SwinError, SwinUsageError

if TYPE_CHECKING:
    import torch


def pick_device(requested: str | None) -> str:
    """``None``/``"auto"``: cuda when available, else cpu; otherwise ``requested``, once it is known to exist."""
    import torch

    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    text = str(requested).lower()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise SwinUsageError(f"unknown device {requested!r}", hint="use cpu, cuda, cuda:N (the N-th GPU) or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SwinError(f"--device {requested}: no CUDA GPU is available to this process",
                            hint="run on a machine with a GPU, or use --device cpu")  # fmt: skip
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise SwinError(f"--device {requested}: this machine has {count} GPU{'s' if count != 1 else ''} (cuda:0"
                            f"{f' to cuda:{count - 1}' if count > 1 else ''})", hint="pick one that exists")  # fmt: skip
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise SwinError(f"--device {requested}: Apple's MPS backend is not available here", hint="use --device cpu")
    elif device.type != "cpu":
        raise SwinUsageError(f"unsupported device {requested!r}", hint="use cpu, cuda, cuda:N or mps")
    return text


AMP_CHOICES = ("auto", "bf16", "fp16", "none")


def autocast_dtype(amp: str | None, device) -> "torch.dtype | None":
    """``--amp`` as the autocast dtype on ``device`` (None: no autocast, fp32). One policy for every command:
    ``auto`` (or None) is bf16 on a GPU that supports it and fp32 elsewhere; the CPU autocasts only when asked."""
    import torch

    if amp not in (None, *AMP_CHOICES):
        raise SwinUsageError(f"--amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    if amp in (None, "auto"):
        kind = torch.device(device).type
        return torch.bfloat16 if kind == "cuda" and torch.cuda.is_bf16_supported() else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[amp]
