"""Run directories: auto-numbered (runs/train/exp, exp2, ...), claimed atomically, locked while a run writes.

A directory holding an earlier run (any of :data:`RUN_MARKERS`) is never written into unless the
user says ``--force`` (start over: the earlier run's files are removed by name, nothing else) or
``--resume DIR`` (continue it). While a run writes its directory it holds an exclusive lock (``lockf``) on
``DIR/.lock``, so a second run there fails at once, naming the first; the kernel drops the lock when
the process ends, however it ends. The lock file itself stays (removing it would race the next run).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from swincli.errors import SwinError

RUN_FILES = ("args.json", "metrics.jsonl", "curves.png", "last.safetensors", "best.safetensors", "resume.safetensors",
             "unreadable.txt", "adapter/adapter_model.safetensors", "adapter/adapter_config.json", "confusion.png",
             "mlflow.json")
RUN_MARKERS = ("args.json", "last.safetensors", "metrics.jsonl", "resume.safetensors")  # "a run was here"
LOCK_FILE = ".lock"


def claim_run_dir(base: str | Path = "runs/train", name: str = "exp") -> Path:
    """Create the first free ``exp``, ``exp2`` ... with one ``mkdir``: two runs started at once get two."""
    base = Path(base)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SwinError(f"cannot create {base}: {exc.strerror}", hint="pass -o DIR for the run directory") from None
    n = 1
    while True:
        candidate = base / (name if n == 1 else f"{name}{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1


def earlier_run(run_dir: Path) -> list[str]:
    """The files of ours in ``run_dir`` that say a run already wrote there."""
    return [name for name in RUN_MARKERS if (run_dir / name).exists()]


def check_run_dir(run_dir: Path, force: bool) -> None:
    """Refuse, before any work, an output that is a file, or a directory holding an earlier run (without --force)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise SwinError(f"{run_dir} is a file", hint="-o names the run directory")
    found = earlier_run(run_dir) if run_dir.is_dir() else []
    if found and not force:
        raise SwinError(
            f"{run_dir} holds an earlier run ({', '.join(found)})",
            hint=f"choose another -o, continue it with --resume {run_dir}, or pass --force to start over there",
        )


_HELD: set[str] = set()  # run directories this process has locked (POSIX locks do not exclude their own process)


class RunLock:
    """An exclusive lock on a run directory for as long as one run writes it.

    A POSIX record lock (``lockf``), not ``flock``: loader workers are forked while the run holds it,
    and a forked child shares an ``flock`` (it would outlive a killed run until every worker exited,
    refusing the resume), whereas record locks belong to the process and die with it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no advisory locks, runs are not guarded
            return self
        path = self.run_dir / LOCK_FILE
        key = str(path.resolve())
        if key in _HELD:
            raise SwinError(f"{self.run_dir} is in use by another run (pid {os.getpid()}, this process)",
                            hint="wait for it to finish, or choose another -o")  # fmt: skip
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise SwinError(f"cannot write {path}: {exc.strerror}", hint="choose another -o") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SwinError(f"{self.run_dir} is in use by another run ({holder})",
                            hint="wait for it to finish, or choose another -o") from None  # fmt: skip
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode())
        self._fd, self._key = fd, key
        _HELD.add(key)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # no stale holder named once the run is over
            os.close(self._fd)  # closing drops the lock
            self._fd = None
            _HELD.discard(self._key)


def open_run_dir(run_dir: Path | None, base: str, force: bool, resume: bool) -> RunLock:
    """Create (or claim the next numbered) run directory and lock it; check again under the lock, since another
    run may have finished there since :func:`check_run_dir`. A fresh run with ``force`` removes the earlier
    run's files, by name, so its directory never mixes two runs."""
    if run_dir is None:
        run_dir = claim_run_dir(base)
    else:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise SwinError(f"{run_dir} is a file", hint="-o names the run directory") from None
        except OSError as exc:
            raise SwinError(f"cannot create {run_dir}: {exc.strerror}", hint="choose another -o") from None
    lock = RunLock(run_dir).acquire()
    try:
        if not resume:
            check_run_dir(run_dir, force)
            for name in RUN_FILES if force else ():
                (run_dir / name).unlink(missing_ok=True)
    except BaseException:
        lock.release()
        raise
    return lock
