"""``swin profile --runtimes``: one model in every deployment runtime, side by side in one table.

Why: choosing a runtime trades speed against memory, file size and fidelity, and those figures only
mean something measured together, on one machine, in one run (ultralytics' ``yolo benchmark`` prints
such a table). For the profiled model this exports each format into a temporary folder with
:func:`~swincli.export.exporter.export_model` (its verification against eager PyTorch is the row's
difference), loads the file with :func:`~swincli.export.runtime.load_exported` at torch's thread count,
and measures it beside the PyTorch rows: ``eager`` (the model as ``create_model`` builds it) and, on a
CPU, ``fast path`` (:func:`~swincli.models.fast_path.optimize_for_inference`, what predict, eval and
profile run). With an autocast precision (``--amp bf16``) the PyTorch rows run again under autocast, and
OpenVINO (every half-precision format on a GPU) adds its ``--half`` file, labelled with the precision its
runtime computes in.

Timing: each row runs its warm-up; then rounds, each timing every row in turn (the order rotated every
round), so the machine's drift hits every row alike. Images/s is at the batch size, from the median of
all the row's timed batches (as many in every round); the ratio is that over eager fp32's; the latency
is the median time of a batch of one. Memory is measured afterwards, one row at a time, with
every timed instance dropped first (:class:`~swincli.memory.PeakMemory`): the most that loading the
row's model (a copy of the weights, or the file into its runtime) and running one batch adds -- on a
CPU the growth of the resident set, which counts the runtime's own copy of the weights, its arenas and
compiled kernels; on a GPU the CUDA allocator's peak, which runtimes with their own allocator (ONNX
Runtime, OpenVINO, TensorRT) bypass, so theirs is not measured there.
"""

from __future__ import annotations

import copy
import gc
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from swincli.errors import SwinUsageError
from swincli.export.formats import FORMATS, Format, find_format
from swincli.memory import PeakMemory
from swincli.profiling.steps import autocast

ROUNDS = 3  # interleaved rounds (fewer when there are fewer timed iterations)
PYTORCH = "PyTorch"
TORCH_ALLOCATED = (PYTORCH, "AOTInductor")  # runtimes whose GPU memory the CUDA caching allocator sees
PRECISION_NAMES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}


@dataclass
class Row:
    """One runtime at one precision: what is timed, how to load it afresh, and what was measured."""

    name: str  # eager, fast path, or the format's name
    runtime: str
    precision: str  # what it computes in
    requested: str = "fp32"  # fp32, or the autocast precision whose rows it is among
    format: str | None = None
    model: Callable[[torch.Tensor], torch.Tensor] | None = None  # the instance being timed
    load: Callable[[], Any] | None = None  # a fresh instance, for the memory figure
    dtype: torch.dtype | None = None  # autocast (the PyTorch rows)
    file_bytes: int | None = None
    max_rel_diff: float | None = None
    export_s: float | None = None
    error: str | None = None
    times: dict[str, list[list[float]]] = field(default_factory=lambda: {"batch": [], "one": []})  # ms, per round
    peak_memory_bytes: int | None = None


def select_formats(spec: str | None, device: str) -> tuple[list[Format], list[str]]:
    """The formats ``spec`` names (commas; aliases welcome; a typo gets the closest name), each checked against
    ``device`` and what is installed; ``all`` or nothing: every format this machine can write and run on
    ``device``, with a note for each one left out."""
    from swincli.export.runtime import check_device_kind

    names = [n.strip() for n in (spec or "").split(",") if n.strip()]
    if not names or [n.lower() for n in names] == ["all"]:
        return _available(device)
    chosen: list[Format] = []
    for name in names:
        fmt = find_format(name)
        check_device_kind(fmt, device)
        fmt.require("write")
        fmt.require("run")
        if fmt not in chosen:
            chosen.append(fmt)
    return chosen, []


def _available(device: str) -> tuple[list[Format], list[str]]:
    kind = device.split(":")[0]
    chosen, notes = [], []
    for fmt in FORMATS.values():
        missing = fmt.missing("write") + [m for m in fmt.missing("run") if m not in fmt.missing("write")]
        if kind not in fmt.devices or (kind == "cuda" and not torch.cuda.is_available()):
            notes.append(f"--runtimes: {fmt.name} left out: it runs on {' or '.join(fmt.devices)}, not {kind}")
        elif missing:
            notes.append(f"--runtimes: {fmt.name} left out: needs {', '.join(missing)} "
                         f'(python -m pip install "swincli[{fmt.extra}]")')  # fmt: skip
        else:
            chosen.append(fmt)
    return chosen, notes


