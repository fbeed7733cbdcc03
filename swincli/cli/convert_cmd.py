"""``swin convert``: between the official, timm, Hugging Face, torchvision, ONNX and swincli layouts."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from swincli import api
from swincli.cli import render
from swincli.cli.options import FormatOpt, ForceOpt, JsonAlias, ModelOpt, SizeOpt, WindowOpt, domain, pick_format


class From(str, Enum):
    auto = "auto"
    official = "official"
    timm = "timm"
    hf = "hf"
    torchvision = "torchvision"
    swin = "swin"


class To(str, Enum):
    swin = "swin"
    official = "official"
    timm = "timm"
    hf = "hf"
    torchvision = "torchvision"
    onnx = "onnx"


def convert(
    src: Annotated[Path, typer.Argument(help="Weight file (.pth/.pt/.bin/.safetensors) or Hugging Face model folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help=(
        "Output file (a folder for --to hf, or --to timm without an extension). "
        "official/timm/torchvision files get OUT.json: size, window, classes, preprocessing."))],  # fmt: skip
    from_: Annotated[From, typer.Option("--from", help="Source layout; auto recognises it from the keys.")] = From.auto,
    to: Annotated[To, typer.Option("--to", help="Target layout.")] = To.swin,
    model: ModelOpt = None,
    size: SizeOpt = None,
    window: WindowOpt = None,
    pretrained_window: Annotated[
        Optional[str], typer.Option("--pretrained-window", help="V2 pretrained windows, e.g. 12,12,12,6.")
    ] = None,
    num_classes: Annotated[
        Optional[int],
        typer.Option("--num-classes", **domain(api.limits.CLASSES, "New head size (21841 -> 1000 keeps the official 22k -> 1k rows).")),
    ] = None,
    check: Annotated[
        Optional[bool],
        typer.Option("--check/--no-check", help="Compare logits with the other library (default: when installed)."),
    ] = None,
    force: ForceOpt = False,
    fmt: FormatOpt = None,
    as_json: JsonAlias = False,
) -> None:
    """Convert Swin V1/V2 weights between layouts with the logits unchanged."""
    fmt = pick_format(fmt, as_json, ("table", "json"))
    report = api.convert(src, output, from_layout=from_.value, to=to.value, model=model, size=size, window=window,
                         pretrained_window=pretrained_window, num_classes=num_classes, check=check, force=force)  # fmt: skip
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    _render(report)


convert.examples = [
    "swin convert swinv2_tiny_patch4_window8_256.pth -o swinv2-t.safetensors",
    "swin convert ./hf-swin-base-folder -o swin-b.safetensors",
    "swin convert model.safetensors --to hf -o ./hf-model",
    "swin convert model.safetensors --to onnx -o model.onnx",
    "swin convert ft.pth -o ft.safetensors --model swinv2_base_window12to24_192to384",
    "swin convert swinv2_base_window12_192.safetensors -o b384.safetensors --size 384 --window 24",
]


def _render(report: dict) -> None:
    console = render.console()
    arch = report["architecture"]
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("source", f"{escape(str(report['source']))}  ({report['source_layout_name']} layout)")
    windows = ",".join(map(str, arch["windows"]))
    pre = f", pretrained windows {','.join(map(str, arch['pretrained_windows']))}" if arch["pretrained_windows"] else ""
    table.add_row(
        "architecture",
        f"Swin V{arch['version']}, C={arch['embed_dim']}, depths {tuple(arch['depths'])}, heads {tuple(arch['num_heads'])}, "
        f"{'x'.join(map(str, arch['img_size']))} px, windows {windows}{pre}, {arch['num_classes']} classes, "
        f"{arch['params'] / 1e6:.2f}M params",
    )
    dropped = f", {report['dropped']} derived buffers dropped (rebuilt on load)" if report["dropped"] else ""
    table.add_row("tensors", f"{report['tensors']} mapped{dropped}")
    for note in report["notes"]:
        table.add_row("note", f"[yellow]{escape(note)}[/yellow]")
    if report["check"]:
        c = report["check"]
        if c["max_rel_diff"] is None:
            table.add_row("check", f"skipped: {escape(str(c['note']))}")
        else:
            extra = f" ({escape(c['note'])})" if c.get("note") else ""
            table.add_row("check", f"[green]logits match {c['library']}[/green]: max relative difference {c['max_rel_diff']:.1e}{extra}")
    if report["onnx_check"]:
        r = report["onnx_check"]
        table.add_row("onnx check", f"[green]batches {', '.join(map(str, r['batches']))}[/green] (traced at 2), "
                      f"{r['images']} {r['source']} images: max relative difference {r['max_rel_diff']:.1e}")  # fmt: skip
    console.print(table)
    if report["resize"]:
        resize = report["resize"]
        console.print(render.resize_table(resize))
        for line in ([resize["ape"]] if resize.get("ape") else []) + resize.get("padding", []):
            console.print(f"[yellow]{escape(line)}[/yellow]")
    named = {"onnx": "ONNX model", "hf": "Hugging Face model folder", "swin": "swincli checkpoint"}
    target = report["target"]
    what = named[target] if target in named else f"{report['target_name']} state dict"
    console.print(f"Saved the {what} to [bold]{escape(str(report['output']))}[/bold]")
    if report["sidecar"]:  # what the weights cannot carry (docs/convert.md: the sidecar)
        console.print(f"Saved its image size, windows, class names and preprocessing to [bold]{escape(report['sidecar'])}[/bold]")
