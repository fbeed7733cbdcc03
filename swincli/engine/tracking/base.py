"""What every run tracker implements (:class:`Tracker`) and what it is handed: :class:`RunInfo` at the
start, :class:`RunEnd` at the end. The backends (:mod:`~swincli.engine.tracking.tensorboard_tracker`,
:mod:`~swincli.engine.tracking.mlflow_tracker`) depend on this module only; the factory that starts them
(:mod:`swincli.engine.tracking.factory`) sits on top.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch


@dataclass
class RunInfo:
    """What a tracker learns at the start of a (fresh or resumed) run."""

    run_dir: Path
    config: dict[str, Any]  # the resolved settings, as args.json holds them
    info: dict[str, Any]  # model, classes, image counts, device: the reporter's start line
    resumed: bool
    completed_epochs: int  # epochs already in metrics.jsonl (0 for a fresh run)
    global_step: int  # optimizer steps already taken
    examples: Callable[[], torch.Tensor | None] = lambda: None  # a few training images in [0, 1], NCHW


@dataclass
class RunEnd:
    """What a tracker gets at the end: the last epoch, and the files worth keeping (filled by :class:`TrackerGroup`)."""

    run_dir: Path
    epoch: int
    confusion: torch.Tensor | None = None  # the last validation's, rows = true class
    class_names: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # "best", "curves", "confusion" -> existing files


class Tracker:
    """The interface, and the tracker of a run that logs nowhere (every other rank, no ``--log``)."""

    name = "none"

    def start(self, run: RunInfo, note: Callable[[str], None]) -> None: ...
    def step(self, step: int, loss: float, lr: float) -> None: ...  # after each optimizer step (1-based)
    def epoch(self, row: dict[str, Any]) -> None: ...  # the row just written to metrics.jsonl
    def finish(self, final: RunEnd) -> None: ...
    def close(self, error: BaseException | None = None) -> None: ...  # always called, also after finish


def example_images(dataset, mean, std, count: int = 8) -> torch.Tensor | None:
    """``count`` training images spread over the set, as the model sees them (augmented), de-normalised to
    [0, 1]. The global RNG is restored afterwards: augmentation seeds it, and exact resume depends on it."""
    n = len(dataset)
    picks = sorted({k * n // count for k in range(min(count, n))})
    with torch.random.fork_rng(devices=[]):
        images = [dataset[i][0] for i in picks]
    images = [x for x in images if isinstance(x, torch.Tensor) and x.dim() == 3]  # unreadable ones are skipped
    if not images:
        return None
    x = torch.stack(images).float()
    channels = x.shape[1]
    m = torch.tensor(list(mean)[:channels], dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(list(std)[:channels], dtype=x.dtype).view(1, -1, 1, 1)
    return (x * s + m).clamp(0, 1)


def numeric(row: dict[str, Any]) -> dict[str, float]:
    """The columns of a metrics row a chart can show: finite numbers, ``epoch`` itself excluded."""
    return {k: float(v) for k, v in row.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}  # fmt: skip


def read_json(path: Path) -> dict[str, Any] | None:
    """A small state file of ours, or ``None`` when it is missing or unreadable (then the tracker starts over)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
