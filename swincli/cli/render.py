"""Rich output helpers shared by the commands."""

from __future__ import annotations

import sys

from rich.console import Console

PIPE_WIDTH = 120  # when writing to a file or pipe, don't squeeze tables into 80 columns


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # no :emoji: codes: a path or a name like hf:cat:config would otherwise print as a picture
    return Console(stderr=stderr, width=None if stream.isatty() else PIPE_WIDTH, emoji=False)


def _fmt(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def resize_table(report: dict):
    """The resolution-transfer report (``ResizeReport.to_dict()``) as a table: one row per stage."""
    from rich.table import Table

    (h0, w0), (h1, w1) = report["img_size"]
    title = f"Resolution transfer {_fmt((h0, w0))} -> {_fmt((h1, w1))} (Swin V{report['version']})"
    table = Table(title=title, title_justify="left")
    for col in ("stage", "map", "window", "shift", "pretrained window", "changes"):
        table.add_column(col)
    for st in report["stages"]:
        before, after = st["window"]
        pre = "-" if report["version"] == 1 else _fmt(st["pretrained_window"]) if any(st["pretrained_window"]) else "= window"
        table.add_row(
            str(st["stage"] + 1),
            f"{_fmt(st['resolution'][0])} -> {_fmt(st['resolution'][1])}",
            f"{_fmt(before)} -> {_fmt(after)}",
            f"{_fmt(st['shift'][0])} -> {_fmt(st['shift'][1])}",
            pre,
            "; ".join(st["actions"]) or "-",
        )
    return table
