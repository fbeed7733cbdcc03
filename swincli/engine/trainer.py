"""The training loop behind ``swin train`` and ``swin finetune``.

Reproducible by construction: the sample order is a function of (seed, epoch), each sample's
augmentation of (seed, epoch, index), each batch's mixup of (seed, step), and the global RNG (dropout,
stochastic depth) is saved with the resume state at step boundaries. A CPU run killed at any moment
and resumed therefore ends with the same weights, bit for bit, as one that was never interrupted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from swincli.checkpoint import Preprocessing, save_model
from swincli.datasets.build import build_data
from swincli.datasets.transforms import Augmented, BatchMix, Transformed, eval_transform, mix_seed, train_transform
from swincli.engine import distributed as D
from swincli.engine.evaluate import autocast, evaluate
from swincli.engine.optim import build_optimizer, freeze_all_but_head, lr_at, set_lr
from swincli.engine.recipe import TrainConfig, resolve
from swincli.engine.rundir import next_run_dir
from swincli.engine.sampler import ResumableSampler
from swincli.engine.state import RESUME_FILE, full_state, load_resume, restore, save_resume
from swincli.errors import SwinError, SwinUsageError
from swincli.models.config import to_pair

NAN_LIMIT = 20


class Reporter:
    """Receives progress; the CLI renders it with rich, the Python API stays silent by default."""

    def note(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def start(self, info: dict) -> None: ...
    def epoch_start(self, epoch: int, epochs: int, steps: int, start: int) -> None: ...
    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None: ...
    def epoch_end(self, row: dict) -> None: ...
    def finish(self, result: "TrainResult") -> None: ...


@dataclass
class TrainResult:
    run_dir: Path
    best_acc1: float | None
    last: dict[str, Any]
    epochs: int
    notes: list[str] = field(default_factory=list)


def train(cfg: TrainConfig, finetune: bool = False, reporter: Reporter | None = None) -> TrainResult:
    reporter = reporter or Reporter()
    ctx = D.setup(cfg.device)
    try:
        return _train(cfg, finetune, reporter, ctx)
    finally:
        D.teardown(ctx)


def _train(cfg: TrainConfig, finetune: bool, rep: Reporter, ctx: D.Dist) -> TrainResult:
    saved = None
    if cfg.resume:
        saved = load_resume(cfg.resume)
        resume_dir = Path(cfg.resume)
        cfg = TrainConfig.from_dict({**saved["config"], "resume": str(resume_dir), "notes": []})
        run_dir = resume_dir
    else:
        cfg = resolve(cfg, ctx.world_size, finetune)
        run_dir = Path(cfg.output) if cfg.output else next_run_dir("runs/finetune" if finetune else "runs/train")
    for line in cfg.notes:
        rep.note(line)
    torch.manual_seed(mix_seed(cfg.seed, 1))  # the same initial weights on every rank (FSDP does not broadcast them)
    size = to_pair(cfg.size) if cfg.size is not None else None
    data = build_data(cfg.data, cfg.val_split, cfg.seed, size[0] if size else 48)
    for line in data.notes:
        rep.note(line)
    for line in data.warnings:
        rep.warn(line)
    if saved is not None:  # the architecture the run had reached (after any resize or new head)
        from swincli.models.config import SwinConfig
        from swincli.models.swin import SwinTransformer

        model, adapted = SwinTransformer(SwinConfig.from_dict(saved["model_config"])), []
    else:
        model, adapted = _build_model(cfg, finetune, len(data.classes), size)
    for line in adapted:
        rep.note(line)
    model.class_names = list(data.classes)
    mc = model.config
    prep = Preprocessing(input_size=mc.image_hw, crop_pct=1.0 if cfg.data is None else 0.875,
                         mean=data.mean, std=data.std)  # fmt: skip
    model.preprocessing = prep
    if cfg.freeze:
        rep.note(f"--freeze: training the head only ({freeze_all_but_head(model):,} parameters)")
    if cfg.grad_checkpointing:
        model.set_grad_checkpointing(True)
    if cfg.attn_chunk:
        model.set_attention_chunk(cfg.attn_chunk)
    model.to(ctx.device)

    # the shapes set is generated at its training size with random placement: flips are its augmentation
    builtin = cfg.data is None
    transform = train_transform(mc.image_hw, cfg.aa, cfg.reprob, data.mean, data.std,
                                scale=(1.0, 1.0) if builtin else (0.08, 1.0), vflip=builtin)  # fmt: skip
    train_ds = Augmented(data.train, transform, cfg.seed)
    val_ds = Transformed(data.val, eval_transform(mc.image_hw, prep.crop_pct, data.mean, data.std)) if data.val else None
    sampler = ResumableSampler(len(train_ds), True, cfg.seed, ctx.rank, ctx.world_size)
    steps_per_epoch = len(sampler) // (cfg.batch_size * cfg.accum_steps)
    if steps_per_epoch < 1:
        raise SwinUsageError(f"{len(train_ds)} training images make no full batch of {cfg.batch_size}",
                             hint="lower --batch-size")  # fmt: skip
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))

    amp_dtype = _amp_dtype(cfg.amp, ctx.device)
    net = D.wrap(model, ctx, cfg.fsdp)
    torch.manual_seed(mix_seed(cfg.seed, ctx.rank, 2))  # but each rank its own dropout and stochastic depth
    if cfg.zero:
        from torch.distributed.optim import ZeroRedundancyOptimizer

        from swincli.engine.optim import param_groups

        groups = [{k: v for k, v in g.items() if k != "names"} for g in param_groups(model, cfg.weight_decay, cfg.layer_decay)]
        optimizer = ZeroRedundancyOptimizer(groups[0]["params"], optimizer_class=torch.optim.AdamW, lr=cfg.lr,
                                            weight_decay=groups[0]["weight_decay"], betas=(0.9, 0.999), eps=1e-8)  # fmt: skip
        optimizer.param_groups[0]["lr_scale"] = groups[0]["lr_scale"]
        for g in groups[1:]:
            optimizer.add_param_group(g)
    else:
        optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.layer_decay)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=amp_dtype == torch.float16)
    ema = _make_ema(model, cfg)
    mix = BatchMix(cfg.mixup, cfg.cutmix, cfg.smoothing, len(data.classes))
    if cfg.compile:
        net = torch.compile(net)

    progress = {"epoch": 0, "step": 0, "global_step": 0, "best_acc1": None, "nan_streak": 0, "nan_total": 0}
    if saved is not None:
        restore(net if cfg.fsdp else model, optimizer, saved, cfg.fsdp)
        if ema is not None and saved["ema"] is not None:
            ema.load_state_dict(saved["ema"])
        if saved["scaler"]:
            scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng_cpu"][ctx.rank] if ctx.rank in saved["rng_cpu"] else saved["rng_cpu"][0])
        progress = saved["progress"]
        rep.note(f"resuming {run_dir} at epoch {progress['epoch'] + 1}, step {progress['step']}")
    if ctx.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "args.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        _trim_metrics(run_dir, progress["epoch"])
    rep.start({"run_dir": str(run_dir), "model": cfg.model or cfg.checkpoint, "classes": len(data.classes),
               "train_images": len(train_ds), "val_images": len(val_ds) if val_ds else 0, "epochs": cfg.epochs,
               "steps_per_epoch": steps_per_epoch, "device": str(ctx.device), "world_size": ctx.world_size})  # fmt: skip

    def checkpoint_state(at_epoch: int, at_step: int) -> None:
        model_state, optim_state = full_state(net, optimizer, cfg.fsdp, cfg.zero)
        rng = D.gather_rng(ctx)
        if ctx.main:
            state = dict(progress, epoch=at_epoch, step=at_step)
            save_resume(run_dir / RESUME_FILE, model_state, optim_state, state, cfg.to_dict(), model.config.to_dict(), rng,
                        ema.state_dict() if ema is not None else None, scaler.state_dict() if scaler.is_enabled() else None)  # fmt: skip
        D.barrier(ctx)

    last_row: dict[str, Any] = {}
    for epoch in range(progress["epoch"], cfg.epochs):
        start_step = progress["step"] if epoch == progress["epoch"] else 0
        train_ds.epoch = epoch
        sampler.set_epoch(epoch, start_step * cfg.batch_size * cfg.accum_steps)
        # an explicit generator: DataLoader would otherwise draw worker seeds from the global RNG, which
        # also drives dropout and stochastic depth, and a resumed run would draw one number more
        loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                            drop_last=True, pin_memory=ctx.device.type == "cuda",
                            generator=torch.Generator().manual_seed(mix_seed(cfg.seed, epoch, ctx.rank)))  # fmt: skip
        rep.epoch_start(epoch + 1, cfg.epochs, steps_per_epoch, start_step)
        net.train()
        t0, seen, loss_sum, loss_n = time.perf_counter(), 0, 0.0, 0
        batches = iter(loader)
        for step in range(start_step, steps_per_epoch):
            global_step = epoch * steps_per_epoch + step
            lr = lr_at(global_step, total_steps, warmup_steps, cfg.lr, cfg.min_lr, cfg.warmup_lr)
            set_lr(optimizer, lr)
            step_loss, finite = 0.0, True
            for micro in range(cfg.accum_steps):
                if cfg.workers:
                    x, y = next(batches)
                else:  # loading seeds the global RNG per image: keep dropout's stream out of it
                    with torch.random.fork_rng(devices=[]):
                        x, y = next(batches)
                x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
                if mix.active:
                    x, target = mix(x, y, mix_seed(cfg.seed, global_step, micro, ctx.rank))
                with autocast(ctx.device, amp_dtype):
                    logits = net(x)
                if mix.active:
                    loss = torch.sum(-target * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
                else:
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.smoothing)
                finite = finite and bool(torch.isfinite(loss))
                scaler.scale(loss / cfg.accum_steps).backward()
                step_loss += loss.item() / cfg.accum_steps
                seen += len(y)
            finite = D.all_sum([0.0 if finite else 1.0], ctx)[0] == 0
            if finite:
                if cfg.clip_grad:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                if ema is not None:
                    ema.update(model)
                progress["nan_streak"] = 0
                loss_sum, loss_n = loss_sum + step_loss, loss_n + 1
            else:
                progress["nan_streak"] += 1
                progress["nan_total"] += 1
                rep.warn(f"non-finite loss at step {global_step + 1}: step skipped ({progress['nan_streak']} in a row)")
                if progress["nan_streak"] >= NAN_LIMIT:
                    raise SwinError(
                        f"{NAN_LIMIT} non-finite losses in a row: training diverged",
                        hint="lower --lr, use --amp bf16 instead of fp16, or check the data",
                    )
            optimizer.zero_grad(set_to_none=True)
            progress["global_step"] = global_step + 1
            rep.step(step + 1, step_loss, lr, seen / max(time.perf_counter() - t0, 1e-9))
            if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < steps_per_epoch:
                checkpoint_state(epoch, step + 1)
            if cfg.max_steps and progress["global_step"] >= cfg.max_steps:
                break
        epoch_time = time.perf_counter() - t0
        eval_model = ema.module if ema is not None else net
        metrics = evaluate(eval_model, val_ds, cfg.batch_size, ctx, amp_dtype, cfg.workers, len(data.classes)) if val_ds else None
        train_loss = D.all_sum([loss_sum, loss_n], ctx)
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss[0] / train_loss[1] if train_loss[1] else None,
            "val_loss": metrics["loss"] if metrics else None,
            "val_acc1": metrics["acc1"] if metrics else None,
            "val_acc5": metrics["acc5"] if metrics else None,
            "lr": lr,
            "epoch_time_s": epoch_time,
            "images_per_s": seen * ctx.world_size / max(epoch_time, 1e-9),
            "skipped_steps": progress["nan_total"],
        }
        best = progress["best_acc1"]
        improved = row["val_acc1"] is not None and (best is None or row["val_acc1"] > best)
        if improved:
            progress["best_acc1"] = row["val_acc1"]
        _save_weights(net, model, ema, cfg, run_dir, ctx, improved or val_ds is None)
        if ctx.main:
            with open(run_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            _plot(run_dir)
        progress["step"] = 0
        checkpoint_state(epoch + 1, 0)
        progress["epoch"] = epoch + 1
        rep.epoch_end(row)
        last_row = row
        if cfg.max_steps and progress["global_step"] >= cfg.max_steps:
            break
    result = TrainResult(run_dir, progress["best_acc1"], last_row, progress["epoch"], list(cfg.notes))
    rep.finish(result)
    return result


def _build_model(cfg: TrainConfig, finetune: bool, num_classes: int, size):
    """A fresh registry model, or (finetune) pretrained weights moved to the new size, window and classes."""
    from swincli.models.registry import create_model

    notes = []
    if not finetune:
        model = create_model(cfg.model, num_classes=num_classes, img_size=size, window_size=cfg.window,
                             drop_path_rate=cfg.drop_path)  # fmt: skip
        return model, notes
    if cfg.checkpoint:
        from swincli.convert.run import load_any

        model = load_any(cfg.checkpoint, cfg.model)
    else:  # published weights by name, from the Hub cache or downloaded once
        from swincli.hub import load_pretrained

        model = load_pretrained(cfg.model)
        notes.append(f"starting from the published weights of {cfg.model}")
    report = model.resize(img_size=size, window_size=cfg.window)
    if report.changed:
        (h0, w0), (h1, w1) = report.img_size
        wins = lambda i: ",".join(str(s.window[i][0]) for s in report.stages)  # noqa: E731
        notes.append(f"resized {h0}x{w0} (windows {wins(0)}) -> {h1}x{w1} (windows {wins(1)}) with the official rules")
        notes += report.padding
    if model.config.num_classes != num_classes:
        notes.append(model.reset_head(num_classes))
    model.set_drop_path(cfg.drop_path)
    return model, notes


class _Ema:
    """Exponential moving average of the weights (and a copy of the buffers), updated every optimizer step."""

    def __init__(self, model, decay: float) -> None:
        import copy

        self.module = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model) -> None:
        for e, p in zip(self.module.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - self.decay)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)


def _make_ema(model, cfg: TrainConfig):
    if cfg.ema is None:
        return None
    if cfg.fsdp:
        raise SwinUsageError("--ema with --fsdp is not supported", hint="drop --ema or use DDP")
    if not 0.0 < cfg.ema < 1.0:
        raise SwinUsageError("--ema must be in (0, 1), e.g. 0.9998")
    return _Ema(model, cfg.ema)


def _amp_dtype(amp: str | None, device: torch.device) -> torch.dtype | None:
    if amp in (None, "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None  # fp32 on CPU unless asked
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[amp]


def _save_weights(net, model, ema, cfg: TrainConfig, run_dir: Path, ctx: D.Dist, best: bool) -> None:
    """last.safetensors every epoch, best.safetensors when val top-1 improved (EMA weights with --ema)."""
    source = ema.module if ema is not None else model
    if cfg.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(net, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not ctx.main:
            return
        from swincli.checkpoint import build_model

        source = build_model(model.config, state, "fsdp")
        source.class_names, source.preprocessing = model.class_names, model.preprocessing
    if not ctx.main:
        return
    provenance = {"training": {"args": cfg.to_dict(), "run_dir": str(run_dir)}}
    save_model(source, run_dir / "last.safetensors", provenance=provenance)
    if best:
        save_model(source, run_dir / "best.safetensors", provenance=provenance)


def _trim_metrics(run_dir: Path, completed: int) -> None:
    """On resume, drop metric rows of epochs the resumed run will redo."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= completed]
    path.write_text("".join(r + "\n" for r in rows))


def _plot(run_dir: Path) -> None:
    from swincli.engine.curves import plot_curves

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    plot_curves(rows, run_dir / "curves.png", title=run_dir.name)

