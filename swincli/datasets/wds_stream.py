"""Streaming webdataset shards to training and evaluation: who reads which shard, and in what order.

Per epoch the shard list is shuffled by (seed, epoch), the same on every rank. Rank ``r`` takes the
shuffled shards ``r::world`` and its loader worker ``w`` takes ``w::workers`` of those (webdataset's
``split_by_node`` and ``split_by_worker``, computed here from explicit numbers rather than the
environment so that the main process can predict them). Each worker streams its shards front to back
through webdataset (:func:`swincli.datasets.wds.raw_samples`) and hands over single samples; the
DataLoader interleaves its workers round-robin in worker order (skipping a worker once it is done,
deterministic in PyTorch), and the main process cuts batches, so no partial batch is made at a
worker's end.

Every rank takes the same number of samples, ``steps x batch x accum`` (DDP needs equal steps), fixed
by the count of the shards at the start. A rank whose shards hold fewer goes round them again (a
second *pass*); extra samples are left to the next epoch's shuffle. Which samples each worker
yields follows from the counts alone (:func:`worker_quotas`), so with shards of equal size, in a
number divisible by the ranks, every sample is seen exactly once an epoch. A sample's augmentation
is seeded by (seed, epoch, pass, position of its shard in the shuffled list, index in the shard),
independent of worker timing, and a run resumed mid-epoch skips what the round-robin order says
each worker had already handed over, before any image is decoded (whole shards are not even opened).

With ``--epoch-size N`` the shards are not counted: every worker goes round its shards until the
main process has taken its share of N; resuming then still skips in the raw stream (tar read, no decode).
"""

from __future__ import annotations

import copy
import io
import itertools
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from swincli.datasets.folder import load_rgb
from swincli.datasets.transforms import mix_seed
from swincli.datasets.unreadable import Unreadable, collate, reason
from swincli.datasets.wds_shards import ShardError, raw_samples
from swincli.errors import SwinError

SHARD_HINT = "write more, smaller shards: at least one per rank, ideally several per rank x loader worker"


@dataclass(frozen=True)
class Failure:
    """A worker's fatal error, handed over as a sample: the main process raises it as one SwinError line
    (an exception raised inside a loader worker would reach the user as a wrapped traceback)."""

    message: str
    hint: str | None = None


# ------------------------------------------------------------------ the plan: pure functions of the counts
def shard_order(shards: int, seed: int, epoch: int) -> list[int]:
    """The epoch's shuffled shard list, identical on every rank."""
    return torch.randperm(shards, generator=torch.Generator().manual_seed(mix_seed(seed, epoch, 17))).tolist()


def split(positions: list[int], part: int, parts: int) -> list[int]:
    """``positions[part::parts]``: webdataset's split_by_node / split_by_worker."""
    return positions[part::parts]


def round_robin_take(lengths: list[int], taken: int) -> list[int]:
    """How many items each stream gave when ``taken`` items were read round-robin from streams of these
    lengths, in stream order, skipping a stream once it is exhausted (what the DataLoader does)."""
    out, level, left = [0] * len(lengths), 0, min(taken, sum(lengths))
    active = [i for i, n in enumerate(lengths) if n > 0]
    while left and active:
        step = min(lengths[i] for i in active) - level
        if step * len(active) <= left:
            for i in active:
                out[i] += step
            left, level = left - step * len(active), level + step
            active = [i for i in active if lengths[i] > level]
        else:
            full, extra = divmod(left, len(active))
            for k, i in enumerate(active):
                out[i] += full + (k < extra)
            left = 0
    return out


def worker_quotas(worker_samples: list[int], quota: int) -> list[int]:
    """How many samples each worker hands over so that the rank takes ``quota``: whole passes over the
    rank's shards, then the rest as a round-robin over the workers' next pass."""
    total = sum(worker_samples)
    passes, rest = divmod(quota, total)
    return [passes * n + r for n, r in zip(worker_samples, round_robin_take(worker_samples, rest))]


@dataclass
class _Plan:
    """What one loader worker of one rank reads in one epoch (picklable: built in the main process)."""

    urls: list[str]
    counts: list[int] | None
    order: list[int]
    epoch: int
    seed: int
    rank: int
    world: int
    quota: int | None  # samples this rank takes; None: unbounded (--epoch-size, the main process stops)
    consumed: int  # samples of this rank already used (resume mid-epoch)
    num_classes: int
    single_pass: bool = False  # evaluation: each shard once, no quota

    def worker(self, w: int, workers: int) -> tuple[list[int], int | None, int]:
        """(shard positions, samples to hand over or None, samples to skip) of worker ``w``."""
        per_worker = [split(split(list(range(len(self.order))), self.rank, self.world), k, workers) for k in range(workers)]
        mine = per_worker[w]
        if self.counts is not None and self.quota is not None:
            sizes = [sum(self.counts[self.order[p]] for p in pos) for pos in per_worker]
            if not sum(sizes):
                return mine, 0, 0
            n = worker_quotas(sizes, self.quota)
            return mine, n[w], round_robin_take(n, self.consumed)[w]
        active = [k for k, pos in enumerate(per_worker) if pos]
        if w not in active:
            return mine, 0, 0
        full, extra = divmod(self.consumed, len(active))
        return mine, None, full + (active.index(w) < extra)


