"""``swin export``: weights to ONNX, OpenVINO, AOTInductor (pt2), TensorRT or ExecuTorch, verified as written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from swincli import api
from swincli.cli import render
from swincli.cli.options import (
    BatchOpt, DeviceOpt, ForceOpt, FormatOpt, JsonAlias, ModelOpt, OutputFileOpt, SizeOpt, WindowOpt, pick_format,
)  # fmt: skip

FORMATS = "onnx, openvino, pt2, tensorrt or executorch"


def export(
    source: Annotated[Optional[str], typer.Argument(help="Weights in any layout swin reads (or --model NAME for published ones).")] = None,
    to: Annotated[Optional[str], typer.Option("--to", "-t", help=f"Format: {FORMATS} (also ov, engine, trt, torch-export, pte).")] = None,
    model: ModelOpt = None,
    output: OutputFileOpt = None,
    batch_size: BatchOpt = None,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="Any batch size (the default where the format has one).")] = False,
    size: SizeOpt = None,
    window: WindowOpt = None,
    half: Annotated[bool, typer.Option("--half", help="fp16 weights (checked within 1e-2 of fp32).")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="INT8, calibrated on --data (onnx, openvino); top-1 must agree with fp32 on 98% of images.")] = False,
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help="Your images (a folder): calibrate --int8 and check the file on them (default: generated images).")] = None,
    device: DeviceOpt = None,
    force: ForceOpt = False,
    offline: Annotated[bool, typer.Option("--offline", help="Never download: use cached weights only.")] = False,
    check: Annotated[bool, typer.Option("--check", help="List the formats this machine can write and run, and stop.")] = False,
    fmt: FormatOpt = None,
    as_json: JsonAlias = False,
) -> None:
    """Export weights to a deployment format; its own runtime checks the file against PyTorch before it is kept."""
    fmt = pick_format(fmt, as_json, ("table", "json"))
    if check:
        return _formats(api.export_formats(), fmt)
    if to is None:
        raise api.SwinUsageError("export needs --to FORMAT", hint=f"choose {FORMATS}; `swin export --check` lists them")
    console = render.console(stderr=True)
    with render.Stages("exporting") as stages:
        report = api.export(source, to, model=model, output=output, batch=batch_size, dynamic_batch=dynamic_batch,
                            size=size, window=window, half=half, int8=int8, data=data, device=device, force=force,
                            offline=offline, on_stage=stages.show)  # fmt: skip
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    for line in report["notes"]:
        console.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    if report["resize"]:
        console.print(render.resize_table(report["resize"]))
    render.console().print(summary(report), highlight=False, soft_wrap=True)


export.examples = [
    "swin export runs/train/exp/best.safetensors --to onnx",
    "swin export --model swinv2-t --to openvino -o swinv2-t.xml",
    "swin export best.safetensors --to openvino --int8 --data photos/",
    "swin export best.safetensors --to pt2 --size 384 --window 24",
    "swin export --check",
]


def summary(report: dict) -> str:
    """One line: path, size on disk, runtime, precision, batch, and what the check measured."""
    v = report["verification"]
    batch = f"batch {report['batch']}" if report["batch"] else "dynamic batch"
    head = (f"Saved [bold]{escape(report['output'])}[/bold] ({_megabytes(report['bytes'])}, {report['runtime']}, "
            f"{report['precision']}, {batch}, {'x'.join(map(str, report['input_size']))} px)")  # fmt: skip
    if v is None:
        return head + ": not checked"
    where = f"{v['images']} {'generated' if v['source'] == 'generated' else 'of your'} images"
    if v["tolerance"] is None:
        return f"{head}: top-1 agrees with fp32 on {v['top1_agreement']:.1%} of {where}"
    return (f"{head}: logits within {v['max_rel_diff']:.1e} of PyTorch's (relative; allowed {v['tolerance']:.0e}) "
            f"on {where}, batches {', '.join(map(str, v['batches']))}")  # fmt: skip


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def _formats(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="swin export: what this machine can do", title_justify="left")
    for name in ("format", "file", "runtime", "write", "run", "devices", "fp16", "int8", "install"):
        table.add_column(name)
    for r in rows:
        table.add_row(r["format"], f"*{r['suffix']}", r["runtime"], _can(r["write"]), _can(r["run"]), ", ".join(r["devices"]) or "-",
                      "yes" if r["half"] else "-", "yes" if r["int8"] else "-", escape(f'pip install "swincli[{r["extra"]}]"'))  # fmt: skip
    render.console().print(table)


def _can(value) -> str:
    return "[green]yes[/green]" if value is True else f"[red]no[/red]: needs {escape(', '.join(value))}"

