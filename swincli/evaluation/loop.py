"""Evaluation: top-1/top-5 accuracy (percent), mean loss, per-class accuracy, reduced across ranks."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from swincli.datasets.unreadable import Unreadable, collate
from swincli import distributed
from swincli.distributed import Dist, all_sum


class EvalSampler(Sampler[int]):
    """Every rank takes a stride, padded to equal length (sharded models need the same number of
    forwards on each rank); padded positions are flagged so they are not counted."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.length, self.rank, self.world = length, rank, world_size
        self.per_rank = math.ceil(length / world_size)

    def __iter__(self):
        return iter((self.rank + k * self.world) % self.length for k in range(self.per_rank))

    def __len__(self) -> int:
        return self.per_rank

    def valid(self, k: int) -> bool:
        return self.rank + k * self.world < self.length


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int, ctx: Dist, amp_dtype: torch.dtype | None = None,
             workers: int = 0, num_classes: int | None = None, on_batch=None, confusion: bool = False) -> dict[str, Any]:  # fmt: skip
    """``confusion``: also count (true class, top-1 class) pairs into ``metrics["confusion"]``, an int64
    tensor with one row per true class (:mod:`swincli.evaluation.confusion` renders and summarises it); it
    rides on the same forward passes, so a confusion matrix never costs a second pass over the data."""
    sampler: EvalSampler | None = None
    if hasattr(dataset, "batches"):  # streamed shards (wds:): each rank reads its share once, every sample counts
        loader = dataset.batches(batch_size, workers, ctx.rank, ctx.world_size)
        model = distributed.unwrap(model)  # ranks may run different numbers of forwards: no buffer broadcast in them
    else:
        sampler = EvalSampler(len(dataset), ctx.rank, ctx.world_size)
        # own generator: creating the iterator must not consume the global RNG (exact resume depends on it)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate,
                            generator=torch.Generator().manual_seed(0))  # fmt: skip
    was_training = model.training
    model.eval()
    loss_sum = c1 = c5 = n = 0.0
    per_correct = per_total = pairs = None
    k = 0
    unreadable: list[Unreadable] = []
    for x, y, skipped in loader:
        valid = [sampler is None or sampler.valid(k + i) for i in range(len(y) + len(skipped))]
        k += len(valid)
        dropped = {i for i, _ in skipped}
        unreadable += [u for i, u in skipped if valid[i]]
        if not len(y):
            continue
        x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
        keep = torch.tensor([v for i, v in enumerate(valid) if i not in dropped], device=y.device)
        with autocast(ctx.device, amp_dtype):
            logits = model(x)
        logits = logits.float()
        if per_correct is None:
            classes = num_classes or logits.shape[1]
            per_correct = torch.zeros(classes, dtype=torch.float64, device=y.device)
            per_total = torch.zeros_like(per_correct)
            pairs = torch.zeros(classes, classes, dtype=torch.int64, device=y.device) if confusion else None
        loss_sum += F.cross_entropy(logits, y, reduction="none")[keep].sum().item()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hit1 = (top[:, 0] == y) & keep
        hit5 = (top == y[:, None]).any(dim=1) & keep
        c1, c5, n = c1 + hit1.sum().item(), c5 + hit5.sum().item(), n + keep.sum().item()
        per_total.index_add_(0, y[keep], torch.ones_like(y[keep], dtype=torch.float64))
        per_correct.index_add_(0, y[keep], hit1[keep].double())
        if pairs is not None:
            pairs.index_put_((y[keep], top[:, 0][keep]), torch.ones_like(y[keep]), accumulate=True)
        if on_batch:
            on_batch(len(valid))
    if per_correct is None:
        per_correct = per_total = torch.zeros(num_classes or 1, dtype=torch.float64)
    if confusion:
        m = len(per_correct)
        pairs = _summed(pairs if pairs is not None else torch.zeros(m, m, dtype=torch.int64), ctx)
    totals = all_sum([loss_sum, c1, c5, n, len(unreadable), *per_correct.tolist(), *per_total.tolist()], ctx)
    loss_sum, c1, c5, n, skipped_total = totals[:5]
    m = len(per_correct)
    correct, total = totals[5 : 5 + m], totals[5 + m :]
    model.train(was_training)
    n = max(n, 1)
    out = {
        "loss": loss_sum / n,
        "acc1": 100.0 * c1 / n,
        "acc5": 100.0 * c5 / n,
        "images": int(n),
        "unreadable_images": int(skipped_total),  # on every rank; ``unreadable`` lists this rank's
        "unreadable": [(u.path, u.reason) for u in unreadable],
        "per_class": [{"index": i, "images": int(t), "acc1": 100.0 * c / t if t else None} for i, (c, t) in enumerate(zip(correct, total))],
    }
    if confusion:
        out["confusion"] = pairs
    return out


def _summed(counts: torch.Tensor, ctx: Dist) -> torch.Tensor:
    """A count tensor summed over ranks (one all-reduce of the whole tensor), returned on the CPU."""
    if ctx.enabled:
        import torch.distributed as dist

        counts = counts.to(ctx.device if ctx.device.type == "cuda" else "cpu")
        dist.all_reduce(counts)
    return counts.cpu()