def _stream(plan: _Plan, transform: Callable | None, w: int, workers: int, label_map: list | None = None):
    """The samples of one worker: (image tensor or Unreadable, label), or one Failure."""
    mine, limit, skip = plan.worker(w, workers)
    if plan.quota and w == 0 and plan.counts is not None and not _rank_has_samples(plan):
        yield Failure(f"wds: rank {plan.rank} drew only empty shards in epoch {plan.epoch + 1}", hint=SHARD_HINT)
        return
    produced = 0
    for pass_ in itertools.count():
        before = produced
        for pos in mine:
            shard = plan.order[pos]
            url = plan.urls[shard]
            size = plan.counts[shard] if plan.counts is not None else None
            if size is not None and skip >= size and (limit is None or produced + size <= limit):
                skip, produced = skip - size, produced + size  # consumed before the resume: not even opened
                continue
            try:
                for i, (key, data, label) in enumerate(raw_samples(url)):
                    if limit is not None and produced >= limit:
                        return
                    produced += 1
                    if skip:
                        skip -= 1
                        continue
                    yield _sample(plan, transform, url, key, data, label, (pass_, pos, i), label_map)
            except ShardError as exc:
                yield Failure(str(exc), hint="check the shard (tar -tf), or leave it out of the pattern")
                return
        if (limit is not None and produced >= limit) or plan.single_pass or not mine:
            return
        if produced == before:
            yield Failure(f"wds: the shards of rank {plan.rank} hold no sample with an image and a .cls label",
                          hint=SHARD_HINT)  # fmt: skip
            return


def _rank_has_samples(plan: _Plan) -> bool:
    positions = split(list(range(len(plan.order))), plan.rank, plan.world)
    return any(plan.counts[plan.order[p]] for p in positions)  # type: ignore[index]


