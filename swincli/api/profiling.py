"""``swin profile`` from Python: parameters, MACs, speed and memory of a model, as plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swincli.errors import SwinUsageError

DEFAULT_MODEL = "swin-t"
MODES = ("inference", "train", "both")


def profile(model: str | None = None, checkpoint: str | None = None, *, size: Any = None, window: Any = None,
            batch_size: int = 8, device: str | None = None, amp: str | None = "auto", compile: bool = False,
            mode: str = "inference", warmup: int = 5, iters: int = 20, attention: bool = False,
            compare: str | None = None, plot: str | Path | None = None, force: bool = False, memory: bool = False,
            attn_chunk: int | None = None, attn_chunk_stages: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything ``swin profile`` prints, as one dict (``iters=0``: counts only, nothing runs). The model is
    built freshly initialised (speed does not depend on the weights); ``checkpoint`` profiles that file's
    model. ``plot``: throughput against batch size, or with ``attention`` the schemes as bars, as a PNG.
    ``memory``: the memory tricks side by side, sequential attention with ``attn_chunk`` windows (default: a
    sixteenth of the largest stage's) in ``attn_chunk_stages`` ("1,2", the default, or "all")."""
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
    net, info = load_for_inference(model, checkpoint, size, window, default=DEFAULT_MODEL, pretrained=False)
    stages = parse_stages(attn_chunk_stages, net.config.num_stages)
    report = run(net, batch_size, dev, precision, compile, mode, warmup, iters, attention, compare, memory, attn_chunk, stages)
    report["model"] = model or checkpoint or DEFAULT_MODEL
    report["rank"] = launched()[0]  # under torchrun every rank measures; rank 0 reports
    report["notes"] = info["notes"]
    if plot is not None:
        _plot(net, report, plot, dev, precision, warmup, iters)
        report["plot"] = str(plot)
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
