"""``swin env``: the block a user pastes into a bug report."""

from __future__ import annotations

import json

import typer

from swincli import api
from swincli.cli.options import FormatOpt, JsonAlias, pick_format


def _lines(report: dict, indent: str = "") -> list[str]:
    out = []
    for key, value in report.items():
        if isinstance(value, dict):
            out.append(f"{indent}- {key}:" + ("" if value else " none"))
            out.extend(_lines(value, indent + "  "))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.append(f"{indent}- {key}:")
            for item in value:
                out.append(f"{indent}  - " + ", ".join(f"{k}={v}" for k, v in item.items()))
        else:
            out.append(f"{indent}- {key}: {value if value not in (None, []) else 'none'}")
    return out


def env(fmt: FormatOpt = None, as_json: JsonAlias = False) -> None:
    """Print versions, hardware, bf16/SDPA support and installed plugins (copy it into bug reports)."""
    fmt = pick_format(fmt, as_json, ("table", "json"))
    report = api.environment()
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo("Copy and paste this into your bug report:\n")
    typer.echo("\n".join(_lines(report)))


env.examples = ["swin env", "swin env --format json"]
