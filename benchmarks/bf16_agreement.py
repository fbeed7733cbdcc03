"""Does bf16 autocast change predictions? Top-1 agreement with fp32 on a validation set, and the speed-up.

    python benchmarks/bf16_agreement.py [--checkpoint CK --data DIR] [--threads 2] [--batch 64]

Without ``--checkpoint`` it first trains the default demo model (``swin train`` with no arguments:
swin-nano on the built-in shapes set, about 2 minutes on 2 cores) and uses its validation split.
Random weights would not do: their logits are near ties, so any rounding flips the top-1.
It prints fp32 and bf16 accuracy, the share of images whose top-1 class is the same under both,
and the images/s of each on the whole set.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import swincli
from swincli.checkpoint import Preprocessing, load_model
from swincli.datasets.build import build_data, eval_data
from swincli.datasets.transforms import Transformed, eval_transform


def predictions(model, loader, amp: bool) -> tuple[torch.Tensor, torch.Tensor, float]:
    preds, labels, seconds = [], [], 0.0
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=amp):
        for x, y in loader:
            start = time.perf_counter()
            preds.append(model(x).float().argmax(-1))
            seconds += time.perf_counter() - start
            labels.append(y)
    return torch.cat(preds), torch.cat(labels), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--data", help="class folders (DIR/val if present); default: the built-in shapes set")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint
    if checkpoint is None:
        run = Path(tempfile.mkdtemp(prefix="swin-bf16-")) / "run"
        subprocess.run([sys.executable, "-m", "swincli", "train", "--output", str(run), "--quiet"], check=True)
        checkpoint = str(run / "best.safetensors")
    model = load_model(checkpoint).eval()
    swincli.optimize_for_inference(model)
    prep = model.preprocessing or Preprocessing.for_config(model.config)
    if args.data:
        dataset, _ = eval_data(args.data, model.class_names)
    else:
        dataset = build_data(None, size=model.config.image_hw[0]).val
    transform = eval_transform(model.config.image_hw, prep.crop_pct, prep.mean, prep.std, prep.interpolation)
    loader = DataLoader(Transformed(dataset, transform), batch_size=args.batch)
    p32, labels, t32 = predictions(model, loader, amp=False)
    p16, _, t16 = predictions(model, loader, amp=True)
    n = len(labels)
    print(f"{checkpoint}: {n} validation images, {args.threads} threads, batch {args.batch}")
    print(f"fp32 top-1 {100 * (p32 == labels).float().mean():.2f}%   bf16 top-1 {100 * (p16 == labels).float().mean():.2f}%   "
          f"same top-1 as fp32: {100 * (p16 == p32).float().mean():.2f}% ({int((p16 != p32).sum())} of {n} differ)   "
          f"fp32 {n / t32:.0f} img/s, bf16 {n / t16:.0f} img/s")  # fmt: skip


if __name__ == "__main__":
    main()
