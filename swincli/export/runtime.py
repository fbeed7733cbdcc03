"""An exported file as a model ``swin predict`` and ``swin eval`` run like a checkpoint.

The file's own runtime runs it (ONNX Runtime, OpenVINO, AOTInductor, ExecuTorch, TensorRT), never our
model code; what it needs besides the file (config, class names, preprocessing) comes from the record
the export stored (:mod:`.metadata`). The runtime is the file suffix's, or the one ``--runtime`` names.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import torch

from swincli.errors import CheckpointError, SwinError, SwinUsageError
from swincli.export.formats import Format, format_of_file
from swincli.export import metadata
from swincli.export.metadata import ExportFacts, parse, read_sidecar
from swincli.export.quiet import quiet


def backend(fmt: Format) -> ModuleType:
    """The module that writes and runs ``fmt`` (``swincli.export.<name>_format``)."""
    return importlib.import_module(f"swincli.export.{fmt.name}_format")


def read_facts(path: Path, fmt: Format) -> ExportFacts:
    """The record inside the file, or in its sidecar where the format has no room (or the file lacks one)."""
    text = None
    if fmt.metadata_inside:
        try:
            with quiet():
                text = backend(fmt).read_metadata(path)
        except Exception as exc:  # the format's own reader: any failure means this is not such a file
            raise CheckpointError(f"{path} is not a readable {fmt.name} file ({type(exc).__name__})",
                                  hint=f"pass a file `swin export --to {fmt.name}` wrote, or drop --runtime") from None  # fmt: skip
    if text is None and fmt.metadata_inside and not metadata.sidecar(path).is_file():
        return parse(None, path)
    return parse(text, path) if text else read_sidecar(path)


class ExportedModel(torch.nn.Module):
    """Logits from an exported file, with the attributes predict and eval read from a loaded checkpoint."""

    exported = True

    def __init__(self, runner, facts: ExportFacts, fmt: Format, path: Path) -> None:
        super().__init__()
        self.runner, self.format, self.path = runner, fmt, path
        self.config = facts.config
        self.class_names = facts.class_names
        self.preprocessing = facts.preprocessing
        self.precision, self.batch = facts.precision, facts.batch
        self.resize_report = None
        self.load_notes = [f"running {path.name} with {fmt.runtime} ({facts.precision})"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = self.batch or self.format.max_batch
        if step is None or len(x) == step or (self.batch is None and len(x) < step):
            return self.runner(x).to(x.device)
        return self._in_parts(x, step, pad=self.batch is not None)

    def _in_parts(self, x: torch.Tensor, step: int, pad: bool) -> torch.Tensor:
        """A file exported with ``--batch N`` takes exactly N images (fed N at a time, the last padded); a
        dynamic one at most its format's ``max_batch`` (fed in parts)."""
        outs = []
        for start in range(0, len(x), step):
            part = x[start : start + step]
            fill = step - len(part) if pad else 0
            if fill:
                part = torch.cat([part, part[-1:].expand(fill, *part.shape[1:])])
            outs.append(self.runner(part)[: len(part) - fill])
        return torch.cat(outs).to(x.device)


def load_exported(path: str | Path, runtime: str | None = None, device: str = "cpu", threads: int | None = None,
                  size=None, window=None) -> ExportedModel:  # fmt: skip
    """``path`` run by its format's runtime; a size or window change is refused (a file has one H x W)."""
    path = Path(path)
    fmt = format_of_file(path, runtime)
    if fmt is None:
        raise SwinUsageError(f"{path} is not an exported file", hint="pass --runtime FORMAT, or a checkpoint")
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist", hint="check the path")
    if size is not None or window is not None:
        raise SwinUsageError(f"{path.name} was exported at one size and window and cannot be resized",
                             hint="export again with --size/--window, or pass the checkpoint")  # fmt: skip
    check_device_kind(fmt, device)
    fmt.require("run")
    facts = read_facts(path, format_of_file(path) or fmt)  # the file's own record, whichever runtime runs it (OpenVINO reads .onnx)
    try:
        with quiet():
            runner = backend(fmt).Runner(path, device, threads, facts.precision)
    except (RuntimeError, ValueError, OSError) as exc:
        raise CheckpointError(f"{fmt.runtime} cannot load {path}: {str(exc).strip().splitlines()[0][:200]}",
                              hint=f"is it a {fmt.name} file? `swin export` writes one") from None  # fmt: skip
    return ExportedModel(runner, facts, fmt, path)


def check_device_kind(fmt: Format, device: str) -> None:
    """A GPU-only format on a machine without one (or asked for the CPU) is refused in one line."""
    kind = device.split(":")[0]
    if "cpu" not in fmt.devices and not torch.cuda.is_available():
        raise SwinError(f"{fmt.name} needs a CUDA GPU and this machine has none", hint="export to onnx, openvino or pt2 instead")
    if kind not in fmt.devices:
        raise SwinUsageError(f"{fmt.name} runs on {' or '.join(fmt.devices)}, not {kind}", hint=f"pass --device {fmt.devices[0]}")
