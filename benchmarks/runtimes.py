"""CPU inference in every runtime swincli deploys to, against timm and our own PyTorch paths, in one run.

    python benchmarks/runtimes.py [--models swin-t swinv2-t] [--threads 2] [--rounds 5] [--iters 3]
                                  [--skip compile onnx openvino pt2 executorch int8] [--quick]

For each model (random weights; V2's zero-initialised post-norms get random values, as in
forward_vs_timm.py, so the logits are not a vacuous check) it prints images/s at batch 8 and at batch
1 of: timm eager and ``torch.compile``; our model as built (plain) and after ``optimize_for_inference``
(the fast path), in fp32 and, where the CPU has native bf16, under ``torch.autocast`` bf16; and each
file ``swin export`` writes, run by its own runtime through ``swincli.export.runtime.load_exported``:
ONNX Runtime fp32 and int8, OpenVINO fp32, ``--half`` (the CPU plugin computes it in bf16 where the CPU
has it; the row says what it reports) and int8, AOTInductor (pt2) fp32 and ExecuTorch fp32. The int8
files are calibrated on 32 generated images written to a temporary folder; with random weights their
top-1 agreement measures ties more than the quantizer, so they are exported unchecked and their
logit difference is printed instead. Every row is timed in every round, the order rotated each round,
so the machine's drift hits them alike; medians of the rounds are printed with the ratio to the fast
path's fp32, and the targets at the end: OpenVINO int8 at least 2x the fast path's fp32, and the fast
path at least 0.95x OpenVINO at fp32 and at bf16.

``--quick`` measures a one-stage model of swin-nano's width at 32 px in 2 rounds and, unless ``--skip``
is given, leaves out the rows with a fixed build cost of a minute or more (timm + torch.compile, pt2's
C++ compile, ExecuTorch's lowering): a try of the script in about a minute, whose numbers say nothing
about swin-t. ``--quick --skip`` (nothing after it) keeps every row. Exporting swin-t takes minutes for
pt2 and ExecuTorch.
"""

from __future__ import annotations

import importlib.metadata
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import common
import torch

import swincli
from swincli.environment import cpu_name

QUICK = {"img_size": 32, "window_size": 2, "embed_dim": 32, "depths": (2,), "num_heads": (2,), "num_classes": 10}
PACKAGES = ("timm", "onnxruntime", "openvino", "nncf", "executorch")
CALIBRATION = 32


@dataclass
class Row:
    label: str
    precision: str
    run: Callable[[torch.Tensor], torch.Tensor] | None = None
    dtype: torch.dtype | None = None  # autocast
    diff: float | None = None  # max |logit - plain fp32| / max |plain fp32|
    note: str = ""
    error: str | None = None
    speed: dict[int, list[float]] = field(default_factory=dict)  # batch -> images/s per round


def has_bf16() -> bool:
    return bool(torch.cpu._is_avx512_bf16_supported()) or bool(torch.cpu._is_amx_tile_supported())


def build(name: str):
    """Our model (random weights, non-zero norms) and timm's with the same weights."""
    from swincli.convert import check
    from swincli.convert.timm_layout import to_timm
    from swincli.models.config import SwinConfig
    from swincli.models.swin import SwinTransformer

    torch.manual_seed(0)
    ours = SwinTransformer(SwinConfig(**QUICK)) if name == "quick" else swincli.create_model(name)
    with torch.no_grad():
        for key, p in ours.named_parameters():
            if "norm" in key and not p.any():
                p.normal_(1.0 if key.endswith("weight") else 0.0, 0.2)
    ours.eval()
    timm = check.reference_model("timm", ours.config, to_timm(ours.state_dict())).eval()
    return ours, timm


