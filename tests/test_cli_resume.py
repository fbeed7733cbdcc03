"""--resume refuses flags that would change the run, applies the safe ones; Ctrl-C saves and says how to resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from swincli.cli import main
from swincli.engine.run.interrupt import StopRequest


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("resume") / "run"
    assert main(["train", "--epochs", "2", "--max-steps", "1", "-o", str(run_dir), "-q"]) == 0
    return run_dir


def test_resume_refuses_flags_that_change_the_run(finished_run, capsys):
    before = (finished_run / "args.json").read_bytes()
    code = main(["train", "--resume", str(finished_run), "--epochs", "9", "--lr", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--lr 1 (the run has 0.002)" in err and "Traceback" not in err
    assert (finished_run / "args.json").read_bytes() == before


def test_resume_accepts_a_repeated_value_and_extends_epochs(tmp_path, finished_run, capsys):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    code = main(["train", "--resume", str(run_dir), "--epochs", "3", "--seed", "0", "--max-steps", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "extending the run from 2 to 3 epochs" in out
    assert json.loads((run_dir / "args.json").read_text())["epochs"] == 3


def test_resume_rules_on_settings():
    from swincli.engine.train_config import TrainConfig
    from swincli.engine.run.resume_flags import apply_resume_flags, explicit_fields
    from swincli.errors import SwinUsageError

    saved = TrainConfig(model="swin-nano", epochs=8, lr=2e-3, seed=3, workers=0)
    with pytest.raises(SwinUsageError, match="already completed 5 epochs"):
        apply_resume_flags(saved, TrainConfig(epochs=4), ["epochs"], 5, "R")
    with pytest.raises(SwinUsageError, match=r"--seed 0 \(the run has 3\)"):
        apply_resume_flags(saved, TrainConfig(seed=0), ["seed"], 5, "R")  # explicit, though the default
    with pytest.raises(SwinUsageError, match="continues in R"):
        apply_resume_flags(saved, TrainConfig(output="elsewhere"), ["output"], 5, "R")
    notes = apply_resume_flags(saved, TrainConfig(workers=2, device="cpu"), ["workers", "device"], 5, "R")
    assert saved.workers == 2 and saved.device == "cpu" and len(notes) == 2
    assert explicit_fields(TrainConfig(lr=1.0, seed=0)) == ["lr"]  # the Python API: what differs from defaults


def test_stop_request_defers_the_first_signal_and_not_the_second():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs as a background job (nohup ... &)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.requested and stop.signal == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_saves_at_a_step_boundary_and_prints_the_resume_command(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "swincli", "train", "--epochs", "2", "-o", str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    deadline = time.time() + 120
    while not (run_dir / "args.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(1.5)  # into the first epoch (125 steps, ~10 s here)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("interrupted: SIGINT: stopped at a step boundary and saved the run at epoch 1/2, step ")
    assert f"resume with: swin train --resume {run_dir}" in lines[-1] and "Traceback" not in err
    from swincli.engine.run.resume_state import load_resume

    progress = load_resume(run_dir)["progress"]
    assert progress["epoch"] == 0 and progress["step"] > 0
    assert main(["train", "--resume", str(run_dir), "--max-steps", str(progress["step"] + 1)]) == 0


# ------------------------------------------------------------------ the resumed epoch's row
def _colour_folder(root):
    """Three classes by dominant colour, 8 training and 2 validation images each (6 steps of 4 an epoch)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 2)):
        for name, rgb in (("red", (200, 30, 30)), ("green", (30, 200, 30)), ("blue", (30, 30, 200))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(np.array(rgb) + rng.normal(0, 40, (36, 36, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def _stop_at(monkeypatch, global_step):
    """What Ctrl-C does at ``global_step``: the step finishes, the state is saved, the run exits with 130."""
    import swincli.engine.trainer as trainer

    original = trainer._optimizer_step

    def stop(run, finite, step):
        if step == global_step:
            run.stop.signal = "SIGINT"
        return original(run, finite, step)

    monkeypatch.setattr(trainer, "_optimizer_step", stop)
    return lambda: monkeypatch.setattr(trainer, "_optimizer_step", original)


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("colours")
    args = ["--data", str(_colour_folder(root / "data")), "--epochs", "2", "--size", "32", "--window", "2",
            "--workers", "0", "--threads", "1", "-b", "4", "--seed", "3", "--drop-path", "0.1", "-q"]  # fmt: skip
    assert main(["train", "-o", str(root / "full"), *args]) == 0
    return args, _rows(root / "full")


@pytest.mark.parametrize("old_state", [False, True])
def test_a_resumed_epoch_writes_the_row_of_an_uninterrupted_one(colour_run, tmp_path, monkeypatch, old_state):
    """Issue 18.6b: the interrupted epoch's train_loss, images and time cover the whole epoch, not the steps
    after the resume; a resume state of an older version (no carried sums) still resumes."""
    args, full = colour_run
    run_dir = tmp_path / "run"
    undo = _stop_at(monkeypatch, 2)  # after step 3 of 6 in epoch 1
    assert main(["train", "-o", str(run_dir), *args]) == 130
    undo()
    state = run_dir / "resume.safetensors"
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(state), "pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    progress = json.loads(meta["progress"])
    assert progress["step"] == 3
    before = progress.get("epoch_stats", {}).get("seconds", 0.0)  # the interrupted part's time
    if old_state:
        progress.pop("epoch_stats", None)
        save_file(tensors, str(state), metadata={**meta, "progress": json.dumps(progress)})
    assert main(["train", "--resume", str(run_dir), "-q"]) == 0
    rows = _rows(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["train_loss"] == full[1]["train_loss"]  # epoch 2 ran whole after the resume
    images = [round(r["images_per_s"] * r["epoch_time_s"]) for r in rows]
    if old_state:  # as before: only the steps after the resume
        assert images == [12, 24] and rows[0]["train_loss"] != full[0]["train_loss"]
        return
    assert rows[0]["train_loss"] == full[0]["train_loss"]  # bit for bit on the CPU
    assert images == [24, 24]  # every image of the epoch, over the time of all its steps
    assert 0 < before < rows[0]["epoch_time_s"]
