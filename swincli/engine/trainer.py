"""The training loop behind ``swin train`` and ``swin finetune``.

Reproducible by construction: the sample order is a function of (seed, epoch), each sample's
augmentation of (seed, epoch, index), each batch's mixup of (seed, step), and the global RNG (dropout,
stochastic depth) is saved with the resume state at step boundaries. A CPU run killed at any moment
and resumed therefore ends with the same weights, bit for bit, as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from swincli.datasets.build import build_data
from swincli.datasets.unreadable import skipped_message
from swincli.datasets.transforms import Augmented, BatchMix, Transformed, mix_seed
from swincli import distributed
from swincli.engine import lora
from swincli.engine.run import outputs
from swincli.engine.ema import Ema, make_ema
from swincli.evaluation.loop import autocast, evaluate
from swincli.engine.run.interrupt import RunInterrupted, StopRequest
from swincli.engine.model_setup import prepare_model
from swincli.engine.optim import build_optimizer, lr_at, set_lr
from swincli.engine.reporter import Reporter, TrainResult
from swincli.engine.train_config import TrainConfig
from swincli.engine.run.resume_flags import explicit_fields
from swincli.engine.run.settings import resolve_run
from swincli.engine.run.directory import RunLock, open_run_dir
from swincli.engine.sampler import ResumableSampler
from swincli.engine.run.resume_state import RESUME_FILE, full_state, restore, save_resume
from swincli.threads import ThreadWatch, default_workers
from swincli.engine.tracking.base import RunEnd, RunInfo, Tracker, example_images
from swincli.engine.tracking.factory import check_log, open_tracker
from swincli.engine.train_data import epoch_batches, training_sets
from swincli.device import autocast_dtype
from swincli.errors import SwinError
from swincli.fileio import atomic_file
from swincli.memory import PeakMemory, ensure_fits, estimate
from swincli.models.config import to_pair

NAN_LIMIT = 20


def train(cfg: TrainConfig, finetune: bool = False, reporter: Reporter | None = None,
          explicit: Iterable[str] | None = None) -> TrainResult:  # fmt: skip
    """Run (or, with ``cfg.resume``, continue) a training run. ``explicit`` names the settings the user
    gave (the CLI knows); None takes those that differ from their defaults."""
    reporter = reporter or Reporter()
    ctx = distributed.setup(cfg.device)
    try:
        return _train(cfg, finetune, reporter, ctx, explicit_fields(cfg) if explicit is None else list(explicit))
    finally:
        distributed.teardown(ctx)


@dataclass
class _Run:
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
    epoch_stats: _EpochStats | None = None  # the epoch in progress: its sums so far go into a mid-epoch state
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
class _EpochStats:
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
    def resumed(cls, lr: float, carried: dict | None, rank: int) -> "_EpochStats":
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


def _train(cfg: TrainConfig, finetune: bool, rep: Reporter, ctx: distributed.Dist, explicit: list[str]) -> TrainResult:
    run = _setup(cfg, finetune, rep, ctx, explicit)
    try:
        return _loop(run)
    except BaseException as exc:
        run.tracker.close(exc)
        raise
    finally:
        run.tracker.close()
        if run.lock is not None:
            run.lock.release()


def _loop(run: _Run) -> TrainResult:
    ctx, rep = run.ctx, run.rep
    last_row: dict[str, Any] = {}
    if run.cfg.lora:  # a resumed run's restored AdamW state counts as the steps' own
        run.memory = PeakMemory(ctx.device, held=_tensor_bytes(getattr(run.optimizer, "optim", run.optimizer).state))
    # one process: a signal is deferred to a step boundary; under torchrun every rank would have to agree
    with StopRequest(enabled=not ctx.enabled) as run.stop:
        try:
            for epoch in range(run.progress["epoch"], run.cfg.epochs):
                stats = _train_one_epoch(run, epoch)
                last_row = _evaluate_and_log(run, epoch, stats)
                if run.stopping() and epoch + 1 < run.cfg.epochs:
                    raise _interrupted(run)
                if run.cfg.max_steps and run.progress["global_step"] >= run.cfg.max_steps:
                    break
        except KeyboardInterrupt:
            raise _interrupted(run, hard=True) from None
    result = TrainResult(run.run_dir, run.progress["best_acc1"], last_row, run.progress["epoch"], list(run.cfg.notes))
    if run.cfg.lora:
        result.lora = lora.summary(run.model, run.cfg, run.amp_dtype is not None, run.memory)
    _report_unreadable(run)
    run.tracker.finish(RunEnd(run.run_dir, run.progress["epoch"], run.confusion, list(run.model.class_names or [])))
    rep.finish(result)
    return result


def _setup(cfg: TrainConfig, finetune: bool, rep: Reporter, ctx: distributed.Dist, explicit: list[str]) -> _Run:
    """Everything before the first step. The order fixes the RNG stream: seed, data, weights, reseed, resume."""
    cfg.log = check_log(cfg.log)  # a tracker's missing package: refused before any data is read
    cfg, run_dir, saved, data = resolve_run(cfg, finetune, ctx, explicit)
    cfg.log = check_log(cfg.log)  # a resumed run's own --log
    for line in cfg.notes:
        rep.note(line)
    torch.manual_seed(mix_seed(cfg.seed, 1))  # the same initial weights on every rank (FSDP does not broadcast them)
    size = to_pair(cfg.size) if cfg.size is not None else None
    if data is None:
        data = build_data(cfg.data, cfg.val_split, cfg.seed, size[0] if size else 48, cfg.image_column, cfg.label_column,
                          cfg.epoch_size)  # fmt: skip
    for line in data.notes:
        rep.note(line)
    for line in data.warnings:
        rep.warn(line)
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))
    if cfg.workers is None:
        cfg.workers = default_workers(ctx.device.type, data.in_memory, processes)
    governor = None
    if ctx.device.type == "cpu":  # chosen once and saved with the settings: the count is part of the arithmetic
        governor = ThreadWatch(cfg.threads, processes, rep.note, rep.warn)
        cfg.threads = governor.threads
        governor.apply()
    model = prepare_model(cfg, finetune, saved, data, size, rep, ctx)
    mc, prep = model.config, model.preprocessing
    need = estimate(mc, cfg.batch_size, train=True, amp=autocast_dtype(cfg.amp, ctx.device) is not None, weights=False,
                    grad_checkpointing=cfg.grad_checkpointing, attn_chunk=cfg.attn_chunk, ema=cfg.ema is not None,
                    trainable=lora.counts(model)[1] if cfg.lora else None)  # fmt: skip
    if cfg.lora:
        rep.note(lora.memory_note(model, cfg, autocast_dtype(cfg.amp, ctx.device) is not None))
    ensure_fits(need, str(ctx.device), f"training at batch {cfg.batch_size}, {mc.image_hw[0]}x{mc.image_hw[1]} px",
                "--batch-size, --grad-checkpointing or --size")  # before the first step allocates it

    sets = training_sets(cfg, data, mc.image_hw, prep.crop_pct, ctx, rep.warn)
    train_ds, val_ds, sampler, steps_per_epoch = sets.train, sets.val, sets.sampler, sets.steps_per_epoch

    amp_dtype = autocast_dtype(cfg.amp, ctx.device)
    net = distributed.wrap(model, ctx, cfg.fsdp)
    torch.manual_seed(mix_seed(cfg.seed, ctx.rank, 2))  # but each rank its own dropout and stochastic depth
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.layer_decay, zero=cfg.zero)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=amp_dtype == torch.float16)
    ema = make_ema(model, cfg)
    mix = BatchMix(cfg.mixup, cfg.cutmix, cfg.smoothing, len(data.classes))
    if cfg.compile:
        net = torch.compile(net)
    run = _Run(cfg, ctx, rep, run_dir, model, net, optimizer, scaler, ema, mix, amp_dtype, train_ds, val_ds, sampler,
               len(data.classes), steps_per_epoch, steps_per_epoch * cfg.epochs,
               int(round(cfg.warmup_epochs * steps_per_epoch)))  # fmt: skip
    run.governor, run.command = governor, "finetune" if finetune else "train"
    if saved is not None:
        _restore(run, saved)
        run.saved_at = (run.progress["epoch"], run.progress["step"])
    _open_run_dir(run, run_dir, finetune, saved is not None)
    info = {"run_dir": str(run.run_dir), "model": cfg.model or cfg.checkpoint, "classes": len(data.classes),
            "train_images": len(train_ds), "val_images": len(val_ds) if val_ds else 0, "epochs": cfg.epochs,
            "steps_per_epoch": steps_per_epoch, "device": str(ctx.device), "world_size": ctx.world_size}  # fmt: skip
    rep.start(info)
    if cfg.log:  # rank 0 opens the trackers; its error (a tracking server gone, say) reaches every rank
        start = RunInfo(run.run_dir, cfg.to_dict(), info, saved is not None, run.progress["epoch"],
                        run.progress["global_step"], lambda: example_images(
                        train_ds if sampler is not None else train_ds.examples(), data.mean, data.std))  # fmt: skip
        try:
            run.tracker = distributed.on_main(lambda: open_tracker(cfg.log, start, rep.note, rep.warn), ctx) or Tracker()
        except BaseException:
            if run.lock is not None:
                run.lock.release()
            raise
    return run


def _open_run_dir(run: _Run, run_dir: Path | None, finetune: bool, resumed: bool) -> None:
    """Rank 0 creates (or claims the next numbered) run directory, locks it for the run, and writes args.json;
    every rank learns the directory's name, or rank 0's error."""
    cfg = run.cfg

    def claim() -> None:
        run.lock = open_run_dir(run_dir, "runs/finetune" if finetune else "runs/train", cfg.force, resumed)
        try:
            run.run_dir = run.lock.run_dir
            with atomic_file(run.run_dir / "args.json") as tmp:
                tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
            outputs.trim_metrics(run.run_dir, run.progress["epoch"])
        except BaseException:
            run.lock.release()
            raise

    distributed.on_main(claim, run.ctx)
    run.run_dir = Path(distributed.broadcast_object(str(run.run_dir), run.ctx))


def _restore(run: _Run, saved: dict) -> None:
    """Weights, optimizer, EMA, scaler, this rank's RNG and the progress counters of a resumed run."""
    restore(run.net if run.cfg.fsdp else run.model, run.optimizer, saved, run.cfg.fsdp)
    if run.ema is not None and saved["ema"] is not None:
        run.ema.load_state_dict(saved["ema"])
    if saved["scaler"]:
        run.scaler.load_state_dict(saved["scaler"])
    rank = run.ctx.rank
    torch.set_rng_state(saved["rng_cpu"][rank] if rank in saved["rng_cpu"] else saved["rng_cpu"][0])
    run.progress = saved["progress"]
    run.carried = run.progress.pop("epoch_stats", None)  # absent at an epoch's end, and in older versions' states
    run.rep.note(f"resuming {run.run_dir} at epoch {run.progress['epoch'] + 1}, step {run.progress['step']}")


