"""Fine-tuning across size and window: does ``swin finetune --size S --window W`` keep the accuracy?

Two proxies, built offline, each a base model trained from scratch at a small size and then moved to
a larger size and window (the mission's ``swin finetune --size 384 --window 24``, scaled to a CPU):

- ``digits``: scikit-learn's 1,797 digits as 64 px folders (benchmarks/digits_from_scratch.py); the base
  trains at 64 px / window 4 and moves to 96 px / window 6 (swin-nano and swinv2-nano);
- ``shapes``: the built-in shapes renderer drawn at 128 px, 10 classes x 100 training and 50 validation
  images; the base trains at 64 px / window 4 and moves to 128 px / window 8 (swin-nano).

For each base model (trained once with ``swin train``, auto recipe, and reused from ``--out``) the
script runs, beside each other: zero-shot at the new size (``swin eval --size --window``), the
default ``swin finetune`` (its full default epochs), ``swin finetune --epochs 3``, and a plain loop
for reference (AdamW at lr 1e-4, no augmentation, the checkpoint's own preprocessing, the same
transfer through ``swincli.load(ckpt, img_size=, window_size=)``). It prints one table and the CPU.

    python benchmarks/finetune_transfer.py --out runs/finetune_transfer [--jobs 2] [--only digits]
    python benchmarks/finetune_transfer.py --tag lr1e-4 --runs default,short -- --lr 1e-4   # a variant

Flags after ``--`` go to both ``swin finetune`` runs (calibration variants); ``--tag`` keeps their runs apart.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RUNS = ("zero", "default", "short", "plain")


@dataclass(frozen=True)
class Proxy:
    """One transfer: data, the base model's size and window, and the size and window it moves to."""

    name: str
    model: str
    data: str  # the folder under --out/data
    base: tuple[int, int]  # (size, window) the base trains at
    target: tuple[int, int]  # (size, window) it is fine-tuned at
    base_epochs: int

    @property
    def key(self) -> str:
        return f"{self.name}-{self.model}"


PROXIES = [
    Proxy("digits", "swin-nano", "digits", (64, 4), (96, 6), 50),
    Proxy("digits", "swinv2-nano", "digits", (64, 4), (96, 6), 50),
    Proxy("shapes", "swin-nano", "shapes", (64, 4), (128, 8), 50),
]


def swin(args: list[str], threads: int) -> subprocess.CompletedProcess:
    """One ``swin`` command on ``threads`` threads; its output is kept for the error line."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, "-m", "swincli", *args], capture_output=True, text=True, env=env, check=False)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def train_base(p: Proxy, data: Path, out: Path, threads: int) -> Path:
    """The base model, trained from scratch at its own size (auto recipe), or the one already in ``out``."""
    run = out / "base" / p.key
    if (run / "best.safetensors").exists() and len(metrics(run)) == p.base_epochs:
        return run
    size, window = p.base
    proc = swin(["train", "--data", str(data), "--model", p.model, "--size", str(size), "--window", str(window),
                 "--epochs", str(p.base_epochs), "-b", "64", "--output", str(run), "--force", "--quiet",
                 "--threads", str(threads), "--workers", "0"], threads)  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"base {p.key} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return run


def zero_shot(p: Proxy, data: Path, base: Path, threads: int) -> dict:
    size, window = p.target
    proc = swin(["eval", "-c", str(base / "best.safetensors"), "--data", str(data), "--size", str(size),
                 "--window", str(window), "--format", "json", "--workers", "0"], threads)  # fmt: skip
    if proc.returncode:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    return {"acc": json.loads(proc.stdout)["acc1"]}


def finetune(p: Proxy, data: Path, base: Path, run: Path, threads: int, epochs: int | None, extra: list[str]) -> dict:
    """``swin finetune`` as a user runs it: only the new size and window (and ``--epochs`` for the short run)."""
    size, window = p.target
    args = ["finetune", "-c", str(base / "best.safetensors"), "--data", str(data), "--size", str(size),
            "--window", str(window), "--output", str(run), "--force", "--quiet", "--threads", str(threads),
            "--workers", "0", *(["--epochs", str(epochs)] if epochs else []), *extra]  # fmt: skip
    t0 = time.perf_counter()
    proc = swin(args, threads)
    if proc.returncode:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    rows = metrics(run)
    return {"final": rows[-1]["val_acc1"], "best": max(r["val_acc1"] for r in rows),
            "curve": [r["val_acc1"] for r in rows], "wall_s": time.perf_counter() - t0}  # fmt: skip


def plain_loop(ckpt: str, data: str, size: int, window: int, epochs: int, seed: int = 0) -> list[float]:
    """The reference: AdamW at lr 1e-4 (torch's defaults otherwise), batch 64, no augmentation (the
    checkpoint's own eval preprocessing for training too), no drop path; top-1 after each epoch."""
    import torch
    from torch.utils.data import DataLoader

    import swincli
    from swincli.datasets.folder import ImageFolder
    from swincli.datasets.transforms import eval_transform

    torch.manual_seed(seed)
    model = swincli.load(ckpt, img_size=size, window_size=window)
    model.set_drop_path(0.0)
    prep = model.preprocessing
    tf = eval_transform((size, size), prep.crop_pct, prep.mean, prep.std)
    train = ImageFolder(Path(data) / "train", classes=model.class_names, transform=tf)
    val = ImageFolder(Path(data) / "val", classes=model.class_names, transform=tf)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(seed)
    accs = []
    for _ in range(epochs):
        model.train()
        for x, y in DataLoader(train, batch_size=64, shuffle=True, drop_last=True, generator=g):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        right = 0
        with torch.no_grad():
            for x, y in DataLoader(val, batch_size=128):
                right += (model(x).argmax(1) == y).sum().item()
        accs.append(100.0 * right / len(val))
    return accs


def plain(p: Proxy, data: Path, base: Path, threads: int) -> dict:
    """The plain loop in its own process (one thread, like the swin runs beside it)."""
    size, window = p.target
    code = (f"import json, torch; torch.set_num_threads({threads}); from finetune_transfer import plain_loop; "
            f"print(json.dumps(plain_loop({str(base / 'best.safetensors')!r}, {str(data)!r}, {size}, {window}, 3)))")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(Path(__file__).resolve().parent)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    curve = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"final": curve[-1], "curve": curve}


