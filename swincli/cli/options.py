"""Reusable option types and value parsers shared by every subcommand."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from swincli.errors import SwinUsageError


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"384"`` -> (384, 384); ``"256x320"`` or ``"256,320"`` -> (256, 320)."""
    if text is None:
        return None
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise SwinUsageError(f"invalid size {text!r}", hint="use S or HxW, e.g. 384 or 256x320") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise SwinUsageError(f"invalid size {text!r}", hint="use S or HxW, e.g. 384 or 256x320")
    return values[0], values[1]


def parse_window(text: str | None):
    """``"12"`` -> 12; ``"7x9"`` -> (7, 9); ``"12,12,12,6"`` -> one window per stage."""
    if text is None:
        return None
    hint = "use W, HxW or one value per stage, e.g. 12, 7x9 or 12,12,12,6"
    try:
        stages = [
            tuple(int(v) for v in part.split("x")) if "x" in part else int(part)
            for part in text.lower().split(",")
        ]
    except ValueError:
        raise SwinUsageError(f"invalid window {text!r}", hint=hint) from None
    flat = [v for s in stages for v in (s if isinstance(s, tuple) else (s,))]
    if min(flat) < 1 or any(isinstance(s, tuple) and len(s) != 2 for s in stages):
        raise SwinUsageError(f"invalid window {text!r}", hint=hint)
    return stages[0] if len(stages) == 1 else stages


def examples(*lines: str) -> str:
    """An epilog listing example invocations, rendered under the command's help."""
    body = "\n\n".join(f"  [bold]$ {line}[/bold]" for line in lines)
    return f"[b]Examples[/b]\n\n{body}"


ModelArg = Annotated[str, typer.Argument(help="Model name or alias, e.g. swin-t or swinv2_base_window8_256.")]
SizeOpt = Annotated[Optional[str], typer.Option("--size", help="Image size: S or HxW (e.g. 384, 256x320).")]
WindowOpt = Annotated[
    Optional[str], typer.Option("--window", help="Window: W, HxW, or per stage (e.g. 12 or 12,12,12,6).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
