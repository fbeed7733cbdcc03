"""A from-scratch run on a real (small) dataset available offline: the UCI handwritten digits that
scikit-learn bundles (1,797 8x8 greyscale images, 10 classes), upscaled to 64 px class folders.

    python -m pip install scikit-learn
    python benchmarks/digits_from_scratch.py [--out runs/digits] [--epochs 25] [-- extra swin train options]

It writes the image folder (train 80% / val 20%, stratified, seeded), runs ``swin train`` on it with
swin-nano at 64 px / window 4, batch 64 and no tuning flags (the ``auto`` recipe), and prints the
final metrics line. benchmarks/default_recipe.py runs the variations behind that recipe.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def build_folder(root: Path, seed: int = 0, side: int = 64) -> Path:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    for label in range(10):
        idx = np.flatnonzero(digits.target == label)
        rng.shuffle(idx)
        n_val = len(idx) // 5
        for split, part in (("val", idx[:n_val]), ("train", idx[n_val:])):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in part:
                img = Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).resize((side, side), Image.BICUBIC)
                img.convert("RGB").save(folder / f"{i}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/digits")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    data = build_folder(Path(args.out) / "data")
    run = Path(args.out) / "run"
    cmd = [sys.executable, "-m", "swincli", "train", "--data", str(data), "--model", "swin-nano", "--size", "64",
           "--window", "4", "--epochs", str(args.epochs), "-b", "64", "--output", str(run), "--quiet",
           *args.extra]  # fmt: skip
    subprocess.run(cmd, check=True)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r["val_acc1"] or 0)
    total = sum(r["epoch_time_s"] for r in rows)
    print(f"digits, swin-nano 64 px from scratch: best val acc1 {best['val_acc1']:.2f}% (epoch {best['epoch']}), "
          f"last {rows[-1]['val_acc1']:.2f}%, {total:.0f} s of training, {rows[-1]['images_per_s']:.0f} img/s")  # fmt: skip


if __name__ == "__main__":
    main()
