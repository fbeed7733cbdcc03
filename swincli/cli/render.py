"""Rich output helpers shared by the commands."""

from __future__ import annotations

import sys

from rich.console import Console

PIPE_WIDTH = 120  # when writing to a file or pipe, don't squeeze tables into 80 columns


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPE_WIDTH)
