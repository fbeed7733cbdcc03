"""What a run trains and validates on, and each epoch's batches.

Folders, ``hf:`` datasets and the built-in set are map-style: a :class:`ResumableSampler` orders them
by (seed, epoch) and :class:`Augmented` seeds each sample's augmentation by (seed, epoch, index).
``wds:`` shards are streamed, split by rank and loader worker (:mod:`swincli.datasets.wds_stream`).
Either way a resumed run continues with the very batches an uninterrupted one would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from swincli.datasets.build import Data
from swincli.datasets.transforms import Augmented, Transformed, eval_transform, mix_seed, train_transform
from swincli.datasets.unreadable import collate
from swincli import distributed
from swincli.engine.run.interrupt import ignore_sigint
from swincli.engine.train_config import TrainConfig
from swincli.engine.sampler import ResumableSampler
from swincli.errors import SwinUsageError


@dataclass
class TrainSets:
    train: Any  # Augmented (map-style) or the wds stream
    val: Any | None
    sampler: ResumableSampler | None  # None: streamed
    steps_per_epoch: int


def training_sets(cfg: TrainConfig, data: Data, image_hw: tuple[int, int], crop_pct: float, ctx: distributed.Dist,
                  warn: Callable[[str], None]) -> TrainSets:  # fmt: skip
    """The augmented training set, the validation set and the number of optimizer steps per epoch."""
    # the shapes set is generated at its training size with random placement: flips are its augmentation
    builtin = cfg.data is None
    transform = train_transform(image_hw, cfg.aa, cfg.reprob, data.mean, data.std,
                                scale=(crop_scale(cfg, builtin), 1.0), vflip=builtin)  # fmt: skip
    val_tf = eval_transform(image_hw, crop_pct, data.mean, data.std)
    if data.stream is not None:
        if cfg.fsdp and data.val is not None:
            raise SwinUsageError("--fsdp cannot validate on streamed wds: shards (ranks would run different numbers "
                                 "of forwards)", hint="drop '::VAL' from --data, or train with DDP")  # fmt: skip
        data.stream.transform = transform
        val = data.val.transformed(val_tf) if data.val is not None else None
        steps = data.stream.steps(cfg.batch_size, cfg.accum_steps, ctx.world_size)
        for line in data.stream.split_warnings(cfg.batch_size, cfg.accum_steps, ctx.world_size, cfg.workers):
            warn(line)
        sets = TrainSets(data.stream, val, None, steps)
    else:
        train = Augmented(data.train, transform, cfg.seed)
        sampler = ResumableSampler(len(train), True, cfg.seed, ctx.rank, ctx.world_size)
        sets = TrainSets(train, Transformed(data.val, val_tf) if data.val else None, sampler,
                         len(sampler) // (cfg.batch_size * cfg.accum_steps))  # fmt: skip
    if sets.steps_per_epoch < 1:
        raise SwinUsageError(f"{len(sets.train)} training images make no full batch of {cfg.batch_size}",
                             hint="lower --batch-size")  # fmt: skip
    return sets


def epoch_batches(train: Any, sampler: ResumableSampler | None, cfg: TrainConfig, ctx: distributed.Dist, epoch: int,
                  start_step: int) -> Iterator:  # fmt: skip
    """``(x, y, skipped)`` batches of one epoch from ``start_step`` on (a resumed run skips what it saw)."""
    if sampler is None:  # wds: this rank's share of the shards
        return train.batches(epoch, start_step, cfg.batch_size, cfg.accum_steps, cfg.workers, cfg.seed,
                             ctx.rank, ctx.world_size, ctx.device.type == "cuda", ignore_sigint)  # fmt: skip
    train.epoch = epoch
    sampler.set_epoch(epoch, start_step * cfg.batch_size * cfg.accum_steps)
    # an explicit generator: DataLoader would otherwise draw worker seeds from the global RNG, which
    # also drives dropout and stochastic depth, and a resumed run would draw one number more
    loader = DataLoader(train, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers, drop_last=True,
                        collate_fn=collate, worker_init_fn=ignore_sigint, pin_memory=ctx.device.type == "cuda",
                        generator=torch.Generator().manual_seed(mix_seed(cfg.seed, epoch, ctx.rank)))  # fmt: skip
    return iter(loader)


def crop_scale(cfg: TrainConfig, builtin: bool) -> float:
    """The random-resized crop's smallest area (runs saved before --crop-scale existed: the old rule)."""
    if cfg.crop_scale is not None:
        return cfg.crop_scale
    return 1.0 if builtin else 0.08
