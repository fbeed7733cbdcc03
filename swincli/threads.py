"""Threads that fit the machine: torch's compute threads follow the cores no other process is using.

Why: torch's CPU kernels run OpenMP teams whose threads meet at a barrier after every parallel
region. When another busy process shares one of those cores, the thread on it is descheduled for a
whole time slice at every barrier and the team waits: on a 2-core machine with one busy neighbour,
two threads ran the demo at 25 img/s where one thread ran it at 120-170. So a run measures, at its
start and at every epoch, how many cores other processes keep busy (``/proc/stat`` minus our own
``/proc/self/stat``, over a fraction of a second while we are idle) and uses the rest. Loader
workers are processes that need cores too: in-memory data needs none, and on the CPU one worker
keeps decoding ahead of the model on a small machine. ``OMP_NUM_THREADS`` or ``--threads`` fix the
count and turn this off.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

SAMPLE_S = 0.15  # long enough for 10 ms scheduler ticks to resolve a busy core on each CPU


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. under taskset or a container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) scheduler ticks of all CPUs since boot, or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def _own_jiffies() -> int:
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime of every thread of this process


def busy_elsewhere(sample_s: float = SAMPLE_S) -> float | None:
    """Cores kept busy by other processes, measured over ``sample_s`` seconds; None if unknown."""
    before, own_before = _machine_jiffies(), None
    if before is None:
        return None
    try:
        own_before = _own_jiffies()
        time.sleep(sample_s)
        after, own_after = _machine_jiffies(), _own_jiffies()
    except OSError:
        return None
    if after is None or after[1] <= before[1]:
        return None
    busy = (after[0] - before[0]) - (own_after - own_before)
    cpus = os.cpu_count() or 1  # /proc/stat counts every CPU of the machine, not only ours
    return max(0.0, busy / (after[1] - before[1]) * cpus)


@dataclass
class ThreadPlan:
    threads: int
    fixed: bool  # set by the user (OMP_NUM_THREADS / --threads): never changed
    reason: str = ""


def plan_threads(requested: int | None = None, processes: int = 1, sample_s: float = SAMPLE_S) -> ThreadPlan:
    """Compute threads for one of ``processes`` training processes on this machine."""
    if requested:
        return ThreadPlan(requested, True, f"--threads {requested}")
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        n = int(os.environ["OMP_NUM_THREADS"])
        return ThreadPlan(n, True, f"OMP_NUM_THREADS={n}")
    cores = usable_cores()
    others = busy_elsewhere(sample_s)
    free = cores if others is None else max(1, min(cores, round(cores - others)))
    threads = max(1, free // max(1, processes))
    reason = "" if free == cores else f"other processes keep {cores - free} of {cores} cores busy"
    return ThreadPlan(threads, False, reason)


def default_workers(device_type: str, in_memory: bool, processes: int = 1) -> int:
    """Loader processes when ``--workers`` is not given."""
    if in_memory:
        return 0
    cores = max(1, usable_cores() // max(1, processes))
    if device_type == "cuda":  # the GPU computes; the cores decode
        return max(1, min(8, cores - 1))
    return 1 if cores <= 4 else min(4, cores // 4)


class ThreadWatch:
    """Chooses the thread count once, at the start of a run, and watches the load at every epoch.

    Once only, because the count is part of a run's arithmetic: reductions split across threads
    round differently, so changing it mid-run would break bit-for-bit reproducibility (and exact
    resume). The chosen count is saved with the run's settings; a resumed run reuses it. When the
    load changes later, the run says so once and names the flag, instead of changing silently.
    """

    def __init__(self, requested: int | None, processes: int, note, warn) -> None:
        self.processes, self.note, self.warn = processes, note, warn
        plan = plan_threads(requested, processes)
        self.threads, self.fixed, self.warned, self.checks = plan.threads, plan.fixed, False, 0
        if plan.reason and not plan.fixed:
            self.note(f"using {plan.threads} compute thread{'s' if plan.threads > 1 else ''} ({plan.reason}); "
                      "--threads N fixes the count")  # fmt: skip

    def apply(self) -> None:
        import torch

        torch.set_num_threads(self.threads)

    def check(self) -> None:
        """At an epoch start: warn once if other processes now take cores this run's threads need."""
        self.checks += 1
        if self.fixed or self.warned or self.checks == 1:  # the first epoch starts right after the plan
            return
        others = busy_elsewhere()
        if others is None:
            return
        free = max(1, round(usable_cores() - others)) // max(1, self.processes)
        if free < self.threads:
            self.warned = True
            self.warn(f"other processes now keep {usable_cores() - free * self.processes} of {usable_cores()} cores "
                      f"busy and this run's {self.threads} threads share them, which slows it down; resuming with "
                      f"--threads {max(1, free)} runs faster (its last bits then differ from an undisturbed run)")  # fmt: skip


def loader_workers(requested: int | None, device_type: str, batches: int, in_memory: bool = False) -> int:
    """``--workers`` for evaluation and prediction: as given, else none for one batch (a worker process costs
    more to start than it saves) or in-memory data, else :func:`default_workers`."""
    if requested is not None:
        return requested
    return 0 if batches <= 1 or in_memory else default_workers(device_type, in_memory)
