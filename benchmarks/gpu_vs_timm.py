"""GPU inference throughput against timm (eager and compiled) and the paper's V100 figures.

    python benchmarks/gpu_vs_timm.py [--models swin-t swin-s swin-b] [--batches 64 128] [--amp bf16]
                                     [--no-compile] [--device cuda]

For each model and batch it prints images/s of timm eager, timm ``torch.compile``, swincli eager and
swincli compiled (``fullgraph=True``), all with the same weights under the same autocast, timed with
``torch.cuda.synchronize()`` after warm-up, and the ratios against timm eager. The paper (V1, Table
1) measured 755 / 437 / 278 images/s for swin-t / s / b on a V100 at 224 px with its throughput
script (batch 64). ``--device cpu`` runs the same script on the CPU, to check it, not for figures.
Each line is printed as soon as it is measured (compiling takes most of the time), and the logits of
the two libraries are compared once per model under the same autocast.
"""

from __future__ import annotations

import statistics
import sys
import time

import common
import torch
from forward_vs_timm import reference_model

import swincli
from swincli.convert.timm_layout import from_timm

PAPER_V100 = {"swin-t": 755, "swin-s": 437, "swin-b": 278}


def throughput(model, x: torch.Tensor, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(iters):
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return x.shape[0] / statistics.median(times)


def main() -> None:
    parser = common.parser(__doc__, models=("swin-t", "swin-s", "swin-b"), batch=64)
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.set_defaults(amp="bf16", iters=20)
    args = parser.parse_args()
    common.setup(args)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        name = torch.cuda.get_device_name(device)
    else:
        name = "CPU"
    import timm

    print(f"{name}, torch {torch.__version__}, timm {timm.__version__}, {args.amp}, median of {args.iters} iterations "
          "after 5 warm-up", flush=True)  # fmt: skip
    for model_name in args.models:
        reference = reference_model(model_name).to(device)
        ours = swincli.create_model(model_name).eval().to(device)
        ours.load_state_dict(from_timm(reference.state_dict()))
        swincli.optimize_for_inference(ours)  # as swin predict/eval/profile run it (a CPU path: no effect here)
        x = torch.randn(8, 3, *ours.config.image_hw, device=device)
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=args.amp == "bf16"):
            a, b = reference(x).float(), ours(x).float()
        print(f"{model_name:8s} max|logit diff|/max|logit| {((a - b).abs().max() / a.abs().max()).item():.1e}", flush=True)
        runners = {"timm": reference, "swincli": ours}
        if not args.no_compile:
            runners["timm compiled"] = torch.compile(reference)
            runners["swincli compiled"] = torch.compile(ours, fullgraph=True)
        for batch in args.batches:
            x = torch.randn(batch, 3, *ours.config.image_hw, device=device)
            with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=args.amp == "bf16"):
                speed = {k: throughput(m, x, args.iters, warmup=5) for k, m in runners.items()}
            base = speed["timm"]
            cells = "   ".join(f"{k} {v:7.1f} ({v / base:.2f}x)" for k, v in speed.items())
            paper = PAPER_V100.get(model_name)
            print(f"{model_name:8s} batch {batch:4d}   {cells}" + (f"   paper V100 {paper}" if paper else ""), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
