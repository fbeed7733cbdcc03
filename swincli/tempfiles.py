"""Our temporary files: recognisable names, a registry of live ones, and their removal.

A temporary file is ``.NAME.swin-tmp-HOST-PID-RANDOM`` beside its target NAME. While one is live,
SIGTERM and SIGHUP (when they would kill the process anyway) first remove this process's live
temporary files; Ctrl-C reaches the writer as KeyboardInterrupt, which removes its own. One left by
SIGKILL is stale once its process is gone (or after a day untouched) and the next write of NAME
removes it. A name we did not make, or a live temporary file of another process, is never touched.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

TEMP_MARK = ".swin-tmp-"
STALE_AFTER_S = 24 * 3600  # a temporary file untouched this long is stale even if its pid is in use again
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_live: dict[Path, int] = {}  # temporary path -> the pid that owns it (a forked child owns none of them)
_installed: dict[int, Any] = {}  # signal -> the handler ours replaced
_registry_lock = threading.Lock()


def temp_path(path: Path) -> Path:
    """A fresh temporary name for ``path``, beside it: recognisable, tied to the target and to this process."""
    return path.with_name(f".{path.name}{TEMP_MARK}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` that a dead process left behind; returns what was removed."""
    prefix = f".{path.name}{TEMP_MARK}"
    removed = []
    try:
        entries = [e for e in os.scandir(path.parent or ".") if e.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        temp = Path(entry.path)
        if _is_stale(temp, entry.name[len(prefix) :]):
            discard(temp)
            removed.append(temp)
    return removed


def discard(temp: Path) -> None:
    """Remove one of our temporary files or folders (a folder only ever holds what we wrote into it)."""
    try:
        if temp.is_dir() and not temp.is_symlink():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
    except OSError:
        pass


def _is_stale(temp: Path, tail: str) -> bool:
    """Ours (by its name), not live in this process, and its process gone or untouched for a day."""
    parts = tail.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not re.fullmatch(r"[0-9a-f]{8}", parts[2]):
        return False  # not a name we make: never touch it
    if any(live.name == temp.name for live in list(_live)):  # live in this process (by its unique name)
        return False
    host, pid = parts[0], int(parts[1])
    if host == _HOST and (pid == os.getpid() or not _pid_alive(pid)):
        return True
    try:
        return time.time() - os.lstat(temp).st_mtime > STALE_AFTER_S
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


# ---------------------------------------------------------------------- the live registry and signals
def register(temp: Path) -> None:
    with _registry_lock:
        _live[temp] = os.getpid()
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                if sig not in _installed and signal.getsignal(sig) is signal.SIG_DFL:
                    _installed[sig] = signal.signal(sig, _on_signal)


def unregister(temp: Path) -> None:
    with _registry_lock:
        _live.pop(temp, None)
        if not _live and threading.current_thread() is threading.main_thread():
            for sig, previous in list(_installed.items()):
                if signal.getsignal(sig) is _on_signal:
                    signal.signal(sig, previous)
                del _installed[sig]


def _remove_live() -> None:
    """Remove this process's live temporary files (a forked worker inherits the registry, not the files)."""
    pid = os.getpid()
    for temp, owner in list(_live.items()):
        if owner == pid:
            discard(temp)


def _on_signal(signum: int, frame: Any) -> None:
    """SIGTERM/SIGHUP with the default action: remove our temporary files, then die of the signal as before."""
    _remove_live()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_remove_live)
