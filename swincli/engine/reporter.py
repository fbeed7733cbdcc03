"""What a training run tells its caller: progress as it happens (:class:`Reporter`) and the outcome
(:class:`TrainResult`). No torch here, so the CLI can subclass the reporter without loading it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Reporter:
    """Receives progress; the CLI renders it with rich, the Python API stays silent by default."""

    def note(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def start(self, info: dict) -> None: ...
    def epoch_start(self, epoch: int, epochs: int, steps: int, start: int) -> None: ...
    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None: ...
    def epoch_end(self, row: dict) -> None: ...
    def finish(self, result: TrainResult) -> None: ...
    def abort(self) -> None: ...  # the run stops on an exception: end any live display


@dataclass
class TrainResult:
    run_dir: Path
    best_acc1: float | None
    last: dict[str, Any]
    epochs: int
    notes: list[str] = field(default_factory=list)
    lora: dict[str, Any] | None = None  # --lora: trainable parameters and peak memory (engine/lora.py summary)


    def to_dict(self) -> dict[str, Any]:
        """Plain data: what ``swincli.api.train`` returns."""
        return {"run_dir": str(self.run_dir), "best_acc1": self.best_acc1, "last": dict(self.last), "epochs": self.epochs,
                "notes": list(self.notes), "lora": self.lora}  # fmt: skip
