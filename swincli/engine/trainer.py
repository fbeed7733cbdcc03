"""The training loop behind ``swin train`` and ``swin finetune``.

Reproducible by construction: the sample order is a function of (seed, epoch), each sample's
augmentation of (seed, epoch, index), each batch's mixup of (seed, step), and the global RNG (dropout,
stochastic depth) is saved with the resume state at step boundaries. A CPU run killed at any moment
and resumed therefore ends with the same weights, bit for bit, as one that was never interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from swincli.datasets.unreadable import skipped_message
from swincli.datasets.transforms import mix_seed
from swincli import distributed
from swincli.engine import lora
from swincli.engine.run import outputs
from swincli.evaluation.loop import autocast, evaluate
from swincli.engine.run.interrupt import RunInterrupted, StopRequest
from swincli.engine.run.setup import setup_run
from swincli.engine.run.state import EpochStats, Run
from swincli.engine.optim import lr_at, set_lr
from swincli.engine.reporter import Reporter, TrainResult
from swincli.engine.train_config import TrainConfig
from swincli.engine.run.resume_flags import explicit_fields
from swincli.engine.tracking.base import RunEnd
from swincli.engine.train_data import epoch_batches
from swincli.errors import SwinError
from swincli.fileio import atomic_file
from swincli.memory import PeakMemory

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


def _train(cfg: TrainConfig, finetune: bool, rep: Reporter, ctx: distributed.Dist, explicit: list[str]) -> TrainResult:
    run = setup_run(cfg, finetune, rep, ctx, explicit)
    try:
        return _loop(run)
    except BaseException as exc:
        run.tracker.close(exc)
        raise
    finally:
        run.tracker.close()
        if run.lock is not None:
            run.lock.release()


def _loop(run: Run) -> TrainResult:
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


def _train_one_epoch(run: Run, epoch: int) -> EpochStats:
    """The training steps of one epoch, from where a resumed run stopped; saves state every --save-every steps."""
    cfg, ctx, progress = run.cfg, run.ctx, run.progress
    start_step = progress["step"] if epoch == progress["epoch"] else 0
    if run.governor is not None:
        run.governor.check()
    run.rep.epoch_start(epoch + 1, cfg.epochs, run.steps_per_epoch, start_step)
    run.net.train()
    carried, run.carried = (run.carried if start_step else None), None
    stats = EpochStats.resumed(_lr(run, epoch * run.steps_per_epoch + start_step), carried, ctx.rank)
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


def _lr(run: Run, global_step: int) -> float:
    cfg = run.cfg
    return lr_at(global_step, run.total_steps, run.warmup_steps, cfg.lr, cfg.min_lr, cfg.warmup_lr)


def _forward_backward(run: Run, batches: Iterator, global_step: int) -> tuple[float, bool, int]:
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


def _note_unreadable(run: Run, skipped: list) -> None:
    """Count images that failed to decode (this epoch) and remember their paths for the final report."""
    if skipped:
        run.progress["epoch_unreadable"] = run.progress.get("epoch_unreadable", 0) + len(skipped)
        seen = run.progress.setdefault("unreadable", {})
        for _, u in skipped:
            seen.setdefault(u.path, u.reason)


def _optimizer_step(run: Run, finite: bool, global_step: int) -> bool:
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


def _evaluate_and_log(run: Run, epoch: int, stats: EpochStats) -> dict[str, Any]:
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


def _interrupted(run: Run, hard: bool = False) -> RunInterrupted:
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


def _report_unreadable(run: Run) -> None:
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
