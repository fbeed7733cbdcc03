"""``--log mlflow``: one MLflow run per swin run, in experiment ``swincli`` (``MLFLOW_EXPERIMENT_NAME``
overrides), named after the run directory.

- **Where.** ``MLFLOW_TRACKING_URI`` when set (a server, a database, a folder). Otherwise a local file
  store in ``./mlruns`` of the directory the run started in: offline, and it works with
  ``mlflow-skinny``, whose default since MLflow 3 (``sqlite:///mlflow.db``) needs SQLAlchemy. MLflow 3
  refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``; it is set for this process when the
  store is a folder. View it with ``mlflow ui --backend-store-uri ./mlruns`` (the same variable set).
- **What.** Params: the resolved settings (``args.json``). Metrics: every numeric column of
  ``metrics.jsonl`` at step = epoch. Artifacts at the end: ``best.safetensors`` (``last`` without
  validation), ``curves.png`` and ``confusion.png``. Tags: the run directory, model, data sizes.
- **Resume.** ``RUN/mlflow.json`` keeps the store, experiment and run id; a resumed run reopens that
  MLflow run (a new one when it is gone, with a note). MLflow cannot delete a logged value, so steps
  already logged are never logged again: epochs that ``metrics.jsonl`` has and MLflow lacks are filled
  in, and epochs a killed attempt logged past its last saved state are kept (on a CPU, the redone epoch
  computes the same numbers). Settings changed on resume (``--epochs``) become tags ``resume.<name>``,
  since MLflow params cannot change.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from swincli.engine.run import outputs
from swincli.engine.tracking.base import RunEnd, RunInfo, Tracker, numeric, read_json
from swincli.errors import SwinError
from swincli.fileio import atomic_file

STATE_FILE = "mlflow.json"
EXPERIMENT = "swincli"
_BATCH = 100  # MLflow's limit on params (and tags) per log_batch call


class MlflowTracker(Tracker):
    name = "mlflow"

    def __init__(self) -> None:
        self.client = self.run_id = None
        self.experiment = EXPERIMENT
        self.logged = 0  # the last epoch MLflow has: never logged twice
        self.done = False

    def start(self, run: RunInfo, note: Callable[[str], None]) -> None:
        from mlflow.exceptions import MlflowException

        saved = read_json(run.run_dir / STATE_FILE) if run.resumed else None
        uri = saved["tracking_uri"] if saved and saved.get("tracking_uri") else default_uri()
        if saved and os.environ.get("MLFLOW_TRACKING_URI") not in (None, uri):
            note(f"mlflow: continuing the run's MLflow run in {uri} (not MLFLOW_TRACKING_URI)")
        if _is_folder(uri):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses folders without it
        try:
            self._open(run, uri, saved, note)
        except MlflowException as exc:
            raise SwinError(f"--log mlflow: {_first_line(exc)}",
                            hint="check MLFLOW_TRACKING_URI, or unset it for a local ./mlruns store") from None  # fmt: skip
        shown = uri.removeprefix("file://")
        env = "MLFLOW_ALLOW_FILE_STORE=true " if _is_folder(uri) else ""
        note(f"mlflow: logging to MLflow run {self.run_id[:8]} ({run.run_dir.name}) in experiment {self.experiment} "
             f"at {shown}; view it with: {env}mlflow ui --backend-store-uri {shown}")  # fmt: skip

    def _open(self, run: RunInfo, uri: str, saved: dict | None, note: Callable[[str], None]) -> None:
        from mlflow.entities import Param, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.client = client = MlflowClient(tracking_uri=uri)
        existing = None
        if saved and saved.get("run_id"):
            try:
                existing = client.get_run(saved["run_id"])
            except MlflowException:
                note(f"mlflow: run {saved['run_id'][:8]} is not in {uri}; starting a new MLflow run")
        params = {k: _param(v) for k, v in run.config.items() if k not in ("notes", "resume")}
        if existing is not None:
            self.run_id = existing.info.run_id
            self.experiment = client.get_experiment(existing.info.experiment_id).name
            client.update_run(self.run_id, status="RUNNING")
            old = existing.data.params
            changed = [RunTag(f"resume.{k}", v) for k, v in params.items() if k in old and old[k] != v]
            _batched(client, self.run_id, params=[Param(k, v) for k, v in params.items() if k not in old], tags=changed)
            self.logged = _last_step(client, self.run_id, existing.data.metrics)
        else:
            self.experiment = name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
            experiment = client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
            tags = {f"swincli.{k}": str(v) for k, v in run.info.items()}
            tags["swincli.run_dir"] = str(run.run_dir.resolve())
            self.run_id = client.create_run(experiment_id, run_name=run.run_dir.name, tags=tags).info.run_id
            _batched(client, self.run_id, params=[Param(k, v) for k, v in params.items()])
            with atomic_file(run.run_dir / STATE_FILE) as tmp:
                tmp.write_text(json.dumps({"tracking_uri": uri, "experiment_id": experiment_id,
                                           "run_id": self.run_id}, indent=2) + "\n")  # fmt: skip
        if run.resumed:  # epochs the run has and MLflow lacks (--log added on resume, or a gap)
            for row in outputs.read_metrics(run.run_dir):
                if row.get("epoch", 0) <= run.completed_epochs:
                    self.epoch(row)

    def epoch(self, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        step = int(row["epoch"])
        if step <= self.logged:
            return
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in numeric(row).items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.logged = step

    def finish(self, final: RunEnd) -> None:
        for key in ("best", "curves", "confusion"):
            if key in final.files:
                self.client.log_artifact(self.run_id, str(final.files[key]))
        self.client.set_terminated(self.run_id, status="FINISHED")
        self.done = True

    def close(self, error: BaseException | None = None) -> None:
        if self.client is None or self.run_id is None or self.done:
            return
        interrupted = isinstance(error, KeyboardInterrupt) or type(error).__name__ == "RunInterrupted"
        self.client.set_terminated(self.run_id, status="KILLED" if interrupted else "FAILED")
        self.done = True


def default_uri() -> str:
    """``MLFLOW_TRACKING_URI``, or a file store in ``./mlruns`` (absolute, so a resume from elsewhere finds it)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (Path.cwd() / "mlruns").resolve().as_uri()


def _is_folder(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri and not uri.startswith(("databricks", "sqlite:", "postgresql:"))


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's limit on a param value


def _batched(client, run_id: str, params=(), tags=()) -> None:
    params, tags = list(params), list(tags)
    for i in range(0, max(len(params), len(tags)), _BATCH):
        client.log_batch(run_id, params=params[i : i + _BATCH], tags=tags[i : i + _BATCH])


def _last_step(client, run_id: str, latest: dict[str, float]) -> int:
    """The highest step any metric of the run has (0 for none)."""
    steps = [m.step for key in latest for m in client.get_metric_history(run_id, key)]
    return max(steps, default=0)


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
