"""One run's state between steps (:class:`Run`) and the sums of the epoch in progress (:class:`EpochStats`).

Setup (``engine/run/setup.py``) builds a :class:`Run`; every phase of the loop (``engine/trainer.py``)
reads and advances it, and :meth:`Run.save_state` writes it as the resume state at a step boundary.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from swincli import distributed
from swincli.datasets.transforms import Augmented, BatchMix, Transformed
from swincli.engine.ema import Ema
from swincli.engine.reporter import Reporter
from swincli.engine.run.directory import RunLock
from swincli.engine.run.interrupt import StopRequest
from swincli.engine.run.resume_state import RESUME_FILE, full_state, save_resume
from swincli.engine.sampler import ResumableSampler
from swincli.engine.tracking.base import Tracker
from swincli.engine.train_config import TrainConfig
from swincli.memory import PeakMemory
from swincli.threads import ThreadWatch


@dataclass
class Run:
    """What setup builds and every phase of the loop reads: one run's state between steps."""

    cfg: TrainConfig
    ctx: distributed.Dist
    rep: Reporter
    run_dir: Path
    model: torch.nn.Module  # the bare model: saved weights, EMA source, gradient clipping
    net: torch.nn.Module  # what runs forward: wrapped for DDP/FSDP, maybe compiled
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: Ema | None
    mix: BatchMix
    amp_dtype: torch.dtype | None
    train_ds: Augmented  # or, for wds: shards, the ShardStream (then sampler is None)
    val_ds: Transformed | None
    sampler: ResumableSampler | None
    num_classes: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    progress: dict[str, Any] = field(default_factory=lambda: {
        "epoch": 0, "step": 0, "global_step": 0, "best_acc1": None, "nan_streak": 0, "nan_total": 0,
    })  # fmt: skip
    governor: ThreadWatch | None = None  # CPU runs: threads chosen at the start, load watched every epoch
    stop: StopRequest | None = None  # Ctrl-C / SIGTERM, acted on at step boundaries
    command: str = "train"
    saved_at: tuple[int, int] | None = None  # (epoch, step) of the last resume state written
    lock: RunLock | None = None  # rank 0: held on the run directory while this run writes it
    tracker: Tracker = field(default_factory=Tracker)  # --log: TensorBoard / MLflow (rank 0; a no-op elsewhere)
    confusion: torch.Tensor | None = None  # --log: the last validation's confusion matrix, drawn at the end
    epoch_stats: EpochStats | None = None  # the epoch in progress: its sums so far go into a mid-epoch state
    carried: dict | None = None  # a resumed run: the interrupted epoch's sums from its resume state
    memory: PeakMemory | None = None  # --lora: what the training steps add at their peak (checkpoint writing aside)

    def save_state(self, at_epoch: int, at_step: int) -> None:
        """The resume state at a step boundary (collective under FSDP/ZeRO: every rank calls it)."""
        with self.memory.paused() if self.memory is not None else contextlib.nullcontext():
            self._save_state(at_epoch, at_step)

    def _save_state(self, at_epoch: int, at_step: int) -> None:
        model_state, optim_state = full_state(self.net, self.optimizer, self.cfg.fsdp, self.cfg.zero)
        rng = distributed.gather_rng(self.ctx)
        partial = self.epoch_stats.carry(self.ctx) if at_step and self.epoch_stats is not None else None
        if self.ctx.main:
            state = dict(self.progress, epoch=at_epoch, step=at_step)
            if partial is not None:
                state["epoch_stats"] = partial
            ema_state = self.ema.state_dict() if self.ema is not None else None
            scaler_state = self.scaler.state_dict() if self.scaler.is_enabled() else None
            save_resume(self.run_dir / RESUME_FILE, model_state, optim_state, state, self.cfg.to_dict(),
                        self.model.config.to_dict(), rng, ema_state, scaler_state)  # fmt: skip
        distributed.barrier(self.ctx)
        self.saved_at = (at_epoch, at_step)

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.requested


@dataclass
class EpochStats:
    """What one epoch's training part hands to evaluation and logging. A mid-epoch resume state carries the
    sums so far (:meth:`carry`), so the row of an epoch that was interrupted and resumed is the row of an
    uninterrupted one: the same loss (bit for bit on the CPU), images and seconds of the whole epoch."""

    lr: float
    seen: int = 0  # this rank's images (every rank takes as many)
    loss_sum: float = 0.0  # this rank's; a resumed run's carried sum (over all ranks) sits on rank 0
    loss_n: int = 0
    seconds: float = 0.0  # before this session: the time the interrupted run spent on the epoch's saved steps
    since: float = field(default_factory=time.perf_counter)  # when this session's part of the epoch began

    @classmethod
    def resumed(cls, lr: float, carried: dict | None, rank: int) -> "EpochStats":
        """The stats of an epoch that begins here, or continues the sums of a resume state (old states: none)."""
        if not carried:
            return cls(lr)
        loss = (float(carried["loss_sum"]), int(carried["loss_n"])) if rank == 0 else (0.0, 0)
        return cls(lr, int(carried["seen"]), *loss, float(carried["seconds"]))

    def elapsed(self) -> float:
        return self.seconds + time.perf_counter() - self.since

    def carry(self, ctx: distributed.Dist) -> dict[str, float]:
        """The sums so far, for the resume state (collective: the loss is summed over the ranks)."""
        loss_sum, loss_n = distributed.all_sum([self.loss_sum, self.loss_n], ctx)
        return {"loss_sum": loss_sum, "loss_n": int(loss_n), "seen": self.seen, "seconds": self.elapsed()}
