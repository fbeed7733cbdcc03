"""``swin profile`` from Python: parameters, MACs, speed and memory of a model, as plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from swincli.errors import SwinUsageError

DEFAULT_MODEL = "swin-t"
MODES = ("inference", "train", "both")


def profile(model: str | None = None, checkpoint: str | None = None, *, size: Any = None, window: Any = None,
            batch_size: int = 8, device: str | None = None, amp: str | None = "auto", compile: bool = False,
            mode: str = "inference", warmup: int = 5, iters: int = 20, attention: bool = False,
            compare: str | None = None, plot: str | Path | None = None, force: bool = False, memory: bool = False,
            attn_chunk: int | None = None, attn_chunk_stages: str | None = None, runtimes: str | None = None,
            on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything ``swin profile`` prints, as one dict (``iters=0``: counts only, nothing runs). The model is
    built freshly initialised (speed does not depend on the weights); ``checkpoint`` profiles that file's
    model. ``plot``: throughput against batch size, or with ``attention`` the schemes as bars, as a PNG.
    ``memory``: the memory tricks side by side, sequential attention with ``attn_chunk`` windows (default: a
    sixteenth of the largest stage's) in ``attn_chunk_stages`` ("1,2", the default, or "all").

    ``runtimes``: deployment formats, comma-separated (``"onnx,openvino"``; ``"all"`` or ``""``: every one
    this machine can write and run on the device), each exported, verified and measured beside eager
    PyTorch and the fast path: ``report["runtimes"]`` has one dict per row with ``name``, ``runtime``,
    ``format``, ``precision``, ``images_per_s`` (at ``batch_size``), ``ratio_to_eager``, ``latency_ms``
    (batch 1, median), ``peak_memory_bytes``, ``file_bytes``, ``max_rel_diff`` (from eager fp32),
    ``export_s`` and ``error`` (None, or why that row has no figures); ``report["runtimes_info"]`` says
    how they were measured. ``amp`` bf16/fp16 adds rows at that precision. ``on_stage(text)`` hears each
    step (exports take minutes)."""
    from swincli.api.prediction import load_for_inference
    from swincli.device import autocast_dtype, pick_device
    from swincli.distributed import launched
    from swincli.fileio import check_writable_target
    from swincli.models.sequential_attention import parse_stages
    from swincli.profiling.runner import profile as run

    if mode not in MODES:
        raise SwinUsageError(f"--mode must be inference, train or both, got {mode!r}")
    if compare not in (None, "timm"):
        raise SwinUsageError(f"--compare supports timm, got {compare!r}")
    dev = pick_device(device)
    precision = _amp_name(autocast_dtype(amp, dev))
    if plot is not None:
        check_writable_target(plot, force)
    if (attn_chunk or attn_chunk_stages) and not memory:
        raise SwinUsageError("--attn-chunk and --attn-chunk-stages go with --memory", hint="add --memory")
    if runtimes is not None:
        formats, notes = _runtimes_first(runtimes, str(dev), mode, iters, compile, attention, compare, memory, plot)
    net, info = load_for_inference(model, checkpoint, size, window, default=DEFAULT_MODEL, pretrained=False)
    if runtimes is not None:
        report = _runtimes(net, formats, batch_size, dev, precision, warmup, iters, on_stage)
        report["model"] = model or checkpoint or DEFAULT_MODEL
        report["rank"] = launched()[0]
        report["notes"] = info["notes"] + notes
        return report
    stages = parse_stages(attn_chunk_stages, net.config.num_stages)
    report = run(net, batch_size, dev, precision, compile, mode, warmup, iters, attention, compare, memory, attn_chunk, stages)
    report["model"] = model or checkpoint or DEFAULT_MODEL
    report["rank"] = launched()[0]  # under torchrun every rank measures; rank 0 reports
    report["notes"] = info["notes"]
    if plot is not None:
        _plot(net, report, plot, dev, precision, warmup, iters)
        report["plot"] = str(plot)
    return report


def _runtimes_first(runtimes: str, device: str, mode: str, iters: int, compile: bool, attention: bool,
                    compare: str | None, memory: bool, plot: Any) -> tuple[list, list[str]]:  # fmt: skip
    """``--runtimes`` checked before anything loads: what it cannot go with, then each format it names."""
    from swincli.profiling.runtimes import select_formats

    others = {"--mode train/both": mode != "inference", "--compile": compile, "--attention": attention,
              "--compare": compare is not None, "--memory": memory, "--plot": plot is not None}  # fmt: skip
    clash = [flag for flag, given in others.items() if given]
    if clash:
        raise SwinUsageError(f"--runtimes measures inference on its own; it does not go with {', '.join(clash)}",
                             hint="profile the runtimes and the rest in two runs")  # fmt: skip
    if iters < 1:
        raise SwinUsageError("--runtimes needs timed iterations, and --iters is 0", hint="pass --iters 1 or more")
    return select_formats(runtimes, device)


def _runtimes(net, formats: list, batch_size: int, device: str, precision: str | None, warmup: int, iters: int,
              on_stage) -> dict[str, Any]:  # fmt: skip
    """The counts of a plain profile (no speed table) and the runtimes table."""
    import torch

    from swincli.device import autocast_dtype
    from swincli.profiling.runner import device_name
    from swincli.profiling.runner import profile as run
    from swincli.profiling.runtimes import check_exportable, runtime_table

    check_exportable(net)
    report = run(net, batch_size, device, precision, False, "inference", warmup, 0)
    table = runtime_table(net, formats, batch_size, device, autocast_dtype(precision or "none", device), warmup, iters,
                          on_stage)  # fmt: skip
    report.update(device=device_name(torch.device(device)), iters=iters, runtimes=table.pop("rows"),
                  dtype="float32" + (f" and {precision} autocast" if precision else ""),
                  runtimes_info=dict(table, batch_size=batch_size, warmup=warmup))  # fmt: skip
    return report


def _amp_name(dtype) -> str | None:
    import torch

    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype)


def _plot(net, report: dict[str, Any], path: str | Path, device: str, amp: str | None, warmup: int, iters: int) -> None:
    from swincli.drawing.chart import chart
    from swincli.profiling.runner import profile as run

    if "attention" in report:
        rows = report["attention"]
        chart([r["scheme"] for r in rows], [r["throughput"] for r in rows], f"{report['model']}: attention schemes (end to end)",
              "images/s", path, bars=True)  # fmt: skip
        return
    batches, values, b = [], [], 1
    while b <= report["batch_size"]:
        batches.append(str(b))
        values.append(run(net, b, device, amp, False, "inference", warmup, iters)["throughput"])
        b *= 2
    chart(batches, values, f"{report['model']}: throughput against batch size ({report['device']})", "images/s", path, bars=False)
