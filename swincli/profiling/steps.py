"""The measured steps every profile table is made of: an inference batch and a training step, timed
after warm-up, with the peak memory they add (:class:`swincli.memory.PeakMemory`).

Timing follows the official throughput script: warm-up iterations first, then timed iterations, with
``torch.cuda.synchronize()`` around every GPU measurement. Latency is per batch (median and p90).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from swincli.memory import PeakMemory


def timed(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int,
          prime: Callable[[], Any] | None = None) -> tuple[list[float], int | None]:  # fmt: skip
    """Per-iteration milliseconds after ``warmup`` runs, and the peak memory (bytes) the warm-up and timed runs
    added above what was in use before them (:class:`swincli.memory.PeakMemory`; None: not measurable here).
    ``prime`` runs first, outside the measurement: compilation is not what each batch needs."""
    if prime is not None:
        prime()
    cuda = device.type == "cuda"
    meter = PeakMemory(device, sample=True)
    meter.begin()  # before the warm-up: its first run allocates what every later run reuses (masks, AdamW state)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    meter.end()
    return times, meter.added


def summary(times: list[float], batch: int) -> dict[str, float]:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    median = statistics.median(ordered)
    return {"throughput": batch * 1000 / median, "latency_ms": {"median": median, "p90": p90}}


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def inference(model, x: torch.Tensor, device, dtype, warmup: int, iters: int, compiled: bool = False) -> dict[str, Any]:
    def step():
        with torch.inference_mode(), autocast(device, dtype):
            model(x)

    times, peak = timed(step, device, warmup, iters, prime=step if compiled else None)
    return {**summary(times, x.shape[0]), "peak_memory_bytes": peak}


def train_step(model, x: torch.Tensor, device, dtype, warmup: int, iters: int, compiled: bool = False,
               optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:  # fmt: skip
    """Forward, backward and AdamW (or ``optimizer``, e.g. ZeRO's); the memory figure includes the gradients and
    the optimizer state it creates. ``model`` may be wrapped (DDP)."""
    if optimizer is None:
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    y = torch.zeros(x.shape[0], dtype=torch.long, device=device)
    classes = getattr(model, "module", model).config.num_classes
    model.train()

    def backward():
        with autocast(device, dtype):
            loss = F.cross_entropy(model(x).float(), y) if classes else model(x).float().mean()
        loss.backward()

    def step():
        backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def compile_graphs():  # forward and backward, no optimizer state yet
        backward()
        optimizer.zero_grad(set_to_none=True)

    times, peak = timed(step, device, warmup, iters, prime=compile_graphs if compiled else None)
    model.eval()
    out = summary(times, x.shape[0])
    return {"images_per_s": out["throughput"], "latency_ms": out["latency_ms"], "peak_memory_bytes": peak}