def _train_one_epoch(run: _Run, epoch: int) -> _EpochStats:
    """The training steps of one epoch, from where a resumed run stopped; saves state every --save-every steps."""
    cfg, ctx, progress = run.cfg, run.ctx, run.progress
    start_step = progress["step"] if epoch == progress["epoch"] else 0
    if run.governor is not None:
        run.governor.check()
    run.rep.epoch_start(epoch + 1, cfg.epochs, run.steps_per_epoch, start_step)
    run.net.train()
    carried, run.carried = (run.carried if start_step else None), None
    stats = _EpochStats.resumed(_lr(run, epoch * run.steps_per_epoch + start_step), carried, ctx.rank)
    run.epoch_stats, seen_before = stats, stats.seen
    batches = epoch_batches(run.train_ds, run.sampler, cfg, ctx, epoch, start_step)
    if run.memory is not None:
        run.memory.begin()
    for step in range(start_step, run.steps_per_epoch):
        global_step = epoch * run.steps_per_epoch + step
        stats.lr = _lr(run, global_step)
        set_lr(run.optimizer, stats.lr)
        step_loss, finite, seen = _forward_backward(run, batches, global_step)
        stats.seen += seen
        if _optimizer_step(run, finite, global_step):
            stats.loss_sum, stats.loss_n = stats.loss_sum + step_loss, stats.loss_n + 1
        progress["global_step"] = global_step + 1
        run.tracker.step(global_step + 1, step_loss, stats.lr)
        session = max(time.perf_counter() - stats.since, 1e-9)  # this session's speed, not the carried part's
        run.rep.step(step + 1, step_loss, stats.lr, (stats.seen - seen_before) / session)
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < run.steps_per_epoch:
            run.save_state(epoch, step + 1)
        if cfg.max_steps and progress["global_step"] >= cfg.max_steps:
            break
        if run.stopping() and step + 1 < run.steps_per_epoch:  # at the epoch's end, _evaluate_and_log saves
            run.save_state(epoch, step + 1)
            raise _interrupted(run)
    stats.seconds, run.epoch_stats = stats.elapsed(), None
    if run.memory is not None:
        run.memory.end()
    return stats


