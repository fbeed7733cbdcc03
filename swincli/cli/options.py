"""Reusable option types and value parsers shared by every subcommand."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from swincli.errors import SwinUsageError
from swincli.limits import MAX_SIDE


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
    if max(values) > MAX_SIDE:
        raise SwinUsageError(f"size {text} is larger than {MAX_SIDE} pixels a side",
                             hint=f"Swin is used up to {MAX_SIDE}x{MAX_SIDE} (the V2 paper's largest transfer)")  # fmt: skip
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
    if max(flat) > MAX_SIDE:
        raise SwinUsageError(f"window {text} is larger than {MAX_SIDE}",
                             hint="a window larger than the feature map is clipped to it: give at most the map size")  # fmt: skip
    return stages[0] if len(stages) == 1 else stages


def parse_amp(text: str | None, allowed: tuple[str, ...] = ("bf16", "fp16", "none")) -> str | None:
    """``--amp``: one of ``allowed`` (case-insensitive), or None for the command's default."""
    if text is None:
        return None
    if text.lower() not in allowed:
        raise SwinUsageError(f"--amp must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {text!r}")
    return text.lower()


def parse_device(text: str | None) -> str | None:
    """``--device``: cpu, cuda, cuda:N, mps or auto (None); whether it exists is checked when torch is loaded."""
    if text is None or text.lower() == "auto":
        return None
    device = text.lower()
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (not index.isdigit() or kind != "cuda")):
        raise SwinUsageError(f"unknown device {text!r}", hint="use cpu, cuda, cuda:N (the N-th GPU) or mps")
    return device


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
