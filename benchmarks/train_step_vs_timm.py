"""Training-step throughput of swincli against timm: same model, weights, batch and optimizer, one process.

    python benchmarks/train_step_vs_timm.py [--models swin-nano swinv2-nano swin-t] [--batch 16] [--threads 2]

Each round runs a few forward+backward+AdamW steps of timm's model and then of ours (interleaved, so
machine noise hits both alike); the median round is reported as images/s and the ratio ours / timm
(> 1 means we are faster). fp32 on CPU; add --amp bf16 for autocast.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import swincli
from swincli.convert.timm_layout import from_timm

TIMM = {
    "swin-nano": ("swin_tiny_patch4_window7_224", dict(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))),
    "swinv2-nano": ("swinv2_tiny_window8_256", dict(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))),
    "swin-t": ("swin_tiny_patch4_window7_224", {}),
    "swinv2-t": ("swinv2_tiny_window8_256", {}),
}


def steps(model, optimizer, x, y, n: int, amp: torch.dtype | None) -> float:
    start = time.perf_counter()
    for _ in range(n):
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return n * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    import timm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["swin-nano", "swinv2-nano", "swin-t"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--amp", choices=["bf16", "none"], default="none")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    amp = torch.bfloat16 if args.amp == "bf16" else None
    print(f"torch {torch.__version__}, timm {timm.__version__}, {args.threads} threads, batch {args.batch}, "
          f"{'bf16 autocast' if amp else 'fp32'}, CPU, train step = forward + backward + AdamW")  # fmt: skip
    for name in args.models:
        timm_name, kw = TIMM[name]
        reference = timm.create_model(timm_name, drop_path_rate=0.0, num_classes=100, **kw).train()
        ours = swincli.create_model(name, drop_path_rate=0.0, num_classes=100).train()
        ours.load_state_dict(from_timm(reference.state_dict()))
        x = torch.randn(args.batch, 3, *ours.config.image_hw)
        y = torch.randint(0, 100, (args.batch,))
        opt_ref = torch.optim.AdamW(reference.parameters(), lr=1e-4)
        opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
        steps(reference, opt_ref, x, y, 1, amp)
        steps(ours, opt_ours, x, y, 1, amp)
        rounds = [(steps(reference, opt_ref, x, y, args.iters, amp), steps(ours, opt_ours, x, y, args.iters, amp))
                  for _ in range(args.rounds)]  # fmt: skip
        ref = statistics.median(r for r, _ in rounds)
        own = statistics.median(o for _, o in rounds)
        ratios = [o / r for r, o in rounds]
        print(f"{name:12s} timm {ref:7.2f} img/s   swincli {own:7.2f} img/s   ratio {own / ref:.3f} "
              f"(rounds {min(ratios):.3f}..{max(ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
