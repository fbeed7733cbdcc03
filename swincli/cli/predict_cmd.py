"""``swin predict``: top-k classes (or embeddings) for any images, with published or your own weights."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from swincli.cli import render
from swincli.cli.options import SizeOpt, WindowOpt, parse_amp, parse_device, parse_size, parse_window
from swincli.limits import BATCH, TOP_K, WORKERS

DEFAULT_MODEL = "swinv2-t"


def predict(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders (recursive), globs, or - to read paths from stdin.")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help=f"Published weights by name (default {DEFAULT_MODEL}).")] = None,
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", "-c", help="Your weights (any layout swin convert reads).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", **TOP_K.option("Classes per image."))] = 5,
    size: SizeOpt = None,
    window: WindowOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", **BATCH.option("Images per batch."))] = 32,
    workers: Annotated[int, typer.Option("--workers", "-j", **WORKERS.option("Decoding processes."))] = 2,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu, cuda (default: cuda if available).")] = None,
    amp: Annotated[Optional[str], typer.Option("--amp", help="bf16 or none.")] = None,
    output_format: Annotated[Optional[str], typer.Option("--format", help="table, json (one object per line) or csv (default: by the -o extension .csv/.json/.jsonl, else table).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write results to this file (complete or not at all).")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing -o file.")] = False,
    features: Annotated[bool, typer.Option("--features", help="Write pooled embeddings (.npy) instead of classes.")] = False,
    explain: Annotated[Optional[Path], typer.Option("--explain", help="Also write a heatmap PNG per image into this folder: where the model saw its top class (needs the grad-cam library).")] = None,
    explain_method: Annotated[Optional[str], typer.Option("--explain-method", help="gradcam (default), gradcam++, scorecam or eigencam.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Never download: use cached weights only.")] = False,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Hub revision of published weights.")] = None,
) -> None:
    """Classify images: the top-k classes with probabilities, per image."""
    import torch

    from swincli.errors import SwinUsageError
    from swincli.fileio import check_writable_target
    from swincli.device import pick_device
    from swincli.datasets.image_files import collect_inputs
    from swincli.predict import predict as run

    dev, amp = pick_device(parse_device(device)), parse_amp(amp, ("bf16", "none"))  # before the model loads
    output_format = _output_format(output_format, None if features else output)
    output = (output or Path("features.npy")) if features else output
    for target in (output, _names_file(output) if features else None):  # refused before the model loads
        if target is not None:
            check_writable_target(target, force)
    if model and checkpoint:
        raise SwinUsageError("--model and --checkpoint are alternatives")
    method = _explain_method(explain, explain_method, features, force)
    note = render.console(stderr=True)
    net = _load(model, checkpoint, parse_size(size), parse_window(window), revision, offline, note)
    for line in net.load_notes:
        note.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False)
    if net.resize_report is not None and net.resize_report.changed:
        note.print(render.resize_table(net.resize_report.to_dict()))
    paths = collect_inputs(inputs)
    if not paths:
        raise SwinUsageError("no images found in the inputs", hint="pass image files, folders or globs")
    dtype = {"bf16": torch.bfloat16, "none": None, None: None}[amp]
    progress = _progress(len(paths), batch_size)
    results = run(net, paths, top_k, batch_size, dev, dtype, workers, features,
                  on_batch=(lambda n: progress.advance(progress.task_ids[0], n)) if progress else None)  # fmt: skip
    heatmaps = [0]
    if explain is not None:
        from swincli.explain import explain_predictions

        results = _counted(explain_predictions(net, results, paths, explain, method, batch_size=batch_size, device=dev,
                                               workers=workers), heatmaps)  # fmt: skip
    try:
        if features:
            failed = _write_features(results, output, note)
        elif output is not None:
            failed = _emit_to_file(results, output_format, output, explain is not None)
        else:
            failed = _emit(results, output_format, None, explain is not None)
    finally:
        if progress:
            progress.stop()
    if output:
        note.print(f"results saved to [bold]{escape(str(output))}[/bold]", highlight=False)
    if explain is not None:
        note.print(f"{heatmaps[0]} heatmap{'s' * (heatmaps[0] != 1)} ({method}) saved to [bold]{escape(str(explain))}[/bold]",
                   highlight=False)  # fmt: skip
    if failed:
        raise typer.Exit(1)


predict.examples = [
    "swin predict cat.jpg --model swinv2-b",
    "swin predict photos/ --checkpoint runs/train/exp/best.safetensors --format json",
    "swin predict photos/ --checkpoint runs/train/exp/best.safetensors --explain cams/",
    "find . -name '*.jpg' | swin predict - --format csv -o preds.csv",
    "swin predict 'shots/*.png' --features -o embeddings.npy",
]


FORMATS = ("table", "json", "csv")
BY_EXTENSION = {".csv": "csv", ".json": "json", ".jsonl": "json"}


def _output_format(given: str | None, output: Path | None) -> str:
    """--format as given; else the -o file's extension (x.csv, x.json, x.jsonl) says it; else a table."""
    from swincli.errors import SwinUsageError

    if given is not None and given not in FORMATS:
        raise SwinUsageError(f"--format must be table, json or csv, got {given!r}")
    implied = BY_EXTENSION.get(output.suffix.lower()) if output is not None else None
    if given is not None and implied is not None and given != implied:
        raise SwinUsageError(f"--format {given} contradicts the name {output.name}",
                             hint=f"drop --format: a {output.suffix} file gets {implied}; or rename the file")  # fmt: skip
    return given or implied or "table"


