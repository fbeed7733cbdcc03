"""``--log tensorboard``: event files in ``RUN/tensorboard/`` (``tensorboard --logdir RUN/tensorboard``).

Two event folders, two TensorBoard "runs", because each has its own x axis:

- ``epochs/``: one point per epoch (step = the 1-based epoch of ``metrics.jsonl``) for every numeric
  column of ``metrics.jsonl`` under its own name (``train_loss``, ``val_acc1``, ``lr`` ...); the
  settings as a text table and a few augmented training images at step 0; the final confusion
  matrix as an image at the last epoch.
- ``steps/``: ``step/train_loss`` and ``step/lr`` after every optimizer step (1-based global step).

Resuming continues in the same folders. Each writer starts with TensorBoard's purge marker
(``purge_step``): readers drop what an earlier writer logged at or after it. ``epochs/`` is purged
from epoch 1 and re-logged from ``metrics.jsonl`` (so it equals the file, whatever a killed
attempt had logged); ``steps/`` is purged from the resumed step. A fresh run (also ``--force``) purges
from step 0, so it never shows an earlier run's points; the old event files are left in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from swincli.engine.run import outputs
from swincli.engine.tracking.base import RunEnd, RunInfo, Tracker, numeric

FOLDER = "tensorboard"


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def __init__(self) -> None:
        self.epochs = self.steps = None

    def start(self, run: RunInfo, note: Callable[[str], None]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        root = run.run_dir / FOLDER
        had_events = _has_events(root / "epochs")
        self.epochs = SummaryWriter(str(root / "epochs"), purge_step=1 if run.resumed else 0)
        self.steps = SummaryWriter(str(root / "steps"), purge_step=run.global_step + 1 if run.resumed else 0)
        if not (run.resumed and had_events):  # step 0 survives a purge from 1: logged once per run
            self.epochs.add_text("settings", _table({**run.config, **run.info}), 0)
            images = run.examples()
            if images is not None:
                self.epochs.add_images("train/examples", images, 0)
        if run.resumed:
            for row in outputs.read_metrics(run.run_dir):
                if row.get("epoch", 0) <= run.completed_epochs:
                    self.epoch(row)
        self.epochs.flush()
        note(f"tensorboard: logging to {root}; view it with: tensorboard --logdir {root}")

    def step(self, step: int, loss: float, lr: float) -> None:
        self.steps.add_scalar("step/train_loss", loss, step)
        self.steps.add_scalar("step/lr", lr, step)

    def epoch(self, row: dict[str, Any]) -> None:
        for key, value in numeric(row).items():
            self.epochs.add_scalar(key, value, row["epoch"])
        self.epochs.flush()
        self.steps.flush()

    def finish(self, final: RunEnd) -> None:
        if "confusion" in final.files:
            import numpy as np
            from PIL import Image

            with Image.open(final.files["confusion"]) as image:
                pixels = np.asarray(image.convert("RGB"))
            self.epochs.add_image("confusion_matrix", pixels, final.epoch, dataformats="HWC")
        self.epochs.flush()

    def close(self, error: BaseException | None = None) -> None:
        for writer in (self.epochs, self.steps):
            if writer is not None:
                writer.close()
        self.epochs = self.steps = None


def _has_events(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())


def _table(values: dict[str, Any]) -> str:
    """Markdown TensorBoard's text panel renders as a table."""
    rows = "".join(f"| {key} | {str(value).replace('|', '/')} |\n" for key, value in values.items() if key != "notes")
    return "| setting | value |\n| --- | --- |\n" + rows