def _lr(run: _Run, global_step: int) -> float:
    cfg = run.cfg
    return lr_at(global_step, run.total_steps, run.warmup_steps, cfg.lr, cfg.min_lr, cfg.warmup_lr)


def _forward_backward(run: _Run, batches: Iterator, global_step: int) -> tuple[float, bool, int]:
    """Accumulate the gradients of one optimizer step; returns its loss, whether every rank's was finite, images."""
    cfg, ctx, mix = run.cfg, run.ctx, run.mix
    step_loss, finite, seen = 0.0, True, 0
    for micro in range(cfg.accum_steps):
        if cfg.workers:
            x, y, skipped = next(batches)
        else:  # loading seeds the global RNG per image: keep dropout's stream out of it
            with torch.random.fork_rng(devices=[]):
                x, y, skipped = next(batches)
        _note_unreadable(run, skipped)
        if not len(y):  # every image of this micro-batch failed to decode
            continue
        x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
        if mix.active:
            x, target = mix(x, y, mix_seed(cfg.seed, global_step, micro, ctx.rank))
        with autocast(ctx.device, run.amp_dtype):
            logits = run.net(x)
        if mix.active:
            loss = torch.sum(-target * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
        else:
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.smoothing)
        finite = finite and bool(torch.isfinite(loss))
        run.scaler.scale(loss / cfg.accum_steps).backward()
        step_loss += loss.item() / cfg.accum_steps
        seen += len(y)
    finite = distributed.all_sum([0.0 if finite else 1.0], ctx)[0] == 0
    return step_loss, finite, seen


