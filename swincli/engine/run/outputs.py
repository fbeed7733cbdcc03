"""What a run writes into its directory besides the resume state: weights, metrics.jsonl, curves.png.

Each file is written whole under a temporary name and renamed (``swincli.fileio``), so a kill leaves
the old version or the new one, never half of either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swincli.checkpoint import save_model
from swincli import distributed
from swincli.engine.train_config import TrainConfig
from swincli.fileio import atomic_file


def save_weights(net, model, ema, cfg: TrainConfig, run_dir: Path, ctx: distributed.Dist, best: bool) -> None:
    """last.safetensors every epoch, best.safetensors when val top-1 improved (EMA weights with --ema)."""
    source = ema.module if ema is not None else model
    if cfg.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(net, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not ctx.main:
            return
        from swincli.checkpoint import build_model

        source = build_model(model.config, state, "fsdp")
        source.class_names, source.preprocessing = model.class_names, model.preprocessing
    if not ctx.main:
        return
    adapted = None
    if cfg.lora:  # the files every command reads hold the merged weights; RUN/adapter the adapter alone
        from swincli.engine import lora

        adapted, source = source, lora.merged(source)
    provenance = {"training": {"args": cfg.to_dict(), "run_dir": str(run_dir)}}
    save_model(source, run_dir / "last.safetensors", provenance=provenance)
    if best:
        save_model(source, run_dir / "best.safetensors", provenance=provenance)
        if adapted is not None:
            lora.save_adapter(adapted, run_dir / lora.ADAPTER_DIR, lora.adapter_base(cfg))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """The whole file, renamed into place: a kill leaves the old rows or the new ones, never a torn line."""
    with atomic_file(run_dir / "metrics.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))


def trim_metrics(run_dir: Path, completed: int) -> None:
    """On resume, drop metric rows of epochs the resumed run will redo."""
    if (run_dir / "metrics.jsonl").exists():
        write_metrics(run_dir, [r for r in read_metrics(run_dir) if r["epoch"] <= completed])


def plot(run_dir: Path) -> None:
    from swincli.drawing.curves import plot_curves

    plot_curves(read_metrics(run_dir), run_dir / "curves.png", title=run_dir.name)

