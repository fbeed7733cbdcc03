"""Multi-process training on PyTorch's own stack: torchrun sets the environment, we read it.

DDP by default; ``--fsdp`` shards parameters, gradients and optimizer state with FSDP2
(``fully_shard`` per block, then the whole model: ZeRO-3); ``--zero`` keeps parameters replicated
and shards only the optimizer state (``ZeroRedundancyOptimizer``: ZeRO-1). CPU runs use gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from swincli.errors import SwinError

T = TypeVar("T")

from swincli.device import pick_device


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) in a plain process."""
    env = os.environ
    return int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0"))


def setup(device: str | None) -> Dist:
    """Initialise the process group when launched by torchrun; pick this process's device."""
    rank, world, local = launched()
    dev = torch.device(pick_device(device))  # a missing GPU or an unknown name: one line, before any work
    if dev.type == "cuda":
        dev = torch.device("cuda", local if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local, dev)


def wrap(model: nn.Module, ctx: Dist, fsdp: bool) -> nn.Module:
    if not ctx.enabled:
        return model
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for block in model.blocks():
            fully_shard(block)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP, compiled or not (FSDP2 shards in place: nothing to unwrap)."""
    from torch.nn.parallel import DistributedDataParallel

    inner = getattr(model, "_orig_mod", model)
    return inner.module if isinstance(inner, DistributedDataParallel) else model


def all_sum(values: list[float], ctx: Dist) -> list[float]:
    if not ctx.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def gather_rng(ctx: Dist) -> list[torch.Tensor]:
    """Every rank's CPU RNG state, in rank order (so a resumed run continues each rank's stream)."""
    state = torch.get_rng_state()
    if not ctx.enabled:
        return [state]
    states: list = [None] * ctx.world_size
    dist.all_gather_object(states, state)
    return states


def on_main(fn: Callable[[], T], ctx: Dist) -> T | None:
    """Run ``fn`` on rank 0 only (file system work); its error reaches every rank, which would otherwise wait
    for rank 0 forever. Rank 0 gets the result, the others None."""
    result, failure = None, None
    if ctx.main:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
            failure = exc
    if ctx.enabled:
        box = [None if failure is None else (str(getattr(failure, "message", failure)), getattr(failure, "hint", None))]
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None and not ctx.main:
            raise SwinError(*box[0])
    if failure is not None:
        raise failure
    return result


def broadcast_object(value: Any, ctx: Dist) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: Dist) -> None:
    if ctx.enabled:
        dist.barrier()


def teardown(ctx: Dist) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
