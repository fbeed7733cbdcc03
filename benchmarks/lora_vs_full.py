"""Peak memory and step time of LoRA fine-tuning against full fine-tuning: same model, batch and optimizer.

    python benchmarks/lora_vs_full.py --model swinv2-t --size 256 -b 8 --device cpu
    python benchmarks/lora_vs_full.py --model swinv2-b --size 384 --window 24 -b 16 --device cuda --amp bf16

Each mode (full, LoRA r=8 on qkv,proj,fc1,fc2 with head, norms and position bias trainable: what
``swin finetune --lora 8`` trains) runs in a fresh subprocess, so its peak is its own: on the CPU the
process's peak RSS (``ru_maxrss``) minus the RSS before the model was built, with glibc told to return
freed tensors to the system (``MALLOC_MMAP_THRESHOLD_``: otherwise the peak also counts memory that
was already free again, and LoRA measured 0.25 GiB *above* full fine-tuning), and the step time from
a second run without that setting; on CUDA
``torch.cuda.max_memory_allocated``. Weights are random (memory and time do not depend on them). A step
is forward + backward + AdamW over the trainable parameters (the engine's parameter groups); the
table gives the median step time after ``--warmup`` steps, and swincli's own estimate (``swincli.memory``)
beside each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_mode(args: argparse.Namespace) -> dict:
    """Run ``args.mode`` here and return its numbers (called in the child process)."""
    import torch
    import torch.nn.functional as F

    from swincli import create_model
    from swincli.engine.optim import build_optimizer
    from swincli.engine.train_config import TrainConfig
    from swincli.memory import estimate

    if args.mode == "lora":
        import peft  # noqa: F401 - its import (transformers ...) is not the run's memory: before the baseline

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = {"bf16": torch.bfloat16, "none": None}[args.amp]
    before = rss()
    model = create_model(args.model, num_classes=args.classes, img_size=args.size, window_size=args.window)
    cfg = TrainConfig(lora=args.rank if args.mode == "lora" else None, lora_alpha=float(args.rank), lora_dropout=0.0,
                      lora_targets="qkv,proj,fc1,fc2", batch_size=args.batch,
                      grad_checkpointing=args.grad_checkpointing)  # fmt: skip
    if args.mode == "lora":
        from swincli.engine import lora

        lora.add_adapters(model, cfg)
    if args.grad_checkpointing:
        model.set_grad_checkpointing(True)
    model.to(device).train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    optimizer = build_optimizer(model, 1e-4, 0.05)
    x = torch.randn(args.batch, 3, *model.config.image_hw, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak, how = torch.cuda.max_memory_allocated(device), "CUDA max allocated"
    else:
        peak, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before, "peak RSS - RSS before"
    est = estimate(model.config, args.batch, train=True, amp=amp is not None, grad_checkpointing=args.grad_checkpointing,
                   trainable=trainable).total  # fmt: skip
    return {"mode": args.mode, "trainable": trainable, "total": total, "peak": peak, "how": how, "estimate": est,
            "step_s": statistics.median(times), "device": str(device)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="swinv2-t")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--window", type=int, default=None)
    p.add_argument("-b", "--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", choices=["none", "bf16"], default="none")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads on the CPU (0: torch's default)")
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--mode", choices=["full", "lora"], help=argparse.SUPPRESS)  # the child's own
    args = p.parse_args()
    if args.mode:
        print(json.dumps(one_mode(args)))
        return
    rows = []
    for mode in ("full", "lora"):
        row = _child(mode, exact_rss=args.device == "cpu")
        if args.device == "cpu":  # the mmap setting slows small allocations: time a second run without it
            row["step_s"] = _child(mode, exact_rss=False)["step_s"]
        rows.append(row)
    gib = lambda n: f"{n / 2**30:6.2f} GiB"  # noqa: E731
    print(f"{args.model} {args.size}px window {args.window or 'default'}, batch {args.batch}, {rows[0]['device']}, "
          f"amp {args.amp}, LoRA r={args.rank} on qkv,proj,fc1,fc2; peak = {rows[0]['how']}")  # fmt: skip
    print(f"{'mode':<6}{'trainable':>14}{'share':>9}{'peak':>13}{'estimate':>13}{'step':>10}")
    for r in rows:
        print(f"{r['mode']:<6}{r['trainable']:>14,}{100 * r['trainable'] / r['total']:>8.2f}%{gib(r['peak']):>13}"
              f"{gib(r['estimate']):>13}{r['step_s']:>9.2f}s")  # fmt: skip
    full, lora = rows
    print(f"LoRA / full: peak memory {lora['peak'] / full['peak']:.2f}x, step time {lora['step_s'] / full['step_s']:.2f}x")


def _child(mode: str, exact_rss: bool) -> dict:
    """One mode in a fresh process. ``exact_rss``: glibc keeps freed heap memory, so a process's peak RSS
    also counts memory that was free again; allocations above 64 KiB from mmap (returned on free) make
    it the peak of live tensors, at some cost in speed."""
    env = dict(os.environ)
    if exact_rss:
        env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    proc = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--mode", mode], capture_output=True, text=True,
                          env=env)  # fmt: skip
    if proc.returncode:
        sys.exit(f"{mode}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