def _sample(plan: _Plan, transform, url: str, key: str, data: bytes, label: int, where: tuple, label_map):
    if label >= plan.num_classes:
        return Failure(f"wds: {url}:{key} has label {label} but the run has {plan.num_classes} classes",
                       hint="put a classes.txt (one name per line) beside the shards")  # fmt: skip
    if label_map is not None:
        label = label_map[label]
        if label is None:
            return None  # a class the checkpoint does not have (swin eval --remap): left out
    try:
        image = load_rgb(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any decoder failure: skipped and counted, like folder images
        return Unreadable(f"{url}:{key}", reason(exc)), label
    if transform is None:
        return image, label
    if not plan.single_pass:  # training: the augmentation is seeded by where the sample is
        # the CPU generator directly, as transforms.Augmented does (torch.manual_seed is ~1.5 ms a call)
        torch.default_generator.manual_seed(mix_seed(plan.seed, plan.epoch, *where))
    return transform(image), label


class _Samples(IterableDataset):
    """One epoch's samples of one rank; each DataLoader worker reads its own part of the plan."""

    def __init__(self, plan: _Plan, transform: Callable | None, label_map: list | None = None) -> None:
        self.plan, self.transform, self.label_map = plan, transform, label_map

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        w, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        items = _stream(self.plan, self.transform, w, workers, self.label_map)
        return (item for item in items if item is not None)


def _batched(items: Iterator, batch_size: int, pin: bool, partial: bool) -> Iterator:
    """(images, labels, skipped) batches of ``batch_size`` samples, cut in the main process."""
    while True:
        chunk = list(itertools.islice(items, batch_size))
        for item in chunk:
            if isinstance(item, Failure):
                raise SwinError(item.message, hint=item.hint)
        if not chunk or (len(chunk) < batch_size and not partial):
            return
        x, y, skipped = collate(chunk)
        if pin and len(y):
            x = x.pin_memory()
        yield x, y, skipped


def _loader(samples: _Samples, workers: int, seed: int, worker_init: Callable | None) -> Iterator:
    # batch_size=None: workers hand over single samples; an explicit generator keeps the global RNG untouched
    return iter(DataLoader(samples, batch_size=None, num_workers=workers, worker_init_fn=worker_init,
                           generator=torch.Generator().manual_seed(seed)))  # fmt: skip


# ------------------------------------------------------------------ what the trainer and evaluation use
class ShardStream(IterableDataset):
    """The training shards (``Data.stream``): ``steps`` fixes the schedule, ``batches`` streams an epoch."""

    def __init__(self, urls: list[str], counts: list[int] | None, total: int, num_classes: int) -> None:
        self.urls, self.counts, self.total, self.num_classes = urls, counts, total, num_classes
        self.transform: Callable | None = None

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator:
        raise TypeError("ShardStream is read through batches(), not iterated")

    def steps(self, batch_size: int, accum: int, world: int) -> int:
        """Optimizer steps per epoch, the same on every rank: the samples split evenly, whole batches."""
        filled = sum(1 for n in self.counts if n) if self.counts is not None else len(self.urls)
        if filled < world:
            raise SwinError(f"wds: {filled} shard(s) with samples cannot feed {world} ranks: every rank reads whole shards",
                            hint=SHARD_HINT)  # fmt: skip
        return self.total // (world * batch_size * accum)

    def split_warnings(self, batch_size: int, accum: int, world: int, workers: int) -> list[str]:
        """Why an epoch may not be exactly one pass over the samples, said once at the start."""
        out, shards = [], len(self.urls)
        if workers and shards // world < workers:
            out.append(f"wds: {shards} shard(s) for {world} rank(s) x {workers} loader workers: some workers have no "
                       "shard and stay idle (more, smaller shards load faster)")  # fmt: skip
        if world == 1:
            return out
        quota = self.steps(batch_size, accum, world) * batch_size * accum
        if self.counts is None:
            if shards % world:
                out.append(f"wds: {shards} shards do not split evenly over {world} ranks: with --epoch-size every rank "
                           f"takes {quota:,} samples an epoch, some samples are repeated or skipped")  # fmt: skip
            return out
        if shards % world == 0 and len(set(self.counts)) == 1:
            return out
        fewest = sum(sorted(self.counts)[: shards // world])  # the least a rank can draw
        repeated = world * max(0, quota - fewest)
        bound = min(self.total - world * quota + 2 * repeated, self.total + world * quota)
        out.append(f"wds: {shards} shards of {min(self.counts)}..{max(self.counts)} samples do not split evenly over "
                   f"{world} ranks: every rank takes {quota:,} samples an epoch, up to {bound:,} samples per epoch "
                   "are repeated or skipped (equal shards, a multiple of the ranks in number, are exact)")  # fmt: skip
        return out

    def _plan(self, epoch: int, seed: int, rank: int, world: int, quota: int | None, consumed: int) -> _Plan:
        order = shard_order(len(self.urls), seed, epoch)
        return _Plan(self.urls, self.counts, order, epoch, seed, rank, world, quota, consumed, self.num_classes)

    def batches(self, epoch: int, start_step: int, batch_size: int, accum: int, workers: int, seed: int, rank: int,
                world: int, pin: bool = False, worker_init: Callable | None = None) -> Iterator:  # fmt: skip
        """This rank's batches of ``epoch`` from ``start_step`` on, as (images, labels, skipped)."""
        per_step = batch_size * accum
        quota = self.steps(batch_size, accum, world) * per_step
        plan = self._plan(epoch, seed, rank, world, quota if self.counts is not None else None, start_step * per_step)
        items = _loader(_Samples(plan, self.transform), workers, mix_seed(seed, epoch, rank), worker_init)
        left = quota - start_step * per_step
        return _batched(itertools.islice(items, left), batch_size, pin, partial=False)

    def examples(self, count: int = 8) -> list:
        """The first ``count`` training samples of epoch 1 on rank 0, augmented (for run trackers' image grids)."""
        plan = self._plan(0, 0, 0, 1, None, 0)
        with torch.random.fork_rng(devices=[]):
            items = [s for s in itertools.islice(_stream(plan, self.transform, 0, 1), count) if s is not None]
        return [s for s in items if not isinstance(s, Failure)]


class ShardEval(IterableDataset):
    """Validation / ``swin eval`` shards: each rank streams ``shards[rank::world]`` once, split over its
    loader workers; every sample counts (evaluation sums the metrics over ranks)."""

    def __init__(self, urls: list[str], counts: list[int] | None, num_classes: int) -> None:
        self.urls, self.counts, self.num_classes = urls, counts, num_classes
        self.transform: Callable | None = None
        self.label_map: list | None = None

    def __len__(self) -> int:  # 0 when not counted (--epoch-size): evaluation does not need it
        return sum(self.counts or [])

    def __bool__(self) -> bool:  # a validation set even when not counted
        return True

    def __iter__(self) -> Iterator:
        return iter(_Samples(self._plan(0, 1), self.transform, self.label_map))

    def _plan(self, rank: int, world: int) -> _Plan:
        return _Plan(self.urls, self.counts, list(range(len(self.urls))), 0, 0, rank, world, None, 0, self.num_classes, True)

    def transformed(self, transform: Callable) -> "ShardEval":
        out = copy.copy(self)
        out.transform = transform
        return out

    def relabeled(self, labels: list[int | None]) -> "ShardEval":
        """Labels turned into model outputs (``swin eval``'s class matching); None: the sample is left out."""
        out = copy.copy(self)
        out.label_map = labels
        return out

    def batches(self, batch_size: int, workers: int, rank: int, world: int) -> Iterator:
        """This rank's share as (images, labels, skipped), the last batch possibly short."""
        items = _loader(_Samples(self._plan(rank, world), self.transform, self.label_map), workers, 0, None)
        return _batched(items, batch_size, False, partial=True)
