"""Measuring a model: parameters, MACs (the papers' "FLOPs"), throughput, latency, peak memory, the
paper's attention-scheme comparison, and the same figures for timm's model in the same process.

Timing follows the official throughput script: warm-up iterations first, then timed iterations, with
``torch.cuda.synchronize()`` around every GPU measurement. Latency is per batch (median and p90).
"""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from swincli.memory import ensure_fits, estimate
from swincli.models.complexity import count_macs, count_params
from swincli.profiling.attention_schemes import SCHEMES, use_scheme


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from swincli.environment import cpu_name

    return f"{cpu_name()} ({torch.get_num_threads()} threads)"


class _RssPeak:
    """Peak resident memory of this process while the block runs, sampled every 2 ms (CPU runs)."""

    def __init__(self) -> None:
        self.peak = self.start = self._rss()
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            return 0

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start


def timed(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int) -> tuple[list[float], int]:
    """Per-iteration milliseconds after ``warmup`` runs, and the peak memory (bytes) during the timed runs."""
    for _ in range(warmup):
        fn()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    with _RssPeak() as rss:
        for _ in range(iters):
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - start) * 1000)
    peak = torch.cuda.max_memory_allocated(device) if cuda else rss.growth
    return times, peak


def summary(times: list[float], batch: int) -> dict[str, float]:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    median = statistics.median(ordered)
    return {"throughput": batch * 1000 / median, "latency_ms": {"median": median, "p90": p90}}


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def inference(model, x: torch.Tensor, device, dtype, warmup: int, iters: int) -> dict[str, Any]:
    def step():
        with torch.inference_mode(), _autocast(device, dtype):
            model(x)

    times, peak = timed(step, device, warmup, iters)
    return {**summary(times, x.shape[0]), "peak_memory_bytes": peak}


def train_step(model, x: torch.Tensor, device, dtype, warmup: int, iters: int) -> dict[str, Any]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    y = torch.zeros(x.shape[0], dtype=torch.long, device=device)
    model.train()

    def step():
        with _autocast(device, dtype):
            loss = F.cross_entropy(model(x).float(), y) if model.config.num_classes else model(x).float().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    times, peak = timed(step, device, warmup, iters)
    model.eval()
    out = summary(times, x.shape[0])
    return {"images_per_s": out["throughput"], "latency_ms": out["latency_ms"], "peak_memory_bytes": peak}


def attention_table(model, x: torch.Tensor, device, dtype, warmup: int, iters: int) -> list[dict[str, Any]]:
    """Per scheme: time of each stage's attention (shift, partition, attention, reverse) and end to end."""
    inputs = _stage_inputs(model, x, dtype, device)
    rows = []
    for scheme in SCHEMES:
        with use_scheme(model, scheme):
            stages = []
            for stage, tokens in zip(model.layers, inputs):
                def run(stage=stage, tokens=tokens):
                    with torch.inference_mode(), _autocast(device, dtype):
                        for block in stage.blocks:
                            block.attend(block.norm1(tokens) if block.version == 1 else tokens)

                times, _ = timed(run, device, warmup, iters)
                stages.append(statistics.median(times))
            e2e = inference(model, x, device, dtype, warmup, iters)
        rows.append({"scheme": scheme, "stage_ms": stages, "throughput": e2e["throughput"]})
    return rows


def _stage_inputs(model, x, dtype, device) -> list[torch.Tensor]:
    out = []
    with torch.inference_mode(), _autocast(device, dtype):
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
) -> dict[str, Any]:
    """Everything ``swin profile`` prints, as one dict (``iters=0``: counts only, nothing is run)."""
    device = torch.device(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None, "none": None}[amp]
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
    if mode in ("inference", "both"):
        report.update(inference(runner, x, device, dtype, warmup, iters))
    if mode in ("train", "both"):
        report["train"] = train_step(runner, x, device, dtype, warmup, iters)
        model.set_grad_checkpointing(True)
        report["train_grad_checkpointing"] = train_step(model, x, device, dtype, warmup, iters)
        model.set_grad_checkpointing(False)
        if mode == "train":
            report.update({"throughput": report["train"]["images_per_s"], "latency_ms": report["train"]["latency_ms"],
                           "peak_memory_bytes": report["train"]["peak_memory_bytes"]})  # fmt: skip
    if attention:
        report["attention"] = attention_table(model, x, device, dtype, warmup, iters)
    if compare:
        report["compare"] = compare_timm(model, x, device, dtype, warmup, iters)
    return report


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
