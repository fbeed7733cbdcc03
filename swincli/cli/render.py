"""Rich output helpers shared by the commands."""

from __future__ import annotations

import sys

from rich.console import Console

from swincli import api

PIPE_WIDTH = 120  # when writing to a file or pipe, don't squeeze tables into 80 columns


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # no :emoji: codes: a path or a name like hf:cat:config would otherwise print as a picture
    return Console(stderr=stderr, width=None if stream.isatty() else PIPE_WIDTH, emoji=False)


pair_text = api.pair_text  # (7, 7) -> "7", (7, 9) -> "7x9"


def resize_table(report: dict):
    """The resolution-transfer report (``ResizeReport.to_dict()``) as a table: one row per stage."""
    from rich.table import Table

    (h0, w0), (h1, w1) = report["img_size"]
    title = f"Resolution transfer {pair_text((h0, w0))} -> {pair_text((h1, w1))} (Swin V{report['version']})"
    table = Table(title=title, title_justify="left")
    for col in ("stage", "map", "window", "shift", "pretrained window", "changes"):
        table.add_column(col)
    for st in report["stages"]:
        before, after = st["window"]
        pre = "-" if report["version"] == 1 else pair_text(st["pretrained_window"]) if any(st["pretrained_window"]) else "= window"
        table.add_row(
            str(st["stage"] + 1),
            f"{pair_text(st['resolution'][0])} -> {pair_text(st['resolution'][1])}",
            f"{pair_text(before)} -> {pair_text(after)}",
            f"{pair_text(st['shift'][0])} -> {pair_text(st['shift'][1])}",
            pre,
            "; ".join(st["actions"]) or "-",
        )
    return table



class Stages:
    """A spinner on stderr naming the step under way, for work that takes minutes (exports); on a terminal
    only, so logs and pipes stay clean. ``show(text)`` is the ``on_stage`` callback the API takes."""

    def __init__(self, first: str, wanted: bool = True) -> None:
        import sys

        self.status = console(stderr=True).status(first) if wanted and sys.stderr.isatty() else None

    def __enter__(self) -> "Stages":
        if self.status is not None:
            self.status.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.status is not None:
            self.status.stop()

    def show(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)
