"""The fixed recipes: the papers' ImageNet training and fine-tuning settings, and the two-minute demo.

- ``official``: the Swin paper's ImageNet recipe (AdamW, lr 5e-4 x batch/512, wd 0.05, cosine with
  20 warm-up epochs, label smoothing 0.1, mixup 0.8, cutmix 1.0, RandAugment m9-mstd0.5, random
  erasing 0.25, grad clip 5, drop path per model size).
- ``finetune``: the official fine-tuning recipe (30 epochs, 5 warm-up, lr 2e-5 x batch/512, wd 1e-8,
  drop path 0.2).
- ``demo``: the built-in shapes dataset, sized to finish in about two minutes on a laptop CPU.
"""

from __future__ import annotations

from typing import Any


RECIPES: dict[str, dict[str, Any]] = {
    "official": dict(
        epochs=300, batch_size=128, lr=5e-4, min_lr=5e-6, warmup_lr=5e-7, warmup_epochs=20, weight_decay=0.05,
        smoothing=0.1, mixup=0.8, cutmix=1.0, aa="rand-m9-mstd0.5-inc1", reprob=0.25, clip_grad=5.0, crop_scale=0.08,
    ),
    "finetune": dict(
        epochs=30, batch_size=64, lr=2e-5, min_lr=2e-7, warmup_lr=2e-8, warmup_epochs=5, weight_decay=1e-8,
        drop_path=0.2, smoothing=0.1, mixup=0.8, cutmix=1.0, aa="rand-m9-mstd0.5-inc1", reprob=0.25, clip_grad=5.0,
        crop_scale=0.08,
    ),
    # the built-in shapes set: 48 px, window 3 (stage maps 12, 6, 3, 2); tuned to pass 95% in ~2 CPU minutes
    "demo": dict(
        model="swin-nano", size=48, window=3, epochs=8, batch_size=64, lr=1.6e-2, min_lr=0.0, warmup_lr=0.0,
        warmup_epochs=0.3, weight_decay=0.05, drop_path=0.0, smoothing=0.0, mixup=0.0, cutmix=0.0, aa="none",
        reprob=0.0, clip_grad=5.0, crop_scale=1.0, workers=0,  # in-process: the rendered images stay cached across epochs
    ),
}