def check_exportable(net) -> None:
    """Refused before any export: an exported file cannot be exported again, nor a size the exporters refuse."""
    from swincli.export.exporter import check_size

    if getattr(net, "exported", False):
        raise SwinUsageError("--runtimes exports the model, and an exported file cannot be exported again",
                             hint="pass the checkpoint (or --model NAME) instead")  # fmt: skip
    check_size(net.config)


def runtime_table(net, formats: list[Format], batch: int, device: str | torch.device, dtype: torch.dtype | None,
                  warmup: int, iters: int, on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Every row measured (module docstring): ``{"rows": [...], "rounds", "timed_batches", "memory_measured_by"}``.
    ``net`` is the loaded model (fast path applied or not); ``dtype``: an autocast precision for more rows."""
    from swincli.export.verify import generated_images
    from swincli.models.fast_path import optimize_for_inference, restore

    step = on_stage or (lambda text: None)
    device = torch.device(device)
    plain = restore(copy.deepcopy(net)).to(device).float().eval()
    fast = None
    if device.type == "cpu":
        fast = copy.deepcopy(plain)
        optimize_for_inference(fast)
    images = generated_images(plain).to(device)
    with torch.inference_mode():
        want = plain(images).float().cpu()
    precisions = [None] + ([dtype] if dtype is not None else [])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, net.config.in_chans, *net.config.image_hw, generator=gen).to(device)
    with tempfile.TemporaryDirectory(prefix="swin-runtimes-") as tmp:
        rows = []
        for dt in precisions:
            rows += _torch_rows(plain, fast, dt, images, want)
            for fmt in formats:
                if dt is None or _half_runs(fmt, device):
                    rows.append(_export_row(plain, fmt, Path(tmp), device, _name(dt), images, want, step))
        rounds, per = _time(rows, x, device, warmup, iters, step)
        step("measuring memory")
        _memory(rows, x, device)
    eager = rows[0]
    return {"rows": [_summary(r, eager, batch) for r in rows], "rounds": rounds, "timed_batches": rounds * per,
            "memory_measured_by": _memory_how(device)}  # fmt: skip


def _memory_how(device: torch.device) -> str:
    how = PeakMemory(device).how
    return f"{how}, loading the model and running one batch" + (" (PyTorch and AOTInductor only)" if device.type == "cuda" else "")


def _half_runs(fmt: Format, device: torch.device) -> bool:
    """Half-precision files worth a row: on a CPU OpenVINO's (it computes in bf16 where the CPU has it);
    ONNX Runtime and AOTInductor run fp16 on a CPU slowly or not at all."""
    return fmt.half and (device.type == "cuda" or fmt.name == "openvino")


def _name(dtype: torch.dtype | None) -> str | None:
    return None if dtype is None else {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


def _torch_rows(plain, fast, dtype: torch.dtype | None, images: torch.Tensor, want: torch.Tensor) -> list[Row]:
    precision = _name(dtype) or "fp32"
    rows = []
    for name, model in (("eager", plain), ("fast path", fast)):
        if model is None:
            continue
        row = Row(name, PYTORCH, precision, precision, model=model, load=lambda m=model: copy.deepcopy(m), dtype=dtype)
        row.max_rel_diff = 0.0 if name == "eager" and dtype is None else _diff(row, images, want)
        rows.append(row)
    return rows


def _export_row(net, fmt: Format, folder: Path, device: torch.device, half: str | None, images: torch.Tensor,
                want: torch.Tensor, step: Callable[[str], None]) -> Row:  # fmt: skip
    """``net`` written as ``fmt`` and loaded by its runtime; a failure becomes the row's ``error``. fp32 files
    are verified as ``swin export`` verifies them; a half file is measured, not held to fp16's tolerance (a
    runtime may compute it in bf16)."""
    from swincli.export.exporter import export_model
    from swincli.export.runtime import load_exported

    row = Row(fmt.name, fmt.runtime, "fp16" if half else "fp32", half or "fp32", format=fmt.name)
    out = folder / f"{fmt.name}{'-half' if half else ''}{fmt.suffix}"
    step(f"exporting {fmt.name}{' (half)' if half else ''}")
    start = time.perf_counter()
    threads = torch.get_num_threads()
    try:
        report = export_model(net, out, fmt, half=half is not None, device=str(device), check=not half, source="swin profile")
        row.load = lambda: load_exported(out, fmt.name, str(device), threads)
        row.model = row.load()
        row.file_bytes = report.bytes
        row.max_rel_diff = _diff(row, images, want) if half else report.verification["max_rel_diff"]
        row.precision = _computes(row.model, row.precision)
    except Exception as exc:  # noqa: BLE001 -- one runtime failing is that row's error, not the table's
        row.error, row.model, row.load = one_line(exc), None, None
    finally:
        net.float()  # an exporter may have cast the model to fp16 in place
    row.export_s = time.perf_counter() - start
    return row


def _computes(model, stored: str) -> str:
    """The precision the runtime computes in, where it says (OpenVINO picks bf16 for fp16 files on a bf16 CPU)."""
    compiled = getattr(getattr(model, "runner", None), "compiled", None)
    if compiled is None:
        return stored
    try:
        kind = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    except Exception:  # noqa: BLE001 -- an older OpenVINO without the property: what was stored
        return stored
    return PRECISION_NAMES.get(kind, kind)


def _diff(row: Row, images: torch.Tensor, want: torch.Tensor) -> float:
    """Largest logit difference from eager fp32 over its largest logit (as the export check measures it)."""
    from swincli.export.verify import compare

    return compare(want, _call(row, images).float().cpu())[1]


def _call(row: Row, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode(), autocast(x.device, row.dtype):
        return row.model(x)


def _time(rows: list[Row], x: torch.Tensor, device: torch.device, warmup: int, iters: int,
          step: Callable[[str], None]) -> tuple[int, int]:  # fmt: skip
    """Warm every row up, then time them in rounds, rotating the order; returns (rounds, batches per round)."""
    rounds = max(1, min(ROUNDS, iters))
    per = max(1, math.ceil(iters / rounds))
    inputs = {"batch": x, "one": x[:1]}
    step("warming up")
    for row in _live(rows):
        _guard(row, lambda row=row: [_call(row, xb) for xb in inputs.values() for _ in range(warmup)])
    for k in range(rounds):
        step(f"timing, round {k + 1} of {rounds}")
        live = _live(rows)
        shift = k % max(1, len(live))
        for row in live[shift:] + live[:shift]:
            for key, xb in inputs.items():
                _guard(row, lambda row=row, key=key, xb=xb: row.times[key].append([_timed(row, xb, device) for _ in range(per)]))
    return rounds, per


def _live(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.error is None]


def _guard(row: Row, fn: Callable[[], Any]) -> None:
    if row.error is not None:
        return
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 -- a runtime failing to run is that row's error
        row.error, row.model = one_line(exc), None


def _timed(row: Row, x: torch.Tensor, device: torch.device) -> float:
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    _call(row, x)
    if cuda:
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1000


def _memory(rows: list[Row], x: torch.Tensor, device: torch.device) -> None:
    """Each row's peak, alone: every timed instance dropped first, then one fresh load and batch at a time."""
    for row in rows:
        row.model = None
    gc.collect()
    for row in _live(rows):
        if row.load is None or (device.type == "cuda" and row.runtime not in TORCH_ALLOCATED):
            continue
        meter = PeakMemory(device, sample=True)
        meter.begin()
        try:
            row.model = row.load()
            _call(row, x)
            ran = True
        except Exception:  # noqa: BLE001 -- it ran while timed: leave its figure out, keep its speed
            ran = False
        finally:
            row.model = None
            meter.end()
        gc.collect()
        row.peak_memory_bytes = meter.added if ran else None