def calibration_folder(folder: Path, size: tuple[int, int]) -> Path:
    """``CALIBRATION`` generated PNGs (gradients, a blob, noise) at the model's size."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    for i in range(CALIBRATION):
        base = rng.uniform(0, 255, 3) * (1 - xx[..., None]) + rng.uniform(0, 255, 3) * yy[..., None]
        cy, cx, r = rng.uniform(0.2, 0.8, 3)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < (r / 3) ** 2)[..., None] * rng.uniform(-120, 120, 3)
        pixels = np.clip(base + blob + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return folder


def torch_rows(ours, timm, bf16: bool, compile_timm: bool) -> list[Row]:
    import copy

    fast = copy.deepcopy(ours)
    swincli.optimize_for_inference(fast)
    rows = [Row("timm eager", "fp32", timm)]
    if compile_timm:
        rows.append(Row("timm torch.compile", "fp32", torch.compile(timm)))
    rows += [Row("swincli plain", "fp32", ours), Row("swincli fast path", "fp32", fast)]
    if bf16:
        rows.append(Row("swincli fast path", "bf16", fast, torch.bfloat16, note="autocast"))
    return rows


SKIPPABLE = ("compile", "onnx", "openvino", "pt2", "executorch", "int8")
QUICK_SKIP = ["compile", "pt2", "executorch"]
EXPORTS = (  # label, format, precision flag, checked by export_model
    ("onnx", "onnx", "fp32", True), ("onnx", "onnx", "int8", False), ("openvino", "openvino", "fp32", True),
    ("openvino", "openvino", "half", False), ("openvino", "openvino", "int8", False), ("pt2", "pt2", "fp32", True),
    ("executorch", "executorch", "fp32", True),
)  # fmt: skip


def export_row(ours, folder: Path, data: Path, label: str, fmt_name: str, flag: str, check: bool, threads: int) -> Row:
    """``ours`` exported by ``swin export``'s own code and loaded by the format's runtime; failures become the row's."""
    from swincli.export.exporter import export_model
    from swincli.export.formats import FORMATS
    from swincli.export.runtime import load_exported

    fmt = FORMATS[fmt_name]
    row = Row(f"{label} ({fmt.runtime})", "fp16" if flag == "half" else flag)
    if fmt.missing("write") or fmt.missing("run"):
        row.error = f"not installed: {', '.join(fmt.missing('write') + fmt.missing('run'))}"
        return row
    out = folder / f"{fmt_name}-{flag}{fmt.suffix}"
    start = time.perf_counter()
    try:
        report = export_model(ours, out, fmt, half=flag == "half", int8=flag == "int8", data=data if flag == "int8" else None,
                              check=check, source="benchmark")  # fmt: skip
        model = load_exported(out, fmt_name, "cpu", threads)
    except Exception as exc:  # noqa: BLE001 -- one format failing is that row's result
        row.error = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return row
    finally:
        ours.float()
    row.run = model
    compiled = getattr(model.runner, "compiled", None)
    if compiled is not None and flag == "half":
        kind = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        row.precision = {"f32": "fp32", "f16": "fp16"}.get(kind, kind)
        row.note = "--half file"
    row.note = ", ".join(filter(None, [row.note, f"{report.bytes / 1e6:.1f} MB, export {time.perf_counter() - start:.0f} s"]))
    return row


def forward(row: Row, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=row.dtype is not None):
        return row.run(x)


def measure(rows: list[Row], xs: dict[int, torch.Tensor], iters: dict[int, int], rounds: int) -> None:
    """Warm-up, then ``rounds`` rounds timing every row at every batch, the order rotated each round."""
    live = [r for r in rows if r.error is None]
    for row in live:
        try:
            for x in xs.values():
                forward(row, x)
                forward(row, x)
        except Exception as exc:  # noqa: BLE001
            row.error = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    live = [r for r in live if r.error is None]
    for k in range(rounds):
        for row in live[k % len(live):] + live[: k % len(live)]:
            for b, x in xs.items():
                start = time.perf_counter()
                for _ in range(iters[b]):
                    forward(row, x)
                row.speed.setdefault(b, []).append(iters[b] * b / (time.perf_counter() - start))


def diffs(rows: list[Row], ours, images: torch.Tensor) -> None:
    with torch.inference_mode():
        want = ours(images).float()
    for row in rows:
        if row.error is None:
            got = forward(row, images).float()
            row.diff = ((got - want).abs().max() / want.abs().max()).item()


def median(row: Row, b: int) -> float | None:
    return statistics.median(row.speed[b]) if row.error is None and row.speed.get(b) else None


