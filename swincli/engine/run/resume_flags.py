"""What ``--resume`` does with the other flags: a resumed run is the saved run, changed only where safe.

Flags that would change the arithmetic of the run (model, data, learning rate, augmentation, seed...)
are refused: silently ignoring them (the old behaviour) leaves a user believing ``--lr 1`` took
effect. A few can change without breaking the run, and are applied with a note: ``--epochs``
extends it (the cosine schedule is stretched from the resumed step on), and ``--workers``,
``--device``, ``--threads``, ``--save-every`` and ``--log`` change how, not what, it computes (``--threads``
can change the last bits). A flag that repeats the saved value is accepted silently.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any, Iterable

from swincli.errors import SwinUsageError
from swincli.wording import plural

CHANGEABLE = ("epochs", "workers", "device", "threads", "save_every", "max_steps", "log")
NOT_SETTINGS = ("resume", "notes", "force", "output")  # how to start, not what the run is


def _comparable(value: Any) -> Any:
    """Values as the saved JSON holds them: tuples become lists, paths strings."""
    return json.loads(json.dumps(value, default=str))


def explicit_fields(cfg) -> list[str]:
    """For the Python API: the settings that differ from their defaults (the CLI knows exactly)."""
    default = type(cfg)()
    return [f.name for f in fields(cfg) if _comparable(getattr(cfg, f.name)) != _comparable(getattr(default, f.name))]


def apply_resume_flags(saved, requested, explicit: Iterable[str], completed_epochs: int, run_dir: str) -> list[str]:
    """Change ``saved`` (the run's own settings) where ``requested`` may; return the notes. Refuses the rest."""
    notes, refused = [], []
    for name in explicit:
        if name in NOT_SETTINGS or not hasattr(saved, name):
            continue
        new, old = getattr(requested, name), getattr(saved, name)
        if _comparable(new) == _comparable(old):
            continue
        if name not in CHANGEABLE:
            refused.append(f"--{name.replace('_', '-')} {_show(new)} (the run has {_show(old)})")
            continue
        if name == "epochs" and new is not None and new < completed_epochs:
            raise SwinUsageError(f"--epochs {new}: the run in {run_dir} already completed {plural(completed_epochs, 'epoch')}",
                                 hint=f"pass --epochs {completed_epochs + 1} or more to extend it")  # fmt: skip
        setattr(saved, name, new)
        notes.append(_note(name, old, new))
    output = getattr(requested, "output", None)
    if output is not None and _comparable(output).rstrip("/") != str(run_dir).rstrip("/"):
        refused.append(f"--output {output} (a resumed run continues in {run_dir})")
    if refused:
        raise SwinUsageError(
            f"--resume continues {run_dir} with its saved settings; {'; '.join(refused)}",
            hint=f"drop them, or start a new run with them; on resume only {', '.join('--' + c.replace('_', '-') for c in CHANGEABLE[:5])} may change",
        )
    return notes


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "unset" if value is None else str(_comparable(value))


def _note(name: str, old: Any, new: Any) -> str:
    if name == "epochs":
        return f"--epochs {new}: extending the run from {old} to {plural(new, 'epoch')} (the cosine schedule now ends at epoch {new})"
    if name == "threads":
        return f"--threads {new} (was {old}): the resumed run's last bits may differ from an uninterrupted one"
    if name == "log":
        return f"--log {','.join(new) if new else 'none'} (was {','.join(old) if old else 'none'})"
    return f"--{name.replace('_', '-')} {_show(new)} (was {_show(old)})"
