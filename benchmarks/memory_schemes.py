"""The V2 paper's memory tricks on this machine: peak memory and step time, each in a fresh process.

    python benchmarks/memory_schemes.py [--threads 2] [--quick | --big] [--device cpu|cuda] [--amp none|bf16]

For swinv2-t at batch 1, one training step (forward + backward) and one inference forward, plain, with
activation checkpointing (``--grad-checkpointing``), with sequential attention (``--attn-chunk``) and
with both, at 768 px / window 24 and 1024 px / window 32; then swinv2-b at 1536 px / window 32 with both.
Every row runs in fresh Python processes, so no row inherits another's memory. On a CPU the memory is
measured in a process run with ``MALLOC_MMAP_THRESHOLD_=65536`` (glibc hands freed tensors back at
once): the peak resident set of the whole process (``VmHWM``: Python, torch and the weights included)
and the peak the step adds above the built model (swincli's ``PeakMemory``, as ``swin profile``
reports it). The time is measured in another process with the usual allocator: under that setting
every large allocation is a fresh mapping whose page faults would be billed to the trick that
allocates most often (sequential attention, per chunk: 1.14x instead of 0.99x of checkpointing at
1024 px, measured). On a GPU both figures are ``torch.cuda.max_memory_allocated``, total and above the weights.

Sequential attention runs on every stage at 1024 px (``--attn-chunk-stages all``): the third stage's 4
windows have 12 heads, as much attention as the first stage's 64 windows of 3 heads. The ratios at the
end are the issue's targets: training with both tricks against checkpointing alone (peak at most 0.4x,
time at most 1.3x), inference with chunking against without (peak at most 0.5x). On a GPU:

    python benchmarks/memory_schemes.py --device cuda --amp bf16 --big
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROWS = [  # model, size, window, mode, trick, chunk, stages (1-based, or "all")
    *[("swinv2-t", 768, 24, "train", t, 4, "1,2") for t in ("plain", "checkpointing", "sequential", "both")],
    *[("swinv2-t", 1024, 32, "train", t, 2, "all") for t in ("checkpointing", "sequential", "both")],
    *[("swinv2-t", 1024, 32, "infer", t, 2, "all") for t in ("plain", "sequential")],
    ("swinv2-b", 1536, 32, "train", "both", 1, "all"),
]
BIG = [  # the GPU table (--big): swinv2-b at 1536 px, every trick; on an 80 GB card, what fits with which
    *[("swinv2-b", 1536, 32, "train", t, 4, "all") for t in ("plain", "checkpointing", "sequential", "both")],
]
QUICK = [  # the same rows at a quarter of the pixels: a minute, for trying the script
    *[("swinv2-t", 512, 32, "train", t, 2, "all") for t in ("checkpointing", "both")],
    *[("swinv2-t", 512, 32, "infer", t, 2, "all") for t in ("plain", "sequential")],
]


def child(args: argparse.Namespace) -> None:
    """One row, in this process: build, one step, print the figures as JSON."""
    import torch

    from swincli.memory import PeakMemory, _status_kib
    from swincli.models.registry import create_model
    from swincli.models.sequential_attention import parse_stages

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    model = create_model(args.model, img_size=args.size, window_size=args.window).to(dev)
    model.set_grad_checkpointing(args.trick in ("checkpointing", "both"))
    if args.trick in ("sequential", "both"):
        model.set_attention_chunk(args.chunk, parse_stages(args.stages, model.config.num_stages))
    x = torch.randn(1, 3, args.size, args.size, device=dev)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.amp == "bf16")
    meter = PeakMemory(dev)
    meter.begin()
    start = time.perf_counter()
    if args.mode == "train":
        with amp:
            loss = model.train()(x).float().mean()
        loss.backward()
    else:
        with torch.no_grad(), amp:
            model.eval()(x)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    meter.end()
    total = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else _status_kib("VmHWM") * 1024
    print(json.dumps({"total": total, "added": meter.added, "seconds": seconds}))


def run_row(row, args) -> dict:
    """The memory from a process with freed memory returned at once; on a CPU the time from one without."""
    model, size, window, mode, trick, chunk, stages = row
    cmd = [sys.executable, __file__, "--child", "--model", model, "--size", str(size), "--window", str(window),
           "--mode", mode, "--trick", trick, "--chunk", str(chunk), "--stages", stages, "--threads", str(args.threads),
           "--device", args.device, "--amp", args.amp]  # fmt: skip
    out = _child(cmd, dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536"))
    if "error" not in out and args.device == "cpu":
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
        timing = _child(cmd, env)
        out["seconds"] = timing.get("seconds", float("nan"))
    return out


def _child(cmd: list[str], env: dict) -> dict:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", choices=["none", "bf16"], default="none")
    p.add_argument("--quick", action="store_true", help="swinv2-t at 512 px: a minute, to try the script")
    p.add_argument("--big", action="store_true", help="swinv2-b at 1536 px, every trick (the GPU table)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "mode", "trick", "stages"):
        p.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("size", "window", "chunk"):
        p.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    header(args)
    results = {}
    for row in QUICK if args.quick else BIG if args.big else ROWS:
        res = results[row[:5]] = run_row(row, args)
        print_row(row, res)
    verdicts(results, 512 if args.quick else 1024)


def header(args) -> None:
    import torch

    from swincli.environment import cpu_name

    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"{cpu_name()}, {args.threads} threads"
    print(f"torch {torch.__version__}, {where}, batch 1, {'bf16 autocast' if args.amp == 'bf16' else 'fp32'}")
    print(f"{'model':9} {'size/window':>11} {'step':6} {'trick':28} {'peak total':>11} {'peak added':>11} {'time':>8}")


def print_row(row, res) -> None:
    model, size, window, mode, trick, chunk, stages = row
    label = trick if trick in ("plain", "checkpointing") else f"{trick} (chunk {chunk}, {stages})"
    if "error" in res:
        print(f"{model:9} {f'{size}/w{window}':>11} {mode:6} {label:28} failed: {res['error']}")
        return
    print(f"{model:9} {f'{size}/w{window}':>11} {mode:6} {label:28} {res['total'] / 2**30:8.2f} GiB "
          f"{res['added'] / 2**30:8.2f} GiB {res['seconds']:7.1f}s", flush=True)  # fmt: skip


def verdicts(results: dict, size: int) -> None:
    def get(mode, trick):
        return results.get(("swinv2-t", size, 32, mode, trick), {})

    ckpt, both = get("train", "checkpointing"), get("train", "both")
    plain_inf, seq_inf = get("infer", "plain"), get("infer", "sequential")
    print()
    for what, a, b, key, limit in (
        (f"train {size}/w32: both / checkpointing, peak total", both, ckpt, "total", 0.4),
        (f"train {size}/w32: both / checkpointing, peak added", both, ckpt, "added", 0.4),
        (f"train {size}/w32: both / checkpointing, step time", both, ckpt, "seconds", 1.3),
        (f"inference {size}/w32: chunked / plain, peak total", seq_inf, plain_inf, "total", 0.5),
        (f"inference {size}/w32: chunked / plain, peak added", seq_inf, plain_inf, "added", 0.5),
    ):
        if key in a and key in b:
            ratio = a[key] / b[key]
            print(f"{what:55} {ratio:5.2f}x  (target <= {limit}x: {'met' if ratio <= limit else 'NOT met'})")
    big = results.get(("swinv2-b", 1536, 32, "train", "both"))
    if big and "total" in big:
        print(f"{'swinv2-b 1536/w32 training step, both tricks, peak total':55} {big['total'] / 2**30:5.2f} GiB")


if __name__ == "__main__":
    main()
