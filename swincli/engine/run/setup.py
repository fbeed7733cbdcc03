"""Everything a run does before its first step: settings, data, threads, model, memory check, optimizer,
the resumed state, the run directory and the trackers, in the order that fixes the RNG stream."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from swincli import distributed
from swincli.datasets.build import build_data
from swincli.datasets.transforms import BatchMix, mix_seed
from swincli.device import autocast_dtype
from swincli.engine import lora
from swincli.engine.ema import make_ema
from swincli.engine.model_setup import fit_budget, prepare_model
from swincli.engine.optim import build_optimizer
from swincli.engine.reporter import Reporter
from swincli.engine.run import outputs
from swincli.engine.run.directory import open_run_dir
from swincli.engine.run.resume_state import restore
from swincli.engine.run.settings import resolve_run
from swincli.engine.run.state import Run
from swincli.engine.tracking.base import RunInfo, Tracker, example_images
from swincli.engine.tracking.factory import check_log, open_tracker
from swincli.engine.train_config import TrainConfig
from swincli.engine.train_data import training_sets
from swincli.fileio import atomic_file
from swincli.memory import ensure_fits, estimate
from swincli.models.config import to_pair
from swincli.threads import ThreadWatch, default_workers


def setup_run(cfg: TrainConfig, finetune: bool, rep: Reporter, ctx: distributed.Dist, explicit: list[str]) -> Run:
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
    amp_dtype = autocast_dtype(cfg.amp, ctx.device)
    memory = dict(amp=amp_dtype is not None, ema=cfg.ema is not None, trainable=lora.counts(model)[1] if cfg.lora else None)
    if cfg.memory_budget:
        rep.note(fit_budget(model, cfg, explicit, **memory))
    chunk, stages = model.attention_chunk()  # as set on the model: by the flags, or by the budget just now
    need = estimate(mc, cfg.batch_size, train=True, weights=False, grad_checkpointing=cfg.grad_checkpointing,
                    attn_chunk=chunk, chunk_stages=stages, **memory)  # fmt: skip
    if cfg.lora:
        rep.note(lora.memory_note(model, cfg, amp_dtype is not None))
    ensure_fits(need, str(ctx.device), f"training at batch {cfg.batch_size}, {mc.image_hw[0]}x{mc.image_hw[1]} px",
                "--batch-size, --grad-checkpointing or --size")  # before the first step allocates it

    sets = training_sets(cfg, data, mc.image_hw, prep.crop_pct, ctx, rep.warn)
    train_ds, val_ds, sampler, steps_per_epoch = sets.train, sets.val, sets.sampler, sets.steps_per_epoch

    net = distributed.wrap(model, ctx, cfg.fsdp)
    torch.manual_seed(mix_seed(cfg.seed, ctx.rank, 2))  # but each rank its own dropout and stochastic depth
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.layer_decay, zero=cfg.zero)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=amp_dtype == torch.float16)
    ema = make_ema(model, cfg)
    mix = BatchMix(cfg.mixup, cfg.cutmix, cfg.smoothing, len(data.classes))
    if cfg.compile:
        net = torch.compile(net)
    run = Run(cfg, ctx, rep, run_dir, model, net, optimizer, scaler, ema, mix, amp_dtype, train_ds, val_ds, sampler,
               len(data.classes), steps_per_epoch, steps_per_epoch * cfg.epochs,
               int(round(cfg.warmup_epochs * steps_per_epoch)))  # fmt: skip
    run.governor, run.command = governor, "finetune" if finetune else "train"
    if saved is not None:
        _restore_state(run, saved)
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


def _open_run_dir(run: Run, run_dir: Path | None, finetune: bool, resumed: bool) -> None:
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


def _restore_state(run: Run, saved: dict) -> None:
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
