"""``swin profile --memory``: what each of the V2 paper's memory tricks saves, measured side by side.

For the model, size, window and batch given: a training step (forward, backward, AdamW) plain, with
activation checkpointing, with sequential attention, and with both; for inference, plain and
sequential attention (checkpointing changes nothing without a backward pass). Under torchrun, two more
training rows: both tricks with ZeRO-1 (the optimizer state sharded) and with FSDP2 (ZeRO-3: parameters,
gradients and optimizer state sharded), each the largest peak over the ranks. Each row is the peak
memory the step adds above the loaded weights, the step time (median), and the estimate that
``--memory-budget`` and the refusal before a run use, so the two can be compared.

The peak is :class:`swincli.memory.PeakMemory`: on a GPU ``torch.cuda.max_memory_allocated``; on a
CPU the peak resident set, measured in one more step per trick after asking glibc to hand freed
tensors back to the system at once (``mallopt(M_MMAP_THRESHOLD, 64 KiB)``, what
``MALLOC_MMAP_THRESHOLD_=65536`` does), so one row's freed memory is not counted in the next and the
figure tracks the live tensors. The step times are measured before that, with the usual allocator.
"""

from __future__ import annotations

from typing import Any

import torch

from swincli import distributed
from swincli.memory import estimate, return_freed_memory
from swincli.memory_plan import most_windows
from swincli.models.sequential_attention import DEFAULT_STAGES
from swincli.profiling.steps import inference, train_step

TRICKS = ("plain", "checkpointing", "sequential attention", "both")


def default_chunk(config, stages: tuple[int, ...] | None) -> int:
    """A sixteenth of the windows of the largest chosen stage: small enough to matter, large enough to run fast."""
    return max(1, most_windows(config, stages) // 16)


def memory_table(model, x: torch.Tensor, device: torch.device, dtype, warmup: int, iters: int, train: bool,
                 chunk: int | None = None, stages: tuple[int, ...] | None = DEFAULT_STAGES) -> dict[str, Any]:  # fmt: skip
    """One row per trick: ``{"trick", "peak_memory_bytes", "step_ms", "estimate_bytes"}``, and the settings used.

    On a CPU the times are taken first, with the allocator as every run has it, and the peaks after, one
    step per trick with freed memory handed back at once: that setting makes each large allocation a
    fresh mapping of the system's, and its page faults would be billed to the tricks that allocate most
    often (sequential attention allocates per chunk)."""
    chunk = chunk or default_chunk(model.config, stages)
    run = train_step if train else inference
    tricks = TRICKS if train else (TRICKS[0], TRICKS[2])
    rows = []
    for trick in tricks:
        _use(model, trick, chunk, stages)
        out = run(model, x, device, dtype, warmup, iters)
        need = estimate(model.config, x.shape[0], train=train, amp=dtype is not None, grad_checkpointing=_checkpointing(trick),
                        attn_chunk=chunk if _sequential(trick) else None, chunk_stages=stages, weights=False)  # fmt: skip
        rows.append({"trick": trick, "peak_memory_bytes": out["peak_memory_bytes"],
                     "step_ms": out["latency_ms"]["median"], "estimate_bytes": need.total})  # fmt: skip
    if device.type == "cpu" and return_freed_memory():
        for row in rows:
            _use(model, row["trick"], chunk, stages)
            row["peak_memory_bytes"] = run(model, x, device, dtype, 0, 1)["peak_memory_bytes"]
    if train and distributed.launched()[1] > 1:  # under torchrun: the sharded optimizers, with both tricks still on
        _use(model, "both", chunk, stages)
        rows += sharded_rows(model, x, device, dtype, warmup, iters)
    _use(model, "plain", chunk, stages)
    plain = rows[0]
    for row in rows:
        row["peak_ratio"] = _ratio(row["peak_memory_bytes"], plain["peak_memory_bytes"])
        row["time_ratio"] = _ratio(row["step_ms"], plain["step_ms"])
    return {"mode": "train" if train else "inference", "attn_chunk": chunk,
            "attn_chunk_stages": None if stages is None else [s + 1 for s in stages], "rows": rows}  # fmt: skip


def _checkpointing(trick: str) -> bool:
    return trick in ("checkpointing", "both")


def _sequential(trick: str) -> bool:
    return trick in ("sequential attention", "both")


def _use(model, trick: str, chunk: int, stages: tuple[int, ...] | None) -> None:
    model.set_grad_checkpointing(_checkpointing(trick))
    model.set_attention_chunk(chunk if _sequential(trick) else None, stages)


def sharded_rows(model, x: torch.Tensor, device: torch.device, dtype, warmup: int, iters: int) -> list[dict[str, Any]]:
    """Both tricks plus ZeRO-1 (DDP and the optimizer ``swin train --zero`` builds) and FSDP2 (ZeRO-3, as
    ``--fsdp`` wraps it, on a copy: it shards in place). Each rank measures its own peak; the row shows the
    largest, per rank."""
    import copy

    import torch.distributed as dist

    from swincli.engine.optim import build_optimizer

    ctx = distributed.setup(str(device))
    rows = []
    ddp, zero = distributed.wrap(model, ctx, fsdp=False), build_optimizer(model, 1e-6, 0.05, zero=True)
    rows.append(_rank_row(f"both + ZeRO-1, per rank of {ctx.world_size}", train_step(ddp, x, device, dtype, warmup, iters,
                                                                                     optimizer=zero)))  # fmt: skip
    del ddp, zero
    sharded = distributed.wrap(copy.deepcopy(model), ctx, fsdp=True)
    rows.append(_rank_row(f"both + FSDP (ZeRO-3), per rank of {ctx.world_size}",
                          train_step(sharded, x, device, dtype, warmup, iters)))  # fmt: skip
    dist.barrier()
    return rows


def _rank_row(label: str, out: dict[str, Any]) -> dict[str, Any]:
    """The largest peak and the slowest step over the ranks (collective: every rank calls it)."""
    import torch.distributed as dist

    mine = (out["peak_memory_bytes"], out["latency_ms"]["median"])
    every = [None] * dist.get_world_size()
    dist.all_gather_object(every, mine)
    peaks = [p for p, _ in every if p is not None]
    return {"trick": label, "peak_memory_bytes": max(peaks) if peaks else None, "step_ms": max(t for _, t in every),
            "estimate_bytes": None}  # fmt: skip


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b
