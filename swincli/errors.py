"""User-facing errors.

Every mistake a user can make (bad path, unknown model, impossible size, corrupt file) is raised as a
``SwinError``: the CLI prints its message and hint on one line and exits with ``exit_code``, never a
traceback (``SWIN_DEBUG=1`` shows it). The core raises these too, so Python users get the same diagnosis.
"""

from __future__ import annotations


class SwinError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class SwinUsageError(SwinError):
    """Options that cannot work together or values out of range: exit code 2, like click's usage errors."""

    exit_code = 2


class UnknownModelError(SwinError, KeyError):
    """A model name that is neither a canonical name nor an alias."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class ConfigError(SwinError, ValueError):
    """A model configuration that cannot be built (wrong lengths, impossible sizes)."""


class CheckpointError(SwinError):
    """A file that is missing, truncated, corrupt or not in our format."""
