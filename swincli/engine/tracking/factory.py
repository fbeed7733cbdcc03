"""Run tracking: ``--log tensorboard`` and ``--log mlflow`` mirror a run into the tools people watch runs in.

``metrics.jsonl`` and ``curves.png`` stay the run's own record, always written; a tracker only copies
it out: the per-epoch scalars are exactly the numbers of ``metrics.jsonl`` (step = epoch), so the
two never disagree. Only rank 0 logs. The trackers' packages are optional (``swincli[tensorboard]``,
``swincli[mlflow]``) and imported only when asked for: :func:`check_log` refuses a missing one with
one line before any data is read. A tracker that fails during the run (a full disk, a tracking server
gone) is dropped with a warning: hours of training are worth more than a chart.

This module is the factory: it parses ``--log``, checks the packages, and starts the backends behind
one :class:`TrackerGroup`. What each backend gets, and how it continues a resumed run, is in
:mod:`~swincli.engine.tracking.tensorboard_tracker` and :mod:`~swincli.engine.tracking.mlflow_tracker`;
``docs/training.md`` ("Run tracking") says it for users.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Iterable

from swincli.engine.tracking.base import RunEnd, RunInfo, Tracker
from swincli.errors import SwinError, SwinUsageError

TRACKERS = ("tensorboard", "mlflow")
# the module whose import proves a tracker usable, and the pip extra that installs it
_NEEDS = {"tensorboard": ("torch.utils.tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow-skinny")}
CONFUSION_PNG = "confusion.png"


def parse_log(value: str | Iterable[str] | None) -> list[str] | None:
    """``--log`` as given (repeated, comma-separated, or a config file's list) -> known names in the order
    given, each once; ``None`` when empty or ``none`` (which turns a resumed run's logging off)."""
    if value is None:
        return None
    parts = [value] if isinstance(value, str) else list(value)
    names: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise SwinUsageError(f"--log takes tracker names, got {part!r}", hint=f"choose from {', '.join(TRACKERS)}")
        for name in (p.strip().lower() for p in part.split(",")):
            if name == "none":
                continue
            if name and name not in TRACKERS:
                raise SwinUsageError(f"--log {name}: unknown tracker",
                                     hint=f"choose from {', '.join(TRACKERS)} or none")  # fmt: skip
            if name and name not in names:
                names.append(name)
    return names or None


def check_log(value: str | Iterable[str] | None) -> list[str] | None:
    """:func:`parse_log`, then each tracker's package imported: a missing one is refused before training."""
    names = parse_log(value)
    for name in names or ():
        module, package = _NEEDS[name]
        try:
            importlib.import_module(module)
        except ImportError:
            raise SwinError(f"--log {name} needs the {package} package, which is not installed",
                            hint=f"pip install 'swincli[{name}]'") from None  # fmt: skip
    return names


class TrackerGroup(Tracker):
    """Several trackers as one; one that fails after the start is dropped with a warning."""

    name = "fan-out"

    def __init__(self, trackers: list[Tracker], note: Callable[[str], None], warn: Callable[[str], None]) -> None:
        self.trackers, self.note, self.warn = trackers, note, warn

    def start(self, run: RunInfo, note: Callable[[str], None]) -> None:
        for t in self.trackers:  # a tracker that cannot start stops the run before its first step
            t.start(run, note)

    def step(self, step: int, loss: float, lr: float) -> None:
        self._each("per-step logging", lambda t: t.step(step, loss, lr))

    def epoch(self, row: dict[str, Any]) -> None:
        self._each(f"logging epoch {row.get('epoch')}", lambda t: t.epoch(row))

    def finish(self, final: RunEnd) -> None:
        if not self.trackers:
            return
        try:
            final.files = final_files(final, self.note)
        except Exception as exc:  # noqa: BLE001 - a figure is not worth the run's ending
            self.warn(f"--log: drawing the confusion matrix failed ({type(exc).__name__}: {exc})")
            final.files = final_files(RunEnd(final.run_dir, final.epoch), self.note)
        self._each("the final logging", lambda t: t.finish(final))

    def close(self, error: BaseException | None = None) -> None:
        for t in self.trackers:
            try:
                t.close(error)
            except Exception as exc:  # noqa: BLE001 - closing must not hide the run's own outcome
                self.warn(f"--log {t.name}: closing failed ({exc})")
        self.trackers = []

    def _each(self, what: str, call: Callable[[Tracker], None]) -> None:
        for t in list(self.trackers):
            try:
                call(t)
            except Exception as exc:  # noqa: BLE001 - any library error: drop the tracker, keep training
                self.trackers.remove(t)
                self.warn(f"--log {t.name}: {what} failed ({type(exc).__name__}: {exc}); "
                          f"logging to {t.name} stops, the run goes on")  # fmt: skip
                try:
                    t.close(exc)
                except Exception:  # noqa: BLE001
                    pass


def open_tracker(names: list[str] | None, run: RunInfo, note: Callable[[str], None],
                 warn: Callable[[str], None]) -> Tracker:  # fmt: skip
    """The started trackers ``names`` asks for (rank 0 only; the caller passes ``None`` elsewhere)."""
    if not names:
        return Tracker()
    trackers: list[Tracker] = []
    for name in names:
        if name == "tensorboard":
            from swincli.engine.tracking.tensorboard_tracker import TensorBoardTracker

            trackers.append(TensorBoardTracker())
        else:
            from swincli.engine.tracking.mlflow_tracker import MlflowTracker

            trackers.append(MlflowTracker())
    fan = TrackerGroup(trackers, note, warn)
    try:
        fan.start(run, note)
    except BaseException as exc:
        fan.close(exc)
        raise
    return fan


def final_files(final: RunEnd, note: Callable[[str], None]) -> dict[str, Path]:
    """The end-of-run files a tracker uploads; draws ``RUN/confusion.png`` from the last validation."""
    run_dir = final.run_dir
    files = {key: run_dir / name for key, name in (("best", "best.safetensors"), ("curves", "curves.png"))}
    if not files["best"].exists():  # no validation: the last weights are the result
        files["best"] = run_dir / "last.safetensors"
    if final.confusion is not None:
        from swincli.drawing.confusion_plot import draw_confusion

        title = f"{run_dir.name}: validation after epoch {final.epoch}"
        cut_note = draw_confusion(final.confusion, final.class_names, run_dir / CONFUSION_PNG, title=title)
        if cut_note:
            note(cut_note)
        files["confusion"] = run_dir / CONFUSION_PNG
    return {key: path for key, path in files.items() if path.exists()}


