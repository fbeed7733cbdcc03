"""``swin export`` from Python: weights to a deployment format, verified, as plain data; and what this machine can do."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def export(source: str | None = None, format: str = "onnx", *, model: str | None = None, output: str | Path | None = None,
           batch: int | None = None, dynamic_batch: bool = False, size: Any = None, window: Any = None, half: bool = False,
           int8: bool = False, data: str | Path | None = None, device: str | None = None, force: bool = False,
           offline: bool = False, on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Export ``source`` (a checkpoint in any layout swin reads) or ``model``'s published weights to ``format``
    (onnx, openvino, pt2, tensorrt, executorch; aliases such as ``engine`` or ``torch-export`` work).

    ``output`` defaults to the source's name with the format's suffix. A dynamic batch unless ``batch``;
    ``half`` (fp16) or ``int8`` (calibrated on ``data``, a folder of images). Before the file takes its
    name, its own runtime runs it on ``data``'s images (or generated ones) and its logits are compared
    with PyTorch's. Returns ``output``, ``format``, ``runtime``, ``precision``, ``batch``, ``input_size``,
    ``bytes``, ``files``, ``verification`` (``max_rel_diff``, ``top1_agreement``, ``tolerance``, ...),
    ``seconds``, ``notes`` and ``resize``."""
    from swincli.export.exporter import export as run

    return run(source, format, model=model, output=output, batch=batch, dynamic_batch=dynamic_batch, size=size,
               window=window, half=half, int8=int8, data=data, device=device, force=force, offline=offline,
               on_stage=on_stage).to_dict()  # fmt: skip


def export_formats() -> list[dict[str, Any]]:
    """What this machine can write and run, one dict per format (``swin export --check``, like ``timmx doctor``):
    ``format``, ``suffix``, ``runtime``, ``write`` and ``run`` (True, or what is missing), ``devices``,
    ``dynamic_batch``, ``half``, ``int8`` and ``extra`` (what to install)."""
    from swincli.export.formats import FORMATS
    from swincli.export.pt2_format import has_compiler

    gpu = _has_gpu()
    rows = []
    for f in FORMATS.values():
        write, run = f.missing("write"), f.missing("run")
        if f.name == "pt2" and not has_compiler():
            write = [*write, "a C++ compiler"]
        devices = [d for d in f.devices if d == "cpu" or gpu]
        rows.append({"format": f.name, "suffix": f.suffix, "runtime": f.runtime, "extra": f.extra,
                     "write": True if not write and devices else write or ["a CUDA GPU"],
                     "run": True if not run and devices else run or ["a CUDA GPU"], "devices": devices,
                     "dynamic_batch": f.dynamic_batch, "half": f.half, "int8": f.int8, "aliases": list(f.aliases)})  # fmt: skip
    return rows


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
