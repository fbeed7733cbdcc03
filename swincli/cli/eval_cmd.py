"""``swin eval``: accuracy of a checkpoint on labelled images."""

from __future__ import annotations

import json
from pathlib import Path
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
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the confusion matrix as a PNG (implies --per-class).")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing --plot file.")] = False,
) -> None:
    """Top-1/top-5 accuracy and loss of a checkpoint, with the preprocessing it was trained with."""
    from swincli.evaluation.accuracy import run_eval
    from swincli.errors import SwinUsageError
    from swincli.fileio import check_writable_target

    if output_format not in ("table", "json"):
        raise SwinUsageError(f"--format must be table or json, got {output_format!r}")
    if plot is not None:  # refused before the model loads, like every output
        check_writable_target(plot, force)
    per_class = per_class or plot is not None
    metrics = run_eval(checkpoint, data, img_size=parse_size(size), window_size=parse_window(window),
                       batch_size=batch_size, workers=workers, device=parse_device(device), amp=parse_amp(amp), remap=remap,
                       confusion=per_class)  # fmt: skip
    notes = render.console(stderr=True)
    for line in metrics["notes"]:
        notes.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    if metrics["unreadable"]:  # passed the start-up check, failed to decode: skipped, not scored
        listing = ", ".join(f"{path} ({why})" for path, why in metrics["unreadable"][:5])
        more = f" and {len(metrics['unreadable']) - 5} more" if len(metrics["unreadable"]) > 5 else ""
        notes.print(f"[bold yellow]warning:[/bold yellow] skipped {metrics['unreadable_images']} image(s) that failed "
                    f"to decode: {escape(listing)}{more}", highlight=False, soft_wrap=True)  # fmt: skip
    mistakes = {}
    if per_class:
        from swincli.drawing.confusion_plot import draw_confusion
        from swincli.evaluation.confusion import summarise, top_mistakes

        matrix, names = metrics["confusion"], metrics["class_names"]
        mistakes = top_mistakes(matrix, names)
        if plot is not None:
            said = draw_confusion(matrix, names, plot, title=f"{Path(checkpoint).name} on {data}")
            if said:
                notes.print(f"[yellow]note:[/yellow] {escape(said)}", highlight=False, soft_wrap=True)
            notes.print(f"confusion matrix written to {escape(str(plot))}", highlight=False, soft_wrap=True)
    if output_format == "json":
        out = {k: metrics[k] for k in ("acc1", "acc5", "loss", "images", "unreadable_images")}
        if per_class:
            out["per_class"] = metrics["per_class"]
            out["confusion"] = summarise(matrix, names)
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
        for col in ("class", "images", "acc1 %", "mistaken for"):
            table.add_column(col, justify="right" if col in ("images", "acc1 %") else "left")
        for row in metrics["per_class"]:
            acc = "-" if row["acc1"] is None else f"{row['acc1']:.2f}"
            table.add_row(escape(str(row["class"])), str(row["images"]), acc, escape(mistakes.get(row["index"], "-")))
        console.print(table)


eval.examples = [
    "swin eval --checkpoint runs/train/exp/best.safetensors --data ~/datasets/imagenette",
    "swin eval -c swinv2-b.safetensors -d DIR --size 384 --window 24 --format json",
    "swin eval -c best.safetensors -d DIR --per-class",
    "swin eval -c best.safetensors -d DIR --remap",
    "swin eval -c best.safetensors -d DIR --plot confusion.png",
]
