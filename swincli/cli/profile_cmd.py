"""``swin profile``: params, MACs, speed and memory; the paper's attention comparison; timm in the same run."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from swincli import api
from swincli.cli import render
from swincli.cli.options import (
    AmpOpt, AttnChunkOpt, AttnChunkStagesOpt, BatchOpt, CheckpointOpt, DeviceOpt, ForceOpt, FormatOpt, JsonAlias,
    ModelOpt, PlotOpt, SizeOpt, WindowOpt, amp_value, domain, pick_format,
)  # fmt: skip


def profile(
    model: ModelOpt = None,
    checkpoint: CheckpointOpt = None,
    size: SizeOpt = None,
    window: WindowOpt = None,
    batch_size: BatchOpt = 8,
    device: DeviceOpt = None,
    gpu: Annotated[bool, typer.Option("--gpu", hidden=True, help="Same as --device cuda.")] = False,
    amp: AmpOpt = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile(fullgraph=True) first.")] = False,
    mode: Annotated[str, typer.Option("--mode", help="inference, train or both.")] = "inference",
    warmup: Annotated[int, typer.Option("--warmup", **domain(api.limits.ITERS, "Untimed iterations first."))] = 5,
    iters: Annotated[int, typer.Option("--iters", **domain(api.limits.ITERS, "Timed iterations (0: only count params and MACs)."))] = 20,
    attention: Annotated[bool, typer.Option("--attention", help="The paper's Table 5: four attention schemes.")] = False,
    compare: Annotated[Optional[str], typer.Option("--compare", help="timm: same weights, same input, same run.")] = None,
    memory: Annotated[bool, typer.Option("--memory", help="The V2 paper's memory tricks side by side: peak memory and step time of plain, checkpointing, sequential attention and both (--mode train).")] = False,
    attn_chunk: AttnChunkOpt = None,
    attn_chunk_stages: AttnChunkStagesOpt = None,
    runtimes: Annotated[Optional[str], typer.Option("--runtimes", help="Deployment formats side by side (onnx,openvino,pt2,executorch,tensorrt; 'all' or '': every one installed that runs on the device): each exported to a temporary folder, checked against PyTorch, and measured beside eager and the fast path in one table: images/s at -b, latency at batch 1, peak memory, file size and logit difference. --amp bf16 adds bf16 rows.")] = None,
    fmt: FormatOpt = None,
    as_json: JsonAlias = False,
    plot: PlotOpt = None,
    force: ForceOpt = False,
) -> None:
    """Measure a Swin model: parameters, MACs per stage, throughput, latency and peak memory."""
    fmt = pick_format(fmt, as_json, ("table", "json"))
    if gpu and device not in (None, "cuda"):
        raise api.SwinUsageError(f"--gpu contradicts --device {device}", hint="--gpu is --device cuda; give one")
    with render.Stages("profiling", runtimes is not None) as stages:
        report = api.profile(model, checkpoint, size=size, window=window, batch_size=batch_size,
                             device="cuda" if gpu else device, amp=amp_value(amp), compile=compile, mode=mode,
                             warmup=warmup, iters=iters, attention=attention, compare=compare, plot=plot, force=force,
                             memory=memory, attn_chunk=attn_chunk, attn_chunk_stages=attn_chunk_stages,
                             runtimes=runtimes, on_stage=stages.show)  # fmt: skip
    if report.get("rank"):  # under torchrun: rank 0 prints for all (the memory table gathers every rank's peak)
        return
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    note = render.console(stderr=True)
    for line in report["notes"]:
        note.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False)
    _render(report)


profile.examples = [
    "swin profile --model swin-t",
    "swin profile --model swinv2-t --compare timm --mode both",
    "swin profile --model swin-t --attention --plot table5.png",
    "swin profile --device cuda --model swin-b -b 64 --amp bf16 --compile",
    "swin profile --model swin-b --size 384 --window 12 --iters 0 --format json",
    "swin profile --model swinv2-t --size 768 --window 24 -b 1 --mode train --memory --iters 1 --warmup 0",
    "swin profile --model swin-t --runtimes onnx,openvino",
    "swin profile --checkpoint best.safetensors --runtimes all --amp bf16 --format json",
]


def _render(r: dict) -> None:
    console = render.console()
    console.print(
        f"[bold]{escape(str(r['model']))}[/bold]  {'x'.join(map(str, r['img_size']))} px, batch {r['batch_size']}, {r['dtype']}, "
        f"{r['device']}" + (", compiled" if r["compiled"] else ""), highlight=False,
    )  # fmt: skip
    console.print(f"[bold]{r['params'] / 1e6:.2f}M[/bold] params   [bold]{api.giga(r['macs'], 2)} GMACs[/bold] per image "
                  f"(the papers' FLOPs)", highlight=False)  # fmt: skip
    stages = Table(title="Stages", title_justify="left")
    for col in ("stage", "map", "window", "shift", "GMACs"):
        stages.add_column(col, justify="right")
    for st in r["stages"]:
        pair = render.pair_text
        stages.add_row(str(st["stage"]), pair(st["resolution"]), pair(st["window"]), pair(st["shift"]), api.giga(st["macs"], 2))
    console.print(stages)
    for table in r.get("memory", []):
        _render_memory(console, table, r["peak_memory_measured_by"])
    if "runtimes" in r:
        _render_runtimes(console, r["runtimes"], r["runtimes_info"])
    if "throughput" not in r:
        return
    speed = Table(title=f"Speed ({r['warmup']} warm-up + {api.plural(r['iters'], 'timed iteration')})", title_justify="left")
    for col in ("", "images/s", "latency median ms", "latency p90 ms", "peak memory added (estimate)"):
        speed.add_column(col, justify="right" if col else "left")
    speed.caption = f"peak memory added: above the loaded weights, measured as {r['peak_memory_measured_by']}"
    mib = lambda b: "n/a" if b is None else f"{b / 2**20:.0f} MiB"  # noqa: E731
    mem = lambda row: f"{mib(row['peak_memory_bytes'])} ({mib(row.get('peak_memory_estimate_bytes'))})"  # noqa: E731
    if "train" not in r or r.get("peak_memory_bytes") != r["train"]["peak_memory_bytes"]:
        speed.add_row("inference", f"{r['throughput']:.1f}", f"{r['latency_ms']['median']:.1f}", f"{r['latency_ms']['p90']:.1f}",
                      mem(r))  # fmt: skip
    for key, label in (("train", "train step"), ("train_grad_checkpointing", "train step, grad checkpointing")):
        if key in r:
            t = r[key]
            speed.add_row(label, f"{t['images_per_s']:.1f}", f"{t['latency_ms']['median']:.1f}", f"{t['latency_ms']['p90']:.1f}",
                          mem(t))  # fmt: skip
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


def _render_memory(console, t: dict, measured_by: str) -> None:
    stages = "all stages" if t["attn_chunk_stages"] is None else "stages " + ",".join(map(str, t["attn_chunk_stages"]))
    step = "training step (forward, backward, AdamW)" if t["mode"] == "train" else "inference batch"
    table = Table(title=f"Memory tricks, one {step}; sequential attention: {api.plural(t['attn_chunk'], 'window')} at a "
                        f"time in {stages}", title_justify="left")  # fmt: skip
    for col in ("", "peak memory added", "x plain", "step ms", "x plain", "estimate"):
        table.add_column(col, justify="right" if col else "left")
    mib = lambda b: "n/a" if b is None else f"{b / 2**20:,.0f} MiB"  # noqa: E731
    ratio = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    for row in t["rows"]:
        table.add_row(row["trick"], mib(row["peak_memory_bytes"]), ratio(row["peak_ratio"]), f"{row['step_ms']:,.0f}",
                      ratio(row["time_ratio"]), mib(row["estimate_bytes"]))  # fmt: skip
    table.caption = f"peak memory added: above the loaded weights, measured as {measured_by}" + (
        ", with freed memory returned to the system at once" if "resident" in measured_by else "")  # fmt: skip
    console.print(table)


def _render_runtimes(console, rows: list[dict], info: dict) -> None:
    """The runtimes side by side (``--runtimes``); a row that failed names why below the table."""
    b = info["batch_size"]
    table = Table(title=f"Runtimes ({info['warmup']} warm-up + {api.plural(info['timed_batches'], 'timed batch', 'timed batches')} "
                        f"each, {api.plural(info['rounds'], 'interleaved round')})", title_justify="left")  # fmt: skip
    for col in ("runtime / format", "precision", f"img/s @{b}", "x eager", "latency b1 ms", "peak memory", "file",
                "diff vs eager"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("runtime / format", "precision") else "right")
    size = lambda n: "-" if n is None else f"{n / 2**20:,.1f} MiB"  # noqa: E731
    value = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    failed = []
    for row in rows:
        name = escape(row["name"] if row["format"] is None else f"{row['name']} ({row['runtime']})")
        if row["error"]:
            failed.append(f"{row['name']} ({row['precision']}): {row['error']}")
            table.add_row(name, row["precision"], "[red]failed[/red]", *["-"] * 5)
            continue
        table.add_row(name, row["precision"], value(row["images_per_s"], ".1f"), value(row["ratio_to_eager"], ".2f"),
                      value(row["latency_ms"], ".1f"), "n/a" if row["peak_memory_bytes"] is None else size(row["peak_memory_bytes"]),
                      size(row["file_bytes"]), value(row["max_rel_diff"], ".1e"))  # fmt: skip
    table.caption = (f"img/s: median batch of {b}; x eager: over eager fp32; peak memory: "
                     f"{info['memory_measured_by']}; diff: largest logit difference from eager fp32 over its largest "
                     f"logit, on 8 generated images")  # fmt: skip
    console.print(table)
    for line in failed:
        console.print(f"[red]failed:[/red] {escape(line)}", highlight=False, soft_wrap=True)

