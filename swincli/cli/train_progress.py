"""Rendering a training run: rich progress bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from swincli.cli import render
from swincli.api import Reporter, TrainResult, describe_lora, plural


class TrainReporter(Reporter):
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = render.console()
        self.err = render.console(stderr=True)
        self.live = sys.stdout.isatty() and not quiet
        self.progress: Progress | None = None
        self.task = None
        self.main = True

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]note:[/yellow] {escape(text)}", highlight=False)

    def warn(self, text: str) -> None:
        self.err.print(f"[bold yellow]warning:[/bold yellow] {escape(text)}", highlight=False)

    def start(self, info: dict) -> None:
        import os

        self.main = os.environ.get("RANK", "0") == "0"
        if self.quiet or not self.main:
            return
        self.console.print(
            f"training {escape(str(info['model']))} on {plural(info['train_images'], 'image')} ({plural(info['classes'], 'class', 'classes')}, "
            f"{info['val_images']:,} for validation), {plural(info['epochs'], 'epoch')} x {plural(info['steps_per_epoch'], 'step')}, "
            f"{escape(str(info['device']))}" + (f" x {info['world_size']} processes" if info["world_size"] > 1 else ""),
            highlight=False,
        )

    def epoch_start(self, epoch: int, epochs: int, steps: int, start: int) -> None:
        if not self.live or not self.main:
            return
        if self.progress is None:  # one epoch bar for the run, one step bar for the epoch
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(), console=self.console, transient=True,
            )  # fmt: skip
            self.progress.start()
            self.epochs_task = self.progress.add_task("epochs", total=epochs, completed=epoch - 1, info="")
            self.task = self.progress.add_task("steps", total=steps, info="")
        self.progress.update(self.task, description=f"epoch {epoch}", total=steps, completed=start, info="")

    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, info=f"loss {loss:.4f}  lr {lr:.2e}  {images_per_s:.0f} img/s")

    def epoch_end(self, row: dict) -> None:
        if self.progress is not None:
            self.progress.advance(self.epochs_task)
        if self.quiet or not self.main:
            return
        fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
        self.console.print(
            f"epoch {row['epoch']:>3}  train_loss {fmt(row['train_loss'], '.4f')}  val_loss {fmt(row['val_loss'], '.4f')}  "
            f"acc1 {fmt(row['val_acc1'], '.2f')}%  acc5 {fmt(row['val_acc5'], '.2f')}%  lr {row['lr']:.2e}  "
            f"{row['images_per_s']:.0f} img/s  {row['epoch_time_s']:.1f}s",
            highlight=False,
        )

    def abort(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def finish(self, result: TrainResult) -> None:
        self.abort()
        if not self.main:
            return
        if result.lora is not None and not self.quiet:
            self.console.print(escape(describe_lora(result.lora)), highlight=False)
        best = f"best val acc1 {result.best_acc1:.2f}%, " if result.best_acc1 is not None else ""
        self.console.print(f"{best}results saved to [bold]{escape(str(result.run_dir))}[/bold]", highlight=False)
