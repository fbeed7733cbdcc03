"""``swin export``: a checkpoint (or published weights) to a deployment format, verified as it is written.

The order never changes: check every flag against the format -> load the weights (resized if asked) ->
check the size against patch x window -> write into a temporary folder beside the output -> load the
file with its own runtime and compare its logits with eager PyTorch (:mod:`.verify`) -> rename each
file into place, the main file last. Nothing is written when any step fails.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from swincli.errors import SwinError, SwinUsageError
from swincli.export import metadata
from swincli.export.formats import FORMATS, Format, default_output, find_format, side_files
from swincli.export.quiet import quiet
from swincli.export.runtime import backend, check_device_kind, load_exported
from swincli.export.spec import ExportSpec
from swincli.export.verify import INT8_SAMPLES, SAMPLES, generated_images, image_paths, load_images, verify
from swincli.fileio import atomic_file, check_writable_target


@dataclass
class ExportReport:
    output: str
    format: str
    runtime: str
    precision: str
    batch: int | None
    input_size: list[int]
    bytes: int
    files: list[str]
    verification: dict[str, Any] | None  # None: not checked (convert --no-check)
    seconds: float
    notes: list[str] = field(default_factory=list)
    resize: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_flags(fmt: Format, batch: int | None, dynamic_batch: bool, half: bool, int8: bool, data: Any) -> None:
    """Each flag against what ``fmt`` can hold, before anything loads (ultralytics checks its flags the same way)."""
    if batch is not None and dynamic_batch:
        raise SwinUsageError("--batch and --dynamic-batch are alternatives", hint="a fixed batch of N, or any batch")
    if dynamic_batch and not fmt.dynamic_batch:
        raise SwinUsageError(f"{fmt.name} files have a fixed batch", hint="pass --batch N")
    if half and int8:
        raise SwinUsageError("--half and --int8 are alternatives", hint="choose one precision")
    if half and not fmt.half:
        raise SwinUsageError(f"{fmt.name} export has no --half", hint="export in fp32, or to a format with fp16")
    if int8 and not fmt.int8:
        others = " or ".join(f.name for f in FORMATS.values() if f.int8)
        raise SwinUsageError(f"--int8 is available for {others}, not {fmt.name}", hint=f"export to {others} for int8")
    if int8 and data is None:
        raise SwinUsageError("--int8 needs --data DIR: images to calibrate on", hint="a few hundred of your own images")


def export(source: str | None, format: str, *, model: str | None = None, output: str | Path | None = None,
           batch: int | None = None, dynamic_batch: bool = False, size: Any = None, window: Any = None,
           half: bool = False, int8: bool = False, data: str | Path | None = None, device: str | None = None,
           force: bool = False, offline: bool = False, on_stage=None) -> ExportReport:  # fmt: skip
    """Export ``source`` (a checkpoint in any layout) or ``model``'s published weights; see the module docstring.
    ``on_stage(text)`` hears each step as it starts."""
    step = on_stage or (lambda text: None)
    fmt = find_format(format)
    check_flags(fmt, batch, dynamic_batch, half, int8, data)
    dev = _device(fmt, device)
    fmt.require("write")
    fmt.require("run")
    if source is None and model is None:
        raise SwinUsageError("export needs weights", hint="pass a checkpoint, or --model NAME for published weights")
    out = Path(output) if output is not None else default_output(source or model, fmt)
    for path in [*side_files(out, fmt), out]:
        check_writable_target(path, force)
    if data is not None:
        image_paths(data)  # a bad --data is refused before the weights load
    step("loading the weights")
    net, notes, resize = _load(source, model, size, window, offline)
    report = export_model(net, out, fmt, batch=batch, half=half, int8=int8, device=dev, data=data,
                          source=str(source or model), on_stage=step)  # fmt: skip
    report.notes, report.resize = notes, resize
    return report


def export_model(net, out: Path, fmt: Format, *, batch: int | None = None, half: bool = False, int8: bool = False,
                 device: str = "cpu", data: str | Path | None = None, source: str = "", check: bool = True,
                 on_stage=None) -> ExportReport:  # fmt: skip
    """Write ``net`` (loaded, flags checked) to ``out`` and, with ``check``, verify it before it takes its name."""
    from swincli.memory import ensure_fits, estimate

    step = on_stage or (lambda text: None)
    check_size(net.config)
    # tracing runs the model at the trace batch: at least what that inference batch needs
    need = estimate(net.config, batch or 2, train=False, weights=True)
    ensure_fits(need, device, f"exporting at {'x'.join(map(str, net.config.image_hw))} px", "a smaller --size or --batch-size")
    start = time.perf_counter()
    spec = ExportSpec(fmt.name, batch, half, int8, device, *net.config.image_hw, channels=net.config.in_chans)
    meta = metadata.describe(net, fmt.name, spec.precision, batch, source)
    _absolute(out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".swin-export-", dir=_absolute(out).parent) as tmp:
        written = Path(tmp) / out.name
        step(f"writing {fmt.name}")
        _write(fmt, net, written, spec, meta, data)
        verification = None
        if check:
            step(f"checking it with {fmt.runtime}")
            limit = INT8_SAMPLES if int8 else SAMPLES
            images = load_images(net, image_paths(data, limit)) if data is not None else generated_images(net)
            exported = load_exported(written, fmt.name, device)
            where = str(data) if data is not None else "generated"
            verification = verify(net.to(device).float(), exported, images, where, fmt.name, spec.precision).to_dict()
            del exported  # a runtime may hold the file open
        files = _place(Path(tmp), out, fmt)
    total = sum(Path(f).stat().st_size for f in files)
    return ExportReport(str(out), fmt.name, fmt.runtime, spec.precision, batch, list(net.config.image_hw), total, files,
                        verification, time.perf_counter() - start)  # fmt: skip


def check_size(config) -> None:
    """One H x W per file, a multiple of patch x window in every stage: padded windows make exporters and
    runtimes disagree (timm#1844), so they are refused here rather than found wrong later."""
    for i, stage in enumerate(config.layout()):
        if stage.padded != stage.resolution:
            h, w = config.image_hw
            need = config.patch_size * stage.window[0] * 2**i
            raise SwinUsageError(f"{h}x{w} px does not tile into {stage.window[0]}x{stage.window[1]} windows in stage "
                                 f"{i + 1} ({stage.resolution[0]}x{stage.resolution[1]} patches)",
                                 hint=f"export at a size that is a multiple of {need} (patch {config.patch_size} x "
                                 f"window {stage.window[0]} x 2^{i}), or another --window")  # fmt: skip


def _device(fmt: Format, device: str | None) -> str:
    """``--device``'s default policy (cuda when there is one) where the file is compiled for its device (pt2,
    tensorrt); the CPU for the portable formats, whose runtimes pick their own device."""
    import torch

    from swincli.device import pick_device

    compiled = fmt.name in ("pt2", "tensorrt")
    default = "cuda" if "cpu" not in fmt.devices or (compiled and torch.cuda.is_available()) else "cpu"
    dev = default if device in (None, "auto") else device.lower()
    check_device_kind(fmt, dev)
    return pick_device(dev)


def _load(source, model, size, window, offline):
    from swincli.loader import load
    from swincli.sizes import size_value, window_value

    net = load(source, img_size=size_value(size), window_size=window_value(window), model=model,
               offline=True if offline else None)  # fmt: skip
    report = net.resize_report.to_dict() if net.resize_report is not None and net.resize_report.changed else None
    return net.eval().float(), list(net.load_notes), report


def _write(fmt: Format, net, path: Path, spec: ExportSpec, meta: str, data) -> None:
    """The file at ``path`` (and its side files), in ``fmt``'s own converter; int8 through :mod:`.quantize`."""
    try:
        with quiet():
            if spec.int8:
                _write_int8(fmt, net, path, spec, meta, data)
            else:
                backend(fmt).write(net, path, spec, meta)
    except SwinError:
        raise
    except Exception as exc:  # a converter's own failure, in one line
        if os.environ.get("SWIN_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise SwinError(f"{fmt.name} export failed: {first}", hint="SWIN_DEBUG=1 shows the full error; please report it with `swin env`") from None
    if not fmt.metadata_inside:
        metadata.sidecar(path).write_text(meta + "\n")


def _write_int8(fmt: Format, net, path: Path, spec: ExportSpec, meta: str, data) -> None:
    from swincli.export import quantize

    calibration = quantize.calibration_images(net, data)
    fp32 = ExportSpec(spec.format, spec.batch, False, False, spec.device, spec.height, spec.width, spec.channels)
    if fmt.name == "openvino":
        from swincli.export import openvino_format

        openvino_format.write(net, path, spec, meta, model=quantize.openvino_int8(net, fp32, calibration))
    else:
        from swincli.export import onnx_format

        plain = path.with_name(path.stem + ".fp32" + path.suffix)
        onnx_format.write(net, plain, fp32, meta)
        quantize.onnx_int8(plain, path, calibration)
        plain.unlink()


def _place(tmp: Path, out: Path, fmt: Format) -> list[str]:
    """Rename the written files into place: side files first, the main file last, each atomically."""
    placed = []
    for target in [*side_files(out, fmt), out]:
        with atomic_file(target) as dest:
            os.replace(tmp / target.name, dest)
        placed.append(str(target))
    return placed


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))
