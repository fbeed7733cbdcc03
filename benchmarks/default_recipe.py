"""The runs behind the ``auto`` recipe (docs/training.md, "How the default recipe was chosen").

Two image folders a new user might have, both built offline here:

- ``digits``: scikit-learn's 1,797 handwritten digits (8x8 greyscale) upscaled to 64 px class folders,
  80/20 stratified split: few images, small, from scratch.
- ``shapes10k``: the built-in shapes rendered as a folder, 10 classes x 1,000 images at 64 px, and
  2,000 validation images.

Each configuration is ``swin train`` with the issue's command line plus its own flags; runs go in
parallel (``--jobs``), each on one thread and one loader process. Prints one row per run: best and
last validation top-1, and what the run cost.

    python benchmarks/default_recipe.py --out runs/recipe [--device cuda] [--jobs 8] [--only digits]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DIGITS = "--model swin-nano --size 64 --window 4 --epochs 25 --batch-size 64 --mixup 0 --cutmix 0"
SHAPES = "--model swin-nano --size 64 --window 4 --epochs 15 --batch-size 64"

# (name, data, flags): the recipe's defaults, what the official recipe gives, and one change at a time
GRID = [
    ("digits official", "digits", f"{DIGITS} --recipe official"),
    ("digits auto", "digits", DIGITS),
    ("digits auto crop 0.08", "digits", f"{DIGITS} --crop-scale 0.08"),
    ("digits auto crop 0.6", "digits", f"{DIGITS} --crop-scale 0.6"),
    ("digits auto aa m9", "digits", f"{DIGITS} --aa rand-m9-mstd0.5-inc1"),
    ("digits auto aa none", "digits", f"{DIGITS} --aa none"),
    ("digits auto lr 1e-3", "digits", f"{DIGITS} --lr 1e-3"),
    ("digits auto lr 4e-3", "digits", f"{DIGITS} --lr 4e-3"),
    ("digits auto drop-path 0", "digits", f"{DIGITS} --drop-path 0"),
    ("digits auto reprob 0.25", "digits", f"{DIGITS} --reprob 0.25"),
    ("digits auto, no flags", "digits", "--model swin-nano --size 64 --window 4"),
    ("shapes10k official", "shapes10k", f"{SHAPES} --recipe official"),
    ("shapes10k auto", "shapes10k", SHAPES),
    ("shapes10k auto aa m9", "shapes10k", f"{SHAPES} --aa rand-m9-mstd0.5-inc1"),
    ("shapes10k auto + mixup/cutmix/erasing", "shapes10k", f"{SHAPES} --mixup 0.8 --cutmix 1.0 --reprob 0.25"),
]


def build_digits(root: Path) -> Path:
    from digits_from_scratch import build_folder

    return root if (root / "val").is_dir() else build_folder(root, side=64)


def build_shapes(root: Path, per_class: int = 1000, val: int = 2000, side: int = 64) -> Path:
    from swincli.datasets.shapes import ShapesDataset

    if (root / "val").is_dir():
        return root
    for split, n in (("train", per_class * 10), ("val", val)):
        ds = ShapesDataset(split, size=side, length=n, seed=0)
        for i in range(n):
            img, y = ds[i]
            folder = root / split / ds.classes[y]
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"{i}.png")
    return root


def run_one(name: str, data: Path, flags: str, out: Path, device: str) -> dict:
    run = out / "runs" / name.replace(" ", "_").replace("/", "-").replace(",", "")
    cmd = [sys.executable, "-m", "swincli", "train", "--data", str(data), *flags.split(), "--output", str(run), "--force",
           "--workers", "1", "--device", device, "--quiet"]  # fmt: skip
    if device == "cpu":
        cmd += ["--threads", "1"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode:
        return {"name": name, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:], "wall_s": wall}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max(r["val_acc1"] for r in rows)
    args = json.loads((run / "args.json").read_text())
    return {"name": name, "best": best, "last": rows[-1]["val_acc1"], "epochs": len(rows), "wall_s": wall,
            "lr": args["lr"], "flags": flags}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/recipe")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", default=None, help="run only the configurations whose name contains this")
    args = parser.parse_args()
    out = Path(args.out)
    grid = [g for g in GRID if args.only is None or args.only in g[0]]
    folders = {}
    if any(g[1] == "digits" for g in grid):
        folders["digits"] = build_digits(out / "data" / "digits")
    if any(g[1] == "shapes10k" for g in grid):
        folders["shapes10k"] = build_shapes(out / "data" / "shapes10k")
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda g: run_one(g[0], folders[g[1]], g[2], out, args.device), grid))
    print(f"{'run':40s} {'best':>7s} {'last':>7s} {'lr':>9s} {'wall':>6s}")
    for r in results:
        if "error" in r:
            print(f"{r['name']:40s} failed: {r['error']}")
        else:
            print(f"{r['name']:40s} {r['best']:6.2f}% {r['last']:6.2f}% {r['lr']:9.2e} {r['wall_s']:5.0f}s")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
