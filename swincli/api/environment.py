"""``swin env`` and the plugin table: facts about this installation as plain data."""

from __future__ import annotations

from typing import Any


def environment() -> dict[str, Any]:
    """Versions, hardware and installed plugins: the facts a bug report needs."""
    from swincli.environment import collect

    return collect()


def command_plugins() -> tuple[list[Any], set[str]]:
    """The entry points of the ``swincli.commands`` group (ours first) and the names ``SWIN_DISABLE_PLUGINS``
    turns off: what the CLI mounts as subcommands."""
    from swincli.plugins import discover, disabled

    return list(discover()), disabled()
