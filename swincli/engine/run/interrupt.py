"""Ctrl-C and SIGTERM during training: finish the step, save where the run stands, say how to resume.

A signal that arrives in the middle of an optimizer step would leave the weights, the optimizer and
the RNG out of step with each other, so the first one only raises a flag: the loop saves the resume
state at the next step boundary and stops with :class:`RunInterrupted` (exit code 130) naming the
resume command. A second Ctrl-C stops at once, and the message then points at the last state saved.
Loader workers ignore SIGINT (a terminal sends it to the whole process group): they keep feeding
the step being finished and are shut down with their loader.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from swincli.errors import SwinError


class RunInterrupted(SwinError):
    """The run stopped on a signal; the message says where and how to resume."""

    exit_code = 130
    label = "interrupted"


def ignore_sigint(_worker_id: int = 0) -> None:
    """``worker_init_fn`` for loader workers: the main process decides when to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StopRequest:
    """Defers SIGINT/SIGTERM to a step boundary while active (main thread of one process only)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequest":
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:  # the second one: stop now
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    @property
    def requested(self) -> bool:
        return self.signal is not None