def _explain_method(explain: Path | None, method: str | None, features: bool, force: bool) -> str:
    """--explain's method, checked with its folder and the grad-cam import before the model loads."""
    from swincli.errors import SwinUsageError

    if explain is None:
        if method is not None:
            raise SwinUsageError("--explain-method needs --explain DIR")
        return ""
    from swincli.explain import check_method, check_target_dir, require_gradcam

    if features:
        raise SwinUsageError("--explain and --features are alternatives", hint="explanations are of classes")
    method = check_method(method or "gradcam")
    require_gradcam()
    check_target_dir(explain, force)
    return method


def _counted(results, count: list[int]):
    """Pass results through, counting those with a heatmap (for the closing line)."""
    for r in results:
        count[0] += r.explanation is not None
        yield r


def _names_file(features: Path) -> Path:
    """The row order of an embeddings file: ``emb.npy`` -> ``emb.npy.paths.txt``."""
    return Path(str(features) + ".paths.txt")


def _progress(total: int, batch_size: int):
    """A progress bar on stderr for inputs larger than a few batches (only on a terminal)."""
    if total <= 4 * batch_size or not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress("images", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=render.console(stderr=True), transient=True)  # fmt: skip
    progress.add_task("images", total=total)
    progress.start()
    return progress


def _load(model: str | None, checkpoint: str | None, size, window, revision: str | None, offline: bool, note):
    from swincli.inference import optimize_for_inference
    from swincli.loader import load

    if model is None and checkpoint is None:
        from swincli.hub import resolve_weights

        model = DEFAULT_MODEL
        entry, weights = resolve_weights(model)
        note.print(f"[yellow]note:[/yellow] no --model or --checkpoint: using {model} ({entry.name}.{weights.tag})",
                   highlight=False)  # fmt: skip
    net = load(checkpoint, img_size=size, window_size=window, model=model, revision=revision,
               offline=True if offline else None, progress=sys.stderr.isatty())  # fmt: skip
    optimize_for_inference(net)
    return net


def _emit_to_file(results, fmt: str, output: Path, explained: bool = False) -> bool:
    """Stream into a temporary file beside ``output``, renamed over it at the end: Ctrl-C keeps the old file."""
    from swincli.fileio import atomic_file

    with atomic_file(output) as tmp, open(tmp, "w", newline="") as stream:
        return _emit(results, fmt, stream, explained)


def _emit(results, fmt: str, stream, explained: bool = False) -> bool:
    """Print (or write to ``stream``) each result as it comes; returns whether any input failed.
    ``explained`` (--explain): csv gets an ``explanation`` column, the table a heatmap line."""
    failed = False
    console = render.console(stderr=False) if stream is None else None
    err = render.console(stderr=True)
    writer = csv.writer(stream or sys.stdout) if fmt == "csv" else None
    if writer:
        writer.writerow(["path", "rank", "index", "label", "prob", "error"] + ["explanation"] * explained)
    for r in results:
        failed = failed or r.error is not None
        if r.error and fmt == "table":
            err.print(f"{r.path}: {r.error}", highlight=False, markup=False)
        elif fmt == "json":
            line = json.dumps(r.to_dict())
            print(line, file=stream) if stream else typer.echo(line)
        elif fmt == "csv":
            extra = [r.explanation or ""] * explained
            if r.error:
                writer.writerow([r.path, "", "", "", "", r.error] + extra)
            for rank, e in enumerate(r.top_k or [], 1):
                writer.writerow([r.path, rank, e["index"], e["label"], f"{e['prob']:.6f}", ""] + extra)
        else:
            table = _table(r)
            if stream:
                buffer = io.StringIO()
                Console(file=buffer, width=render.PIPE_WIDTH).print(table)
                stream.write(buffer.getvalue())
            else:
                console.print(table)
    return failed


def _table(r):
    from rich.console import Group
    from rich.text import Text

    table = Table(show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("prob", justify="right")
    table.add_column("", min_width=20)
    for rank, e in enumerate(r.top_k or [], 1):
        table.add_row(str(rank), Text(e["label"]), f"{e['prob']:.1%}", "[green]" + "█" * max(1, round(e["prob"] * 20)) + "[/green]")
    heatmap = [Text(f"heatmap: {r.explanation}", overflow="fold")] if r.explanation else []
    return Group(Text(r.path, style="bold", overflow="fold"), table, *heatmap)


def _write_features(results, path: Path, note) -> bool:
    import numpy as np

    from swincli.fileio import atomic_file

    rows, names, failed = [], [], False
    for r in results:
        if r.error:
            failed = True
            note.print(f"{r.path}: {r.error}", highlight=False, markup=False)
        else:
            rows.append(r.features.numpy())
            names.append(r.path)
    if rows:  # each file is renamed into place only once both are written
        with atomic_file(path) as tmp, atomic_file(_names_file(path)) as tmp_names:
            with open(tmp, "wb") as fh:
                np.save(fh, np.stack(rows))
            tmp_names.write_text("".join(n + "\n" for n in names))
        note.print(f"{len(rows)} embeddings of dimension {rows[0].shape[0]} (row order in {path}.paths.txt)", markup=False)
    return failed
