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

from swincli import api
from swincli.cli import render
from swincli.cli.options import (
    AmpOpt, BatchOpt, CheckpointOpt, DeviceOpt, ForceOpt, FormatOpt, JsonAlias, ModelOpt, RuntimeOpt, OutputFileOpt, SizeOpt,
    WindowOpt, WorkersOpt, amp_value, domain, pick_format,
)  # fmt: skip


def predict(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders (recursive), globs, or - to read paths from stdin.")],
    model: ModelOpt = None,
    checkpoint: CheckpointOpt = None,
    runtime: RuntimeOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", **domain(api.limits.TOP_K, "Classes per image."))] = 5,
    size: SizeOpt = None,
    window: WindowOpt = None,
    batch_size: BatchOpt = 32,
    workers: WorkersOpt = None,
    device: DeviceOpt = None,
    amp: AmpOpt = None,
    fmt: FormatOpt = None,
    as_json: JsonAlias = False,
    output: OutputFileOpt = None,
    force: ForceOpt = False,
    features: Annotated[bool, typer.Option("--features", help="Write pooled embeddings (.npy) instead of classes.")] = False,
    explain: Annotated[Optional[Path], typer.Option("--explain", help="Also write a heatmap PNG per image into this folder: where the model saw its top class (needs the grad-cam library).")] = None,
    explain_method: Annotated[Optional[str], typer.Option("--explain-method", help="gradcam (default), gradcam++, scorecam or eigencam.")] = None,
    explain_layer: Annotated[Optional[int], typer.Option("--explain-layer", **domain(api.limits.STAGE, "The stage whose map --explain draws: 1 (finest) to 4 (the last, default)."))] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Never download: use cached weights only.")] = False,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Hub revision of published weights.")] = None,
) -> None:
    """Classify images: the top-k classes with probabilities, per image (no weights given: swinv2-t's)."""
    fmt = pick_format(fmt, as_json, output=None if features else output)
    output = (output or Path("features.npy")) if features else output
    for target in (output, api.embeddings_names_file(output) if features else None):  # refused before the model loads
        if target is not None:
            api.check_writable_target(target, force)
    if explain is None and (explain_method is not None or explain_layer is not None):
        raise api.SwinUsageError(f"--explain-{'method' if explain_method is not None else 'layer'} needs --explain DIR")
    note = render.console(stderr=True)
    progress = _Progress(batch_size)
    results = api.predict(inputs, model=model, checkpoint=checkpoint, top_k=top_k, size=size, window=window,
                          batch_size=batch_size, workers=workers, device=device, amp=amp_value(amp), features=features,
                          explain=explain, explain_method=explain_method or "gradcam", force=force, offline=offline,
                          revision=revision, on_load=lambda info: _loaded(info, note, progress), on_batch=progress.advance,
                          explain_layer=explain_layer, runtime=runtime)  # fmt: skip
    failures, heatmaps = _Failures(), _Heatmaps()
    try:
        _write(heatmaps.count(failures.count(results)), fmt, output, features, explain is not None, note)
    finally:
        progress.stop()
    if output and (not features or failures.total > failures.failed):
        note.print(f"results saved to [bold]{escape(str(output))}[/bold]", highlight=False)
    if explain is not None:
        note.print(f"{api.plural(heatmaps.written, 'heatmap')} ({explain_method or 'gradcam'}) saved to "
                   f"[bold]{escape(str(explain))}[/bold]", highlight=False)  # fmt: skip
    if failures.failed:
        note.print(f"[bold red]error:[/bold red] {escape(failures.summary())}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


predict.examples = [
    "swin predict cat.jpg --model swinv2-b",
    "swin predict photos/ --checkpoint runs/train/exp/best.safetensors --format json",
    "swin predict photos/ --checkpoint runs/train/exp/best.safetensors --explain cams/",
    "find . -name '*.jpg' | swin predict - --format csv -o preds.csv",
    "swin predict 'shots/*.png' --features -o embeddings.npy",
]


def _write(results, fmt: str, output: Path | None, features: bool, explained: bool, note) -> None:
    """The results as they come: embeddings into ``output``, or the format into ``output`` or the terminal."""
    if features:
        written = api.write_embeddings(results, output)
        if written["rows"]:
            note.print(f"{api.plural(written['rows'], 'embedding')} of dimension {written['dim']} "
                       f"(row order in {written['names_file']})", markup=False, highlight=False)  # fmt: skip
    elif output is not None:
        _emit_to_file(results, fmt, output, explained)
    else:
        _emit(results, fmt, None, explained)


def _loaded(info: dict, note, progress: "_Progress") -> None:
    """What loading the model said (notes, the resolution transfer), then a progress bar for long inputs."""
    for line in info["notes"]:
        note.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False)
    if info["resize"] is not None:
        note.print(render.resize_table(info["resize"]))
    progress.start(info["images"])


