"""Measuring a model: parameters, MACs (the papers' "FLOPs"), throughput, latency, peak memory, the
paper's attention-scheme comparison, and the same figures for timm's model in the same process.

The steps themselves, timed and measured, are :mod:`swincli.profiling.steps`.
"""

from __future__ import annotations

import platform
import statistics
from typing import Any

import torch

from swincli.device import autocast_dtype
from swincli.memory import PeakMemory, ensure_fits, estimate
from swincli.models.complexity import count_macs, count_params
from swincli.models.sequential_attention import DEFAULT_STAGES
from swincli.profiling.attention_schemes import SCHEMES, use_scheme
from swincli.profiling.memory_tricks import memory_table
from swincli.profiling.steps import autocast, inference, timed, train_step
from swincli.wording import plural


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from swincli.environment import cpu_name

    threads = torch.get_num_threads()
    return f"{cpu_name()} ({plural(threads, 'thread')})"


def attention_table(model, x: torch.Tensor, device, dtype, warmup: int, iters: int) -> list[dict[str, Any]]:
    """Per scheme: time of each stage's attention (shift, partition, attention, reverse) and end to end."""
    inputs = _stage_inputs(model, x, dtype, device)
    rows = []
    for scheme in SCHEMES:
        with use_scheme(model, scheme):
            stages = []
            for stage, tokens in zip(model.layers, inputs):
                def run(stage=stage, tokens=tokens):
                    with torch.inference_mode(), autocast(device, dtype):
                        for block in stage.blocks:
                            block.attend(block.norm1(tokens) if block.version == 1 else tokens)

                times, _ = timed(run, device, warmup, iters)
                stages.append(statistics.median(times))
            e2e = inference(model, x, device, dtype, warmup, iters)
        rows.append({"scheme": scheme, "stage_ms": stages, "throughput": e2e["throughput"]})
    return rows


def _stage_inputs(model, x, dtype, device) -> list[torch.Tensor]:
    out = []
    with torch.inference_mode(), autocast(device, dtype):
        t = model.embed(x)
        for stage in model.layers:
            out.append(t)
            t = stage(t)
    return out


def profile(
    model,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    amp: str | None = None,
    compile: bool = False,
    mode: str = "inference",
    warmup: int = 5,
    iters: int = 20,
    attention: bool = False,
    compare: str | None = None,
    memory: bool = False,
    attn_chunk: int | None = None,
    chunk_stages: tuple[int, ...] | None = DEFAULT_STAGES,
) -> dict[str, Any]:
    """Everything ``swin profile`` prints, as one dict (``iters=0``: counts only, nothing is run)."""
    device = torch.device(device)
    dtype = autocast_dtype(amp or "none", device)  # the API has already resolved "auto" for the device
    config = model.config
    macs = count_macs(config)
    layout = config.layout()
    report: dict[str, Any] = {
        "device": device_name(device) if iters else str(device),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "dtype": "float32" if dtype is None else f"{str(dtype).split('.')[1]} autocast",
        "batch_size": batch_size,
        "img_size": list(config.image_hw),
        "params": count_params(config),
        "macs": macs.total,
        "stages": [
            {"stage": st.index + 1, "resolution": list(st.resolution), "window": list(st.window), "shift": list(st.shift),
             "macs": macs.stages[st.index]}
            for st in layout
        ],  # fmt: skip
        "macs_stem_head": macs.stem + macs.head,
        "warmup": warmup,
        "iters": iters,
        "compiled": compile,
    }
    if not iters:
        return report
    need = estimate(config, batch_size, train=mode != "inference", amp=dtype is not None, weights=device.type != "cpu")
    ensure_fits(need, str(device), f"profiling at batch {batch_size}", "a smaller --batch-size or --size")
    model = model.to(device).eval()
    x = torch.randn(batch_size, config.in_chans, *config.image_hw, device=device)
    runner = torch.compile(model, fullgraph=True) if compile else model
    report["peak_memory_measured_by"] = PeakMemory(device).how
    # the figures measure what a batch adds above the weights, already loaded: so does the estimate
    added = lambda train, ckpt=False: estimate(config, batch_size, train=train, amp=dtype is not None,  # noqa: E731
                                               grad_checkpointing=ckpt, weights=False).total  # fmt: skip
    if not memory:  # the memory table has the step times of each trick itself
        _speed(report, model, runner, x, device, dtype, warmup, iters, compile, mode, added)
    if attention:
        report["attention"] = attention_table(model, x, device, dtype, warmup, iters)
    if memory:
        modes = {"inference": [False], "train": [True], "both": [False, True]}[mode]
        report["memory"] = [memory_table(model, x, device, dtype, warmup, iters, train, attn_chunk, chunk_stages)
                            for train in modes]  # fmt: skip
    if compare:
        report["compare"] = compare_timm(model, x, device, dtype, warmup, iters)
    return report


def _speed(report, model, runner, x, device, dtype, warmup: int, iters: int, compile: bool, mode: str, added) -> None:
    """The speed rows: inference and/or a training step, plain and with activation checkpointing."""
    if mode in ("inference", "both"):
        report.update(inference(runner, x, device, dtype, warmup, iters, compile),
                      peak_memory_estimate_bytes=added(False))  # fmt: skip
    if mode in ("train", "both"):
        report["train"] = dict(train_step(runner, x, device, dtype, warmup, iters, compile),
                               peak_memory_estimate_bytes=added(True))  # fmt: skip
        model.set_grad_checkpointing(True)
        report["train_grad_checkpointing"] = dict(train_step(model, x, device, dtype, warmup, iters),
                                                  peak_memory_estimate_bytes=added(True, True))  # fmt: skip
        model.set_grad_checkpointing(False)
        if mode == "train":
            train = report["train"]
            report.update({"throughput": train["images_per_s"], "latency_ms": train["latency_ms"],
                           "peak_memory_bytes": train["peak_memory_bytes"],
                           "peak_memory_estimate_bytes": train["peak_memory_estimate_bytes"]})  # fmt: skip


def compare_timm(model, x, device, dtype, warmup: int, iters: int, rounds: int = 3) -> dict[str, Any]:
    """timm's model with the same weights and input: logits must agree; throughputs interleaved."""
    from swincli.convert import check
    from swincli.convert.timm_layout import to_timm
    from swincli.errors import SwinError

    if not check.available("timm"):
        raise SwinError("--compare timm needs timm installed", hint="python -m pip install timm")
    reason = check.why_not("timm", model.config)
    if reason:
        raise SwinError(f"cannot compare with timm: {reason}")
    reference = check.reference_model("timm", model.config, to_timm(model.state_dict())).to(device).eval()
    with torch.inference_mode():
        want, got = reference(x).float(), model(x).float()
    diff = ((want - got).abs().max() / want.abs().max()).item()
    ours, theirs = [], []
    for _ in range(rounds):  # interleaved, so machine noise hits both alike
        theirs.append(inference(reference, x, device, dtype, warmup, iters)["throughput"])
        ours.append(inference(model, x, device, dtype, warmup, iters)["throughput"])
    t, o = statistics.median(theirs), statistics.median(ours)
    return {"library": "timm", "max_rel_diff": diff, "timm_throughput": t, "throughput": o, "ratio": o / t}
