"""Discovery of subcommand plugins: entry points in the group ``swincli.commands``.

Our own subcommands are entry points of the ``swincli`` distribution in the same group, so the
mechanism a third-party package uses is the one every built-in command goes through. Discovery only
reads package metadata; nothing is imported until a command is mounted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

GROUP = "swincli.commands"
OWN_DIST = "swincli"


@dataclass(frozen=True)
class PluginSpec:
    name: str
    value: str  # "module:attr"
    dist: str
    version: str
    entry_point: EntryPoint

    @property
    def builtin(self) -> bool:
        return self.dist == OWN_DIST


def discover() -> list[PluginSpec]:
    """Every entry point in the group, built-ins first, then by name."""
    specs = []
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        name = _normalise(dist.metadata["Name"]) if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        specs.append(PluginSpec(ep.name, ep.value, name, version, ep))
    return sorted(specs, key=lambda s: (not s.builtin, s.name, s.dist))


def disabled() -> set[str]:
    """Third-party plugins switched off by ``SWIN_DISABLE_PLUGINS`` (comma list of names, or ``*``)."""
    raw = os.environ.get("SWIN_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")