def _note_unreadable(run: _Run, skipped: list) -> None:
    """Count images that failed to decode (this epoch) and remember their paths for the final report."""
    if skipped:
        run.progress["epoch_unreadable"] = run.progress.get("epoch_unreadable", 0) + len(skipped)
        seen = run.progress.setdefault("unreadable", {})
        for _, u in skipped:
            seen.setdefault(u.path, u.reason)


def _optimizer_step(run: _Run, finite: bool, global_step: int) -> bool:
    """Apply the accumulated gradients, or skip a non-finite step (and stop after NAN_LIMIT in a row)."""
    cfg, progress = run.cfg, run.progress
    if finite:
        if cfg.clip_grad:
            run.scaler.unscale_(run.optimizer)
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_grad)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        if run.ema is not None:
            run.ema.update(run.model)
        progress["nan_streak"] = 0
    else:
        progress["nan_streak"] += 1
        progress["nan_total"] += 1
        run.rep.warn(f"non-finite loss at step {global_step + 1}: step skipped ({progress['nan_streak']} in a row)")
        if progress["nan_streak"] >= NAN_LIMIT:
            raise SwinError(
                f"{NAN_LIMIT} non-finite losses in a row: training diverged",
                hint="lower --lr, use --amp bf16 instead of fp16, or check the data",
            )
    run.optimizer.zero_grad(set_to_none=True)
    return finite