def reach(curve: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose validation top-1 reaches ``target``."""
    return next((i + 1 for i, acc in enumerate(curve) if acc >= target), None)


def fmt(value: float | None, suffix: str = "%") -> str:
    return "-" if value is None else f"{value:.1f}{suffix}"


def table(results: list[dict]) -> str:
    """One row per transfer, the columns of docs/training.md."""
    head = ("proxy", "model", "base", "zero-shot", "default final / best", "epochs to base-1", "3 epochs", "plain 3 ep.")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in results:
        d, s, z, pl = r.get("default", {}), r.get("short", {}), r.get("zero", {}), r.get("plain", {})
        to = reach(d["curve"], r["base_acc"] - 1) if "curve" in d else None
        ep = "-" if "curve" not in d else f"{to} of {len(d['curve'])}" if to else f"not in {len(d['curve'])}"
        lines.append(" | ".join((r["proxy"], r["model"], fmt(r["base_acc"]), fmt(z.get("acc")),
                                 f"{fmt(d.get('final'))} / {fmt(d.get('best'))}", ep, fmt(s.get("final")),
                                 fmt(pl.get("final")))))  # fmt: skip
    return "\n".join(f"| {line} |" for line in lines)


def cpu_model() -> str:
    from swincli.environment import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/finetune_transfer")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, each on --threads threads")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=None, help="only the transfers whose proxy-model key contains this")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"which of {','.join(RUNS)} to run")
    parser.add_argument("--tag", default="default", help="names the fine-tuning runs of a variant (flags after --)")
    parser.add_argument("extra", nargs="*", help="flags for both swin finetune runs")
    args = parser.parse_args()
    out, runs = Path(args.out), args.runs.split(",")
    proxies = [p for p in PROXIES if args.only is None or args.only in p.key]
    from default_recipe import build_digits, build_shapes

    shapes = lambda root: build_shapes(root, per_class=100, val=500, side=128)  # 50 per class for validation
    builders = {"digits": build_digits, "shapes": shapes}
    folders = {name: builders[name](out / "data" / name) for name in {p.data for p in proxies}}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        bases = list(pool.map(lambda p: train_base(p, folders[p.data], out, args.threads), proxies))
        tasks = []
        for p, base in zip(proxies, bases):
            data, ft = folders[p.data], out / args.tag / p.key
            jobs = {"zero": lambda p=p, b=base, d=data: zero_shot(p, d, b, args.threads),
                    "default": lambda p=p, b=base, d=data, f=ft: finetune(p, d, b, f / "default", args.threads, None, args.extra),
                    "short": lambda p=p, b=base, d=data, f=ft: finetune(p, d, b, f / "epochs3", args.threads, 3, args.extra),
                    "plain": lambda p=p, b=base, d=data: plain(p, d, b, args.threads)}  # fmt: skip
            tasks += [(p, name, pool.submit(jobs[name])) for name in runs]
        results = []
        for p, base in zip(proxies, bases):
            row = {"proxy": f"{p.name} {p.base[0]}->{p.target[0]} px, window {p.base[1]}->{p.target[1]}",
                   "model": p.model, "base_acc": max(r["val_acc1"] for r in metrics(base))}  # fmt: skip
            row.update({name: future.result() for q, name, future in tasks if q is p})
            results.append(row)
    (out / args.tag).mkdir(parents=True, exist_ok=True)
    (out / args.tag / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for r in results:
        for name in runs:
            if "error" in r.get(name, {}):
                print(f"{r['model']} {r['proxy']} {name}: failed: {r[name]['error']}")
    extra = f", swin finetune flags: {' '.join(args.extra)}" if args.extra else ""
    print(f"{cpu_model()}; {args.jobs} runs at a time, {args.threads} thread(s) each{extra}; "
          f"{(time.perf_counter() - t0) / 60:.0f} min")  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main()
