"""Threads that fit the machine: the plan follows the free cores, is fixed by the user, and is saved."""

import json

import pytest

from swincli import threads


@pytest.fixture
def cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)

    def set_busy(value):
        monkeypatch.setattr(threads, "busy_elsewhere", lambda sample_s=0.0: value)

    return set_busy


@pytest.mark.parametrize("busy, expected", [(0.0, 2), (0.3, 2), (0.9, 1), (1.0, 1), (2.0, 1), (None, 2)])
def test_plan_uses_the_cores_no_one_else_keeps_busy(cores, busy, expected):
    cores(busy)
    plan = threads.plan_threads()
    assert plan.threads == expected and not plan.fixed
    assert ("busy" in plan.reason) == (expected < 2)


def test_user_count_wins(cores, monkeypatch):
    cores(2.0)
    assert threads.plan_threads(3).threads == 3 and threads.plan_threads(3).fixed
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert threads.plan_threads().threads == 4 and threads.plan_threads().fixed


def test_processes_share_the_free_cores(cores):
    cores(0.0)
    assert threads.plan_threads(processes=2).threads == 1


def test_workers_default():
    assert threads.default_workers("cpu", in_memory=True) == 0
    assert threads.default_workers("cuda", in_memory=True) == 0
    assert threads.default_workers("cpu", in_memory=False) >= 1


@pytest.mark.slow  # a measurement: the machine's own load must be low
def test_busy_elsewhere_sees_a_busy_process():
    """A real measurement: a child spinning on one core shows up as about one busy core."""
    import subprocess
    import sys

    if threads.busy_elsewhere(0.05) is None:
        pytest.skip("no /proc/stat here")
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        busy = threads.busy_elsewhere(0.3)
    finally:
        spin.kill()
        spin.wait()
    assert 0.6 <= busy <= threads.usable_cores() + 0.5


def test_governor_warns_once_when_the_load_changes(cores):
    cores(0.0)
    notes, warns = [], []
    gov = threads.ThreadWatch(None, 1, notes.append, warns.append)
    assert gov.threads == 2 and not notes
    gov.check()  # the first epoch: just planned
    cores(1.0)
    gov.check()
    gov.check()
    assert len(warns) == 1 and "--threads 1" in warns[0]


def test_a_loaded_machine_trains_with_fewer_threads_and_saves_the_count(cores, tmp_path, capsys):
    from swincli.cli import main

    cores(1.0)
    run_dir = tmp_path / "run"
    code = main(["train", "--epochs", "1", "--max-steps", "1", "-o", str(run_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert "using 1 compute thread (other processes keep 1 of 2 cores busy)" in out
    assert json.loads((run_dir / "args.json").read_text())["threads"] == 1
    assert json.loads((run_dir / "args.json").read_text())["workers"] == 0  # in-memory shapes
