"""``swin models``: list the registered variants and show one in detail."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from swincli import api
from swincli.cli import render
from swincli.cli.app import typer_factory
from swincli.cli.options import FormatOpt, JsonAlias, ModelArg, SizeOpt, WindowOpt, examples, pick_format

app = typer_factory(help="List Swin variants and show their architecture, cost and weights.")


_TAGS = {"ms_in1k": "1k", "ms_in22k": "22k", "ms_in22k_ft_in1k": "22k>1k"}


def _win(windows: list) -> str:
    shown = [render.pair_text(w) for w in windows]
    return shown[0] if len(set(shown)) == 1 else ",".join(shown)


@app.command(
    "list",
    epilog=examples("swin models list", "swin models list 'swinv2*' --pretrained", "swin models list --v1 --format json",
                    "swin models list --format csv"),
)
def list_(
    pattern: Annotated[Optional[str], typer.Argument(help="Filter names and aliases (wildcards: 'swinv2*').")] = None,
    v1: Annotated[bool, typer.Option("--v1", help="Only Swin V1.")] = False,
    v2: Annotated[bool, typer.Option("--v2", help="Only Swin V2.")] = False,
    pretrained: Annotated[bool, typer.Option("--pretrained", help="Only variants with released weights.")] = False,
    fmt: FormatOpt = None,
    as_json: JsonAlias = False,
) -> None:
    """List registered variants with size, window, parameters and GMACs."""
    fmt = pick_format(fmt, as_json)
    version = 1 if v1 and not v2 else 2 if v2 and not v1 else None
    rows = api.models_table(pattern, version, pretrained)
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if fmt == "csv":
        _csv(rows)
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"{len(rows)} Swin variants", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("alias", no_wrap=True)
    table.add_column("size/win", justify="right", no_wrap=True)
    table.add_column("params", justify="right")
    table.add_column("GMACs", justify="right")
    table.add_column("weights")
    for r in rows:
        tags = ", ".join(_TAGS.get(w.split(".", 1)[1], w.split(".", 1)[1]) for w in r["weights"]) or "-"
        size = f"{render.pair_text(r['img_size'])}/{_win(r['window_size'])}"
        table.add_row(escape(r["name"]), escape(", ".join(r["aliases"])), size, f"{r['params'] / 1e6:.1f}M",
                      api.giga(r["macs"]), escape(tags))  # fmt: skip
    console = render.console()
    console.print(table)
    console.print("weights: 1k = ImageNet-1k, 22k = ImageNet-22k (21841 classes), 22k>1k = 22k pretrained, 1k fine-tuned")
    if pretrained:
        loads = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="What `swin predict --model NAME` loads", title_justify="left")
        loads.add_column("name", no_wrap=True)
        loads.add_column("weights (Hugging Face Hub: timm/<weights>)", no_wrap=True)
        for name, target in sorted(((n, t) for r in rows for n, t in r["loads"].items()), key=lambda p: p[1]):
            loads.add_row(escape(name), escape(target))
        console.print(loads)


def _csv(rows: list[dict]) -> None:
    """One line per variant; lists joined with spaces so each field stays one cell."""
    writer = csv.writer(sys.stdout)
    writer.writerow(["name", "aliases", "version", "img_size", "window_size", "params", "macs", "weights"])
    for r in rows:
        writer.writerow([r["name"], " ".join(r["aliases"]), r["version"], render.pair_text(r["img_size"]), _win(r["window_size"]),
                         r["params"], r["macs"], " ".join(r["weights"])])  # fmt: skip


@app.command(epilog=examples("swin models info swin-t", "swin models info swin-b --size 384 --window 12",
                             "swin models info swinv2-l --format json"))
def info(model: ModelArg, size: SizeOpt = None, window: WindowOpt = None, fmt: FormatOpt = None,
         as_json: JsonAlias = False) -> None:  # fmt: skip
    """Show a variant's config, per-stage layout, parameters, MACs (the papers' "FLOPs") and weights."""
    fmt = pick_format(fmt, as_json, ("table", "json"))
    data = api.model_info(model, img_size=size, window_size=window)
    if fmt == "json":
        typer.echo(json.dumps(data, indent=2))
        return
    console = render.console()
    cfg = data["config"]
    alias = f"  (alias: {', '.join(data['aliases'])})" if data["aliases"] else ""
    console.print(f"[bold]{escape(data['name'])}[/bold]  {escape(data['description'] + alias)}", highlight=False)
    console.print(
        f"Swin V{cfg['version']}, {render.pair_text(data['img_size'])} px, patch {cfg['patch_size']}, C={cfg['embed_dim']}, "
        f"depths {tuple(cfg['depths'])}, heads {tuple(cfg['num_heads'])}, {cfg['num_classes']} classes"
    )
    console.print(
        f"[bold]{data['params'] / 1e6:.2f}M[/bold] params ({data['params']:,})   "
        f"[bold]{api.giga(data['macs'])} GMACs[/bold] per image ({data['macs']:,} multiply-accumulates)"
    )
    stages = Table(title="Stages", title_justify="left")
    for col in ("stage", "map", "dim", "depth", "heads", "window", "shift", "pretrained window", "GMACs"):
        stages.add_column(col, justify="right" if col != "stage" else "left")
    for st in data["stages"]:
        pre = "-" if st["pretrained_window"] == [0, 0] or cfg["version"] == 1 else render.pair_text(st["pretrained_window"])
        padded = "" if st["padded"] == st["resolution"] else f" (pad {render.pair_text(st['padded'])})"
        stages.add_row(
            str(st["stage"] + 1), render.pair_text(st["resolution"]) + padded, str(st["dim"]), str(st["depth"]), str(st["heads"]),
            render.pair_text(st["window"]), render.pair_text(st["shift"]), pre, api.giga(st["macs"], 2),
        )  # fmt: skip
    console.print(stages)
    if not data["weights"]:
        console.print("No released weights.")
        return
    weights = Table(title="Weights", title_justify="left")
    for col in ("tag", "dataset", "classes", "top-1", "eval crop", "source"):
        weights.add_column(col)
    for w in data["weights"]:
        mark = f" [green](--model {escape(model)})[/green]" if w["name"] == data["loads"] else ""
        weights.add_row(
            escape(w["name"].split(".", 1)[1]) + mark, w["dataset"], str(w["num_classes"]), f"{w['top1']:.2f}" if w["top1"] else "-",
            f"{w['crop_pct']:.3g} {w['interpolation']}", "Hugging Face Hub" if w["hf_hub_id"] else "official release",
        )  # fmt: skip
    console.print(weights)
    _print_loads(console, model, data)


def _print_loads(console, model: str, data: dict) -> None:
    """The one weight ``--model NAME`` loads (predict, eval, finetune, convert), with its size and accuracy."""
    if data["loads"] is None:
        return
    w = next(w for w in data["weights"] if w["name"] == data["loads"])
    native = data["loads_at"]  # the size the weights were trained at, whatever --size shows
    top1 = f", top-1 {w['top1']:.2f}%" if w["top1"] else ""
    console.print(
        f"--model {escape(model)} loads [bold]{escape(w['name'])}[/bold]: {native['img_size']} px, window "
        f"{native['window_size']}, {w['dataset']} ({w['num_classes']} classes){top1}",
        highlight=False,
    )
