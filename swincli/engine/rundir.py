"""Auto-numbered run directories: runs/train/exp, exp2, exp3 ... (the first free one)."""

from __future__ import annotations

from pathlib import Path


def next_run_dir(base: str | Path = "runs/train", name: str = "exp") -> Path:
    base = Path(base)
    n = 1
    while True:
        candidate = base / (name if n == 1 else f"{name}{n}")
        if not candidate.exists():
            return candidate
        n += 1
