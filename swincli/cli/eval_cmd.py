"""``swin eval``: accuracy of a checkpoint on labelled images."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from swincli.cli import render
from swincli.cli.options import SizeOpt, WindowOpt, parse_amp, parse_device, parse_size, parse_window
from swincli.limits import BATCH, WORKERS


def eval(  # noqa: A001 - the command is called eval
    checkpoint: Annotated[str, typer.Option("--checkpoint", "-c", help="Weights (any layout swin convert reads).")],
    data: Annotated[str, typer.Option("--data", "-d", help="DIR (uses DIR/val if present) or a torchvision name.")],
    size: SizeOpt = None,
    window: WindowOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", **BATCH.option("Batch size."))] = 64,
    workers: Annotated[int, typer.Option("--workers", "-j", **WORKERS.option("Data loading processes."))] = 2,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu, cuda (default: cuda if available).")] = None,
    amp: Annotated[Optional[str], typer.Option("--amp", help="bf16, fp16 or none.")] = None,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also show accuracy per class.")] = False,
    remap: Annotated[bool, typer.Option("--remap", help="Score only the classes the data and the checkpoint share "
                                                       "(matched by name); default: refuse any difference.")] = False,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Top-1/top-5 accuracy and loss of a checkpoint, with the preprocessing it was trained with."""
    from swincli.engine.eval_run import run_eval
    from swincli.errors import SwinUsageError

    if output_format not in ("table", "json"):
        raise SwinUsageError(f"--format must be table or json, got {output_format!r}")
    metrics = run_eval(checkpoint, data, img_size=parse_size(size), window_size=parse_window(window),
                       batch_size=batch_size, workers=workers, device=parse_device(device), amp=parse_amp(amp), remap=remap)  # fmt: skip
    notes = render.console(stderr=True)
    for line in metrics["notes"]:
        notes.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    if metrics["unreadable"]:  # passed the start-up check, failed to decode: skipped, not scored
        listing = ", ".join(f"{path} ({why})" for path, why in metrics["unreadable"][:5])
        more = f" and {len(metrics['unreadable']) - 5} more" if len(metrics["unreadable"]) > 5 else ""
        notes.print(f"[bold yellow]warning:[/bold yellow] skipped {metrics['unreadable_images']} image(s) that failed "
                    f"to decode: {escape(listing)}{more}", highlight=False, soft_wrap=True)  # fmt: skip
    if output_format == "json":
        out = {k: metrics[k] for k in ("acc1", "acc5", "loss", "images", "unreadable_images")}
        if per_class:
            out["per_class"] = metrics["per_class"]
        typer.echo(json.dumps(out))
        return
    console = render.console()
    console.print(
        f"[bold]acc1 {metrics['acc1']:.2f}%[/bold]  acc5 {metrics['acc5']:.2f}%  loss {metrics['loss']:.4f}  "
        f"on {metrics['images']:,} images at {'x'.join(map(str, metrics['input_size']))} px",
        highlight=False,
    )
    if per_class:
        table = Table(title="Per class", title_justify="left")
        for col in ("class", "images", "acc1 %"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for row in metrics["per_class"]:
            acc = "-" if row["acc1"] is None else f"{row['acc1']:.2f}"
            table.add_row(escape(str(row["class"])), str(row["images"]), acc)
        console.print(table)


eval.examples = [
    "swin eval --checkpoint runs/train/exp/best.safetensors --data ~/datasets/imagenette",
    "swin eval -c swinv2-b.safetensors -d DIR --size 384 --window 24 --format json",
    "swin eval -c best.safetensors -d DIR --per-class",
    "swin eval -c best.safetensors -d DIR --remap",
]
