"""Forward throughput of swincli against timm, same weights, same input, interleaved in one process.

    python benchmarks/forward_vs_timm.py [--batch 8] [--threads 2] [--rounds 7] [--amp none|bf16]
                                         [--models swin-t swinv2-t] [--plain]

Prints images/s for both and the ratio (ours / timm; > 1 means we are faster). Ours runs as
``swin predict``/``eval``/``profile`` run it: after ``swincli.optimize_for_inference`` (the CPU fast
path: cache-blocked blocks and oneDNN-fused linears). ``--plain`` measures the model as
``swincli.create_model`` builds it instead (every module called on every forward, the V2 position
bias recomputed each time, as timm does), which is what training and hooked models run. Each round times
both models back to back, in alternating order, so machine noise hits both alike; the median round is
reported. With
``--amp bf16`` both run under the same ``torch.autocast("cpu", torch.bfloat16)``.

V2 initialises its post-norms to zero (every block starts as the identity), which would make the
logit check below vacuous, so the norms get random weights first; the compute is the same.
"""

from __future__ import annotations

import statistics

import common
import torch
from common import images_per_s, paired_rounds

import swincli
from swincli.convert.timm_layout import from_timm

TIMM_NAMES = {
    "swin-t": "swin_tiny_patch4_window7_224",
    "swin-s": "swin_small_patch4_window7_224",
    "swin-b": "swin_base_patch4_window7_224",
    "swinv2-t": "swinv2_tiny_window8_256",
    "swinv2-s": "swinv2_small_window8_256",
    "swinv2-b": "swinv2_base_window8_256",
}


def reference_model(name: str):
    import timm

    model = timm.create_model(TIMM_NAMES[name]).eval()
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "norm" in key and not p.any():
                p.normal_(1.0 if key.endswith("weight") else 0.0, 0.2)
    return model


def main() -> None:
    import timm

    p = common.parser(__doc__)
    p.add_argument("--plain", action="store_true", help="the model as built, without optimize_for_inference")
    args = p.parse_args()
    common.setup(args)
    amp = args.amp == "bf16"
    print(f"{common.cpu()}; torch {torch.__version__}, timm {timm.__version__}, batch {args.batch}, "
          f"{'bf16 autocast' if amp else 'fp32'}, CPU, swincli {'plain' if args.plain else 'optimized'}")  # fmt: skip
    for name in args.models:
        reference = reference_model(name)
        ours = swincli.create_model(name).eval()
        ours.load_state_dict(from_timm(reference.state_dict()))
        if not args.plain:
            swincli.optimize_for_inference(ours)  # what swin predict/eval/profile run
        x = torch.randn(args.batch, 3, *ours.config.image_hw)
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=amp):
            a, b = reference(x).float(), ours(x).float()
            diff = (a - b).abs().max().item() / a.abs().max().item()
            for model in (reference, ours):  # warm-up
                images_per_s(model, x, 1)
            rounds = paired_rounds(reference, ours, x, args.iters, args.rounds)
        ref = statistics.median(r for r, _ in rounds)
        own = statistics.median(o for _, o in rounds)
        ratios = [o / r for r, o in rounds]
        print(
            f"{name:9s} timm {ref:7.2f} img/s   swincli {own:7.2f} img/s   ratio {statistics.median(ratios):.3f} "
            f"(rounds {min(ratios):.3f}..{max(ratios):.3f})   max|logit diff|/max|logit| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