def _evaluate_and_log(run: _Run, epoch: int, stats: _EpochStats) -> dict[str, Any]:
    """Validate, write the epoch's metrics row and weights, and save the end-of-epoch resume state."""
    cfg, ctx, progress, val_ds = run.cfg, run.ctx, run.progress, run.val_ds
    eval_model = run.ema.module if run.ema is not None else run.net
    metrics = evaluate(eval_model, val_ds, cfg.batch_size, ctx, run.amp_dtype, cfg.workers, run.num_classes,
                       confusion=bool(cfg.log)) if val_ds else None  # fmt: skip
    run.confusion = metrics.get("confusion") if metrics else None
    train_loss = distributed.all_sum([stats.loss_sum, stats.loss_n, progress.pop("epoch_unreadable", 0)], ctx)
    if metrics:
        for path, why in metrics["unreadable"]:
            progress.setdefault("unreadable", {}).setdefault(path, why)
    row = {
        "epoch": epoch + 1,
        "train_loss": train_loss[0] / train_loss[1] if train_loss[1] else None,
        "val_loss": metrics["loss"] if metrics else None,
        "val_acc1": metrics["acc1"] if metrics else None,
        "val_acc5": metrics["acc5"] if metrics else None,
        "lr": stats.lr,
        "epoch_time_s": stats.seconds,
        "images_per_s": stats.seen * ctx.world_size / max(stats.seconds, 1e-9),
        "skipped_steps": progress["nan_total"],
        # images that failed to decode this epoch (train reads + validation), skipped; paths in unreadable.txt
        "unreadable_images": int(train_loss[2]) + (metrics["unreadable_images"] if metrics else 0),
    }
    best = progress["best_acc1"]
    improved = row["val_acc1"] is not None and (best is None or row["val_acc1"] > best)
    if improved:
        progress["best_acc1"] = row["val_acc1"]
    outputs.save_weights(run.net, run.model, run.ema, cfg, run.run_dir, ctx, improved or val_ds is None)
    if ctx.main:
        outputs.write_metrics(run.run_dir, outputs.read_metrics(run.run_dir) + [row])
        outputs.plot(run.run_dir)
        run.tracker.epoch(row)
    progress["step"] = 0
    run.save_state(epoch + 1, 0)
    progress["epoch"] = epoch + 1
    run.rep.epoch_end(row)
    return row


def _interrupted(run: _Run, hard: bool = False) -> RunInterrupted:
    """Where the run stopped and the command that continues it."""
    run.rep.abort()
    why = (run.stop.signal if run.stop is not None else None) or "SIGINT"
    if run.saved_at is None:
        return RunInterrupted(f"{why}: the run stopped before its first state was saved in {run.run_dir}",
                              hint="run the same command again to start over")  # fmt: skip
    epoch, step = run.saved_at
    where = f"epoch {epoch + 1}/{run.cfg.epochs}, step {step}/{run.steps_per_epoch}" if step else \
        f"the start of epoch {epoch + 1}/{run.cfg.epochs}"  # fmt: skip
    what = "the last state saved is at" if hard else "stopped at a step boundary and saved the run at"
    return RunInterrupted(f"{why}: {what} {where}", hint=f"resume with: swin {run.command} --resume {run.run_dir}")


def _report_unreadable(run: _Run) -> None:
    """At the end: which images failed to decode during the run (skipped), in a file and one warning."""
    bad = run.progress.get("unreadable") or {}
    if not bad or not run.ctx.main:
        return
    listing = run.run_dir / "unreadable.txt"
    with atomic_file(listing) as tmp:
        tmp.write_text("".join(f"{path}\t{why}\n" for path, why in sorted(bad.items())))
    run.rep.warn(f"{skipped_message(sorted(bad.items()), 'that failed to decode during the run')} (list in {listing})")


def _tensor_bytes(state: dict) -> int:
    """Bytes of the tensors in an optimizer's per-parameter state."""
    return sum(v.nbytes for entry in state.values() for v in entry.values() if isinstance(v, torch.Tensor))