def report(name: str, rows: list[Row], batches: tuple[int, ...]) -> None:
    base = next(r for r in rows if r.label == "swincli fast path" and r.precision == "fp32")
    head = f"{'':34s} {'prec':5s}" + "".join(f" {'b' + str(b) + ' img/s':>11s} {'x fast':>7s}" for b in batches)
    print(f"\n{name}\n{head}   {'diff':>7s}  notes")
    for row in rows:
        line = f"{row.label:34s} {row.precision:5s}"
        if row.error is not None:
            print(f"{line}   failed: {row.error}")
            continue
        for b in batches:
            v, ref = median(row, b), median(base, b)
            line += f" {v:11.2f} {v / ref:6.2f}x"
        print(f"{line}   {row.diff:7.1e}  {row.note}")


def targets(rows: list[Row], batches: tuple[int, ...]) -> list[str]:
    def find(label: str, precision: str) -> Row | None:
        return next((r for r in rows if r.label.startswith(label) and r.precision == precision and r.error is None), None)

    fast, fast16 = find("swincli fast path", "fp32"), find("swincli fast path", "bf16")
    ov, ov16, ov8 = find("openvino", "fp32"), find("openvino", "bf16"), find("openvino", "int8")
    checks = [("OpenVINO int8 >= 2x fast path fp32", ov8, fast, 2.0), ("fast path fp32 >= 0.95x OpenVINO fp32", fast, ov, 0.95),
              ("fast path bf16 >= 0.95x OpenVINO bf16", fast16, ov16, 0.95)]  # fmt: skip
    out = []
    for text, a, b, need in checks:
        for batch in batches:
            if a is None or b is None:
                out.append(f"  {text}, batch {batch}: not measured")
                continue
            ratio = median(a, batch) / median(b, batch)
            out.append(f"  {text}, batch {batch}: {ratio:.2f}x  {'met' if ratio >= need else 'NOT met'}")
    return out


def versions() -> str:
    found = []
    for pkg in PACKAGES:
        try:
            found.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{pkg} not installed")
    return f"torch {torch.__version__}, " + ", ".join(found)


def run_model(name: str, args, bf16: bool) -> list[str]:
    ours, timm = build(name)
    batches = (args.batch, 1)
    gen = torch.Generator().manual_seed(0)
    xs = {b: torch.randn(b, 3, *ours.config.image_hw, generator=gen) for b in batches}
    iters = {args.batch: args.iters, 1: args.iters * 4}
    rows = torch_rows(ours, timm, bf16, "compile" not in args.skip)
    with tempfile.TemporaryDirectory(prefix="swin-bench-runtimes-") as tmp:
        (Path(tmp) / "calibration").mkdir()
        data = calibration_folder(Path(tmp) / "calibration", ours.config.image_hw)
        for label, fmt, flag, check in EXPORTS:
            if fmt in args.skip or flag in args.skip:
                continue
            print(f"  exporting {label} {flag} ...", file=sys.stderr, flush=True)
            rows.append(export_row(ours, Path(tmp), data, label, fmt, flag, check, args.threads))
        print("  timing ...", file=sys.stderr, flush=True)
        diffs(rows, ours, xs[args.batch])
        measure(rows, xs, iters, args.rounds)
        size = "x".join(map(str, ours.config.image_hw))
        report(f"{name} ({size} px), random weights, {args.rounds} rounds", rows, batches)
        return [f"{name}:", *targets(rows, batches)]


def main() -> None:
    p = common.parser(__doc__, batch=8)
    p.set_defaults(rounds=5)
    p.add_argument("--quick", action="store_true", help="a one-stage nano-width model at 32 px, 2 rounds: to try the script")
    p.add_argument("--skip", nargs="*", choices=SKIPPABLE, default=None, help="rows to leave out")
    args = p.parse_args()
    if args.quick:
        args.models, args.rounds = ["quick"], min(args.rounds, 2)
    args.skip = (QUICK_SKIP if args.quick else []) if args.skip is None else args.skip
    common.setup(args)
    bf16 = has_bf16()
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, bf16 {'yes' if bf16 else 'no'}; {versions()}")
    print(f"batch {args.batch} and 1; images/s, median of the rounds; x fast: over swincli fast path fp32 in the same run")
    verdicts = []
    for name in args.models:
        verdicts += run_model(name, args, bf16)
    print("\ntargets")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
