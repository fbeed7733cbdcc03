"""What the benchmark scripts share: their common options and the images/s of a few forwards."""

from __future__ import annotations

import argparse
import time

import torch


def parser(doc: str, models: tuple[str, ...] = ("swin-t", "swinv2-t"), batch: int = 8) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(models))
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--amp", choices=["none", "bf16"], default="none")
    return p


def setup(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)


def images_per_s(model, x: torch.Tensor, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        model(x)
    return iters * x.shape[0] / (time.perf_counter() - start)


def paired_rounds(first, second, x: torch.Tensor, iters: int, rounds: int) -> list[tuple[float, float]]:
    """(first, second) images/s per round, the two timed back to back, in alternating order: a fixed order
    lets whatever the machine does between the two (frequency, caches, other processes) favour one side."""
    out = []
    for r in range(rounds):
        if r % 2:
            b = images_per_s(second, x, iters)
            a = images_per_s(first, x, iters)
        else:
            a = images_per_s(first, x, iters)
            b = images_per_s(second, x, iters)
        out.append((a, b))
    return out


def cpu() -> str:
    """The CPU model and the threads used, for the header line of a result."""
    from swincli.environment import cpu_name

    return f"{cpu_name()}, {torch.get_num_threads()} threads"
