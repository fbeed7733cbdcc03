"""``swin profile``: params, MACs, speed and memory; the paper's attention comparison; timm in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from swincli.cli import render
from swincli.cli.options import SizeOpt, WindowOpt, parse_amp, parse_device, parse_size, parse_window
from swincli.limits import BATCH, ITERS


def profile(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model name or alias (default swin-t).")] = None,
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", "-c", help="Profile this checkpoint's model.")] = None,
    size: SizeOpt = None,
    window: WindowOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", **BATCH.option("Images per batch."))] = 8,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "auto",
    gpu: Annotated[bool, typer.Option("--gpu", help="Same as --device cuda.")] = False,
    amp: Annotated[Optional[str], typer.Option("--amp", help="bf16, fp16 or none (default none).")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile(fullgraph=True) first.")] = False,
    mode: Annotated[str, typer.Option("--mode", help="inference, train or both.")] = "inference",
    warmup: Annotated[int, typer.Option("--warmup", **ITERS.option("Untimed iterations first."))] = 5,
    iters: Annotated[int, typer.Option("--iters", **ITERS.option("Timed iterations (0: only count params and MACs)."))] = 20,
    attention: Annotated[bool, typer.Option("--attention", help="The paper's Table 5: four attention schemes.")] = False,
    compare: Annotated[Optional[str], typer.Option("--compare", help="timm: same weights, same input, same run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="PNG: throughput vs batch size, or the attention bars.")] = None,
) -> None:
    """Measure a Swin model: parameters, MACs per stage, throughput, latency and peak memory."""
    from swincli.device import pick_device
    from swincli.errors import SwinUsageError
    from swincli.profiling.runner import profile as run

    if mode not in ("inference", "train", "both"):
        raise SwinUsageError(f"--mode must be inference, train or both, got {mode!r}")
    if compare not in (None, "timm"):
        raise SwinUsageError(f"--compare supports timm, got {compare!r}")
    device = pick_device("cuda" if gpu else parse_device(device))
    amp = parse_amp(amp)
    net = _model(model, checkpoint, size, window)
    report = run(net, batch_size, device, amp, compile, mode, warmup, iters, attention, compare)
    report["model"] = model or checkpoint or "swin-t"
    if plot:
        _plot(net, report, plot, device, amp, warmup, iters)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _render(report)


profile.examples = [
    "swin profile --model swin-t",
    "swin profile --model swinv2-t --compare timm --mode both",
    "swin profile --model swin-t --attention --plot table5.png",
    "swin profile --gpu --model swin-b -b 64 --amp bf16 --compile",
    "swin profile --model swin-b --size 384 --window 12 --iters 0 --json",
]


def _model(model, checkpoint, size, window):
    from swincli.inference import optimize_for_inference
    from swincli.loader import load

    name = model or (None if checkpoint else "swin-t")  # with a checkpoint, --model describes foreign weights
    net = load(checkpoint, img_size=parse_size(size), window_size=parse_window(window), model=name, pretrained=False)
    optimize_for_inference(net)
    return net


def _plot(net, report, path, device, amp, warmup, iters) -> None:
    from swincli.drawing.chart import chart
    from swincli.profiling.runner import profile as run

    if "attention" in report:
        rows = report["attention"]
        chart([r["scheme"] for r in rows], [r["throughput"] for r in rows], f"{report['model']}: attention schemes (end to end)",
              "images/s", path, bars=True)  # fmt: skip
        return
    batches, values, b = [], [], 1
    while b <= report["batch_size"]:
        batches.append(str(b))
        values.append(run(net, b, device, amp, False, "inference", warmup, iters)["throughput"])
        b *= 2
    chart(batches, values, f"{report['model']}: throughput against batch size ({report['device']})", "images/s", path, bars=False)


def _render(r: dict) -> None:
    console = render.console()
    console.print(
        f"[bold]{escape(str(r['model']))}[/bold]  {'x'.join(map(str, r['img_size']))} px, batch {r['batch_size']}, {r['dtype']}, "
        f"{r['device']}" + (", compiled" if r["compiled"] else ""), highlight=False,
    )  # fmt: skip
    console.print(f"[bold]{r['params'] / 1e6:.2f}M[/bold] params   [bold]{r['macs'] / 1e9:.2f} GMACs[/bold] per image "
                  f"(the papers' FLOPs)", highlight=False)  # fmt: skip
    stages = Table(title="Stages", title_justify="left")
    for col in ("stage", "map", "window", "shift", "GMACs"):
        stages.add_column(col, justify="right")
    for st in r["stages"]:
        fmt = lambda p: str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"  # noqa: E731
        stages.add_row(str(st["stage"]), fmt(st["resolution"]), fmt(st["window"]), fmt(st["shift"]), f"{st['macs'] / 1e9:.2f}")
    console.print(stages)
    if "throughput" not in r:
        return
    speed = Table(title=f"Speed ({r['warmup']} warm-up + {r['iters']} timed iterations)", title_justify="left")
    for col in ("", "images/s", "latency median ms", "latency p90 ms", "peak memory"):
        speed.add_column(col, justify="right" if col else "left")
    mem = lambda b: f"{b / 2**20:.0f} MiB"  # noqa: E731
    if "train" not in r or r.get("peak_memory_bytes") != r["train"]["peak_memory_bytes"]:
        speed.add_row("inference", f"{r['throughput']:.1f}", f"{r['latency_ms']['median']:.1f}", f"{r['latency_ms']['p90']:.1f}",
                      mem(r["peak_memory_bytes"]))  # fmt: skip
    for key, label in (("train", "train step"), ("train_grad_checkpointing", "train step, grad checkpointing")):
        if key in r:
            t = r[key]
            speed.add_row(label, f"{t['images_per_s']:.1f}", f"{t['latency_ms']['median']:.1f}", f"{t['latency_ms']['p90']:.1f}",
                          mem(t["peak_memory_bytes"]))  # fmt: skip
    console.print(speed)
    if "attention" in r:
        table = Table(title="Attention schemes (the paper's Table 5): ms per stage, end-to-end images/s", title_justify="left")
        table.add_column("scheme")
        for i in range(len(r["stages"])):
            table.add_column(f"stage {i + 1} ms", justify="right")
        table.add_column("images/s", justify="right")
        for row in r["attention"]:
            table.add_row(row["scheme"], *(f"{t:.2f}" for t in row["stage_ms"]), f"{row['throughput']:.1f}")
        console.print(table)
    if "compare" in r:
        c = r["compare"]
        console.print(f"timm: {c['timm_throughput']:.1f} images/s, swincli {c['throughput']:.1f} images/s: "
                      f"[bold]{c['ratio']:.2f}x[/bold] (logits agree to {c['max_rel_diff']:.1e} relative)", highlight=False)  # fmt: skip
