"""What the shifted windows cost end to end: cyclic shift (ours) against no shifting at all.

    python benchmarks/shift_overhead.py [--models swin-t swinv2-t] [--batch 8] [--threads 2] [--rounds 7]
                                        [--amp none|bf16]

The paper (Table 5) measured 755 images/s with the cyclic shift against 770 without shifting on a
V100: about 2%. Both schemes here run the same code (``swin profile --attention``'s ``no-shift`` only
sets every block's shift to zero), interleaved round by round; the overhead is the median round's.
"""

from __future__ import annotations

import statistics

import common
import torch
from common import images_per_s

import swincli
from swincli.profiling.attention_schemes import use_scheme


def main() -> None:
    args = common.parser(__doc__).parse_args()
    common.setup(args)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.amp}, CPU")
    for name in args.models:
        model = swincli.create_model(name).eval()
        swincli.optimize_for_inference(model)
        x = torch.randn(args.batch, 3, *model.config.image_hw)
        rounds = []
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=args.amp == "bf16"):
            for _ in range(args.rounds + 1):
                cyclic = images_per_s(model, x, args.iters)
                with use_scheme(model, "no-shift"):
                    plain = images_per_s(model, x, args.iters)
                rounds.append((cyclic, plain))
        rounds = rounds[1:]  # the first round warms up
        costs = [p / c - 1 for c, p in rounds]
        print(
            f"{name:9s} cyclic shift {statistics.median(c for c, _ in rounds):7.2f} img/s   "
            f"no shift {statistics.median(p for _, p in rounds):7.2f} img/s   "
            f"overhead {100 * statistics.median(costs):+.1f}% (rounds {100 * min(costs):+.1f}..{100 * max(costs):+.1f}%)"
        )


if __name__ == "__main__":
    main()