def _summary(row: Row, eager: Row, batch: int) -> dict[str, Any]:
    speed, base = _images_per_s(row, batch), _images_per_s(eager, batch)
    latency = _median(row.times["one"]) if row.error is None else None
    return {
        "name": row.name, "runtime": row.runtime, "format": row.format, "precision": row.precision,
        "requested": row.requested, "images_per_s": speed, "ratio_to_eager": speed / base if speed and base else None, "latency_ms": latency,
        "peak_memory_bytes": row.peak_memory_bytes if row.error is None else None, "file_bytes": row.file_bytes,
        "max_rel_diff": row.max_rel_diff, "export_s": row.export_s, "error": row.error,
    }  # fmt: skip


def _images_per_s(row: Row, batch: int) -> float | None:
    median = _median(row.times["batch"]) if row.error is None else None
    return batch * 1000 / median if median else None


def _median(rounds: list[list[float]]) -> float | None:
    """The median over every round's timed batches: each round, and so each stretch of drift, weighs alike."""
    times = [t for r in rounds for t in r]
    return statistics.median(times) if times else None


def one_line(exc: BaseException) -> str:
    """An exception as one line: the message (and hint) of ours, the first line of anyone else's."""
    text = exc.one_line() if hasattr(exc, "one_line") else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text[:300]