class _Failures:
    """Counts the results that carry an error, keeping the first, for the closing line on stderr."""

    def __init__(self) -> None:
        self.total, self.failed, self.first = 0, 0, None

    def count(self, results):
        for r in results:
            self.total += 1
            if r.get("error"):
                self.failed += 1
                self.first = self.first or (r["path"], r["error"])
            yield r

    def summary(self) -> str:
        path, why = self.first
        return f"{self.failed} of {api.plural(self.total, 'image')} failed; the first: {path}: {why}"


class _Heatmaps:
    """Counts the results with a heatmap (for the closing line of --explain)."""

    def __init__(self) -> None:
        self.written = 0

    def count(self, results):
        for r in results:
            self.written += r.get("explanation") is not None
            yield r


class _Progress:
    """A progress bar on stderr for inputs larger than a few batches (only on a terminal)."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size, self.bar = batch_size, None

    def start(self, total: int) -> None:
        if total <= 4 * self.batch_size or not sys.stderr.isatty():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress("images", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=render.console(stderr=True), transient=True)  # fmt: skip
        self.bar.add_task("images", total=total)
        self.bar.start()

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.bar.task_ids[0], n)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _emit_to_file(results, fmt: str, output: Path, explained: bool = False) -> None:
    """Stream into a temporary file beside ``output``, renamed over it at the end: Ctrl-C keeps the old file."""
    with api.atomic_file(output) as tmp, open(tmp, "w", newline="") as stream:
        _emit(results, fmt, stream, explained)


def _emit(results, fmt: str, stream, explained: bool = False) -> None:
    """Print (or write to ``stream``) each result as it comes. ``explained`` (--explain): csv gets an
    ``explanation`` column, the table a heatmap line. In a table, a failed input is a line on stderr."""
    console = render.console(stderr=False) if stream is None else None
    err = render.console(stderr=True)
    writer = csv.writer(stream or sys.stdout) if fmt == "csv" else None
    if writer:
        writer.writerow(["path", "rank", "index", "label", "prob", "error"] + ["explanation"] * explained)
    for r in results:
        if r.get("error") and fmt == "table":
            err.print(f"{r['path']}: {r['error']}", highlight=False, markup=False)
        elif fmt == "json":
            line = json.dumps(r)
            print(line, file=stream) if stream else typer.echo(line)
        elif fmt == "csv":
            extra = [r.get("explanation") or ""] * explained
            if r.get("error"):
                writer.writerow([r["path"], "", "", "", "", r["error"]] + extra)
            for rank, e in enumerate(r.get("top_k") or [], 1):
                writer.writerow([r["path"], rank, e["index"], e["label"], f"{e['prob']:.6f}", ""] + extra)
        elif stream:
            buffer = io.StringIO()
            Console(file=buffer, width=render.PIPE_WIDTH).print(_table(r))
            stream.write(buffer.getvalue())
        else:
            console.print(_table(r))


def _table(r: dict):
    from rich.console import Group
    from rich.text import Text

    table = Table(show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("prob", justify="right")
    table.add_column("", min_width=20)
    for rank, e in enumerate(r.get("top_k") or [], 1):
        table.add_row(str(rank), Text(e["label"]), f"{e['prob']:.1%}", "[green]" + "█" * max(1, round(e["prob"] * 20)) + "[/green]")
    heatmap = [Text(f"heatmap: {r['explanation']}", overflow="fold")] if r.get("explanation") else []
    return Group(Text(r["path"], style="bold", overflow="fold"), table, *heatmap)
