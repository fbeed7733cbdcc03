"""``swin eval``: accuracy of a checkpoint (or published weights) on labelled images."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from swincli import api
from swincli.cli import render
from swincli.cli.options import (
    AmpOpt, BatchOpt, CheckpointOpt, DeviceOpt, ForceOpt, FormatOpt, JsonAlias, ModelOpt, RuntimeOpt, PlotOpt, SizeOpt, WindowOpt,
    WorkersOpt, amp_value, pick_format,
)  # fmt: skip


def eval(  # noqa: A001 - the command is called eval
    checkpoint: CheckpointOpt = None,
    runtime: RuntimeOpt = None,
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="DIR (uses DIR/val if present), a torchvision name, hf:NAME or wds:SHARDS.")] = None,
    model: ModelOpt = None,
    size: SizeOpt = None,
    window: WindowOpt = None,
    batch_size: BatchOpt = 64,
    workers: WorkersOpt = None,
    device: DeviceOpt = None,
    amp: AmpOpt = None,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also show accuracy per class.")] = False,
    remap: Annotated[bool, typer.Option("--remap", help="Score only the classes the data and the checkpoint share "
                                                       "(matched by name); default: refuse any difference.")] = False,
    fmt: FormatOpt = None,
    as_json: JsonAlias = False,
    plot: PlotOpt = None,
    force: ForceOpt = False,
) -> None:
    """Top-1/top-5 accuracy and loss of weights, with the preprocessing they were trained with."""
    fmt = pick_format(fmt, as_json)
    metrics = api.evaluate(checkpoint, data, model=model, size=size, window=window, batch_size=batch_size,
                           workers=workers, device=device, amp=amp_value(amp), per_class=per_class or fmt == "csv",
                           remap=remap, plot=plot, force=force, runtime=runtime)  # fmt: skip
    notes = render.console(stderr=True)
    for line in metrics["notes"]:
        notes.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    for line in metrics["warnings"]:  # images that passed the start-up check and failed to decode: not scored
        notes.print(f"[bold yellow]warning:[/bold yellow] {escape(line)}", highlight=False, soft_wrap=True)
    if plot is not None:
        notes.print(f"confusion matrix written to {escape(str(plot))}", highlight=False, soft_wrap=True)
    if fmt == "json":
        typer.echo(json.dumps({k: v for k, v in metrics.items() if k not in ("notes", "warnings", "unreadable", "input_size")}))
        return
    if fmt == "csv":
        _csv(metrics)
        return
    _render(metrics, per_class or plot is not None)


def _csv(metrics: dict) -> None:
    """One row per class, then the totals as the row ``(all)``."""
    writer = csv.writer(sys.stdout)
    writer.writerow(["class", "index", "images", "acc1", "mistaken_for"])
    for row in metrics["per_class"]:
        acc = "" if row["acc1"] is None else f"{row['acc1']:.4f}"
        writer.writerow([row["class"], row["index"], row["images"], acc, row["mistaken_for"] or ""])
    writer.writerow(["(all)", "", metrics["images"], f"{metrics['acc1']:.4f}", ""])


def _render(metrics: dict, per_class: bool) -> None:
    console = render.console()
    console.print(
        f"[bold]acc1 {metrics['acc1']:.2f}%[/bold]  acc5 {metrics['acc5']:.2f}%  loss {metrics['loss']:.4f}  "
        f"on {metrics['images']:,} images at {'x'.join(map(str, metrics['input_size']))} px",
        highlight=False,
    )
    if per_class:
        table = Table(title="Per class", title_justify="left")
        for col in ("class", "images", "acc1 %", "mistaken for"):
            table.add_column(col, justify="right" if col in ("images", "acc1 %") else "left")
        for row in metrics["per_class"]:
            acc = "-" if row["acc1"] is None else f"{row['acc1']:.2f}"
            table.add_row(escape(str(row["class"])), str(row["images"]), acc, escape(row["mistaken_for"] or "-"))
        console.print(table)


eval.examples = [
    "swin eval --checkpoint runs/train/exp/best.safetensors --data ~/datasets/imagenette",
    "swin eval -c swinv2-b.safetensors -d DIR --size 384 --window 24 --format json",
    "swin eval -c best.safetensors -d DIR --format csv",
    "swin eval -c best.safetensors -d DIR --per-class",
    "swin eval -c best.safetensors -d DIR --remap",
    "swin eval -c best.safetensors -d DIR --plot confusion.png",
]
