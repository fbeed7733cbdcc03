"""Command line entry point: ``swin`` and ``python -m swincli``.

``main`` maps every known problem to a one-line message and an exit code (1 for user errors, 2 for
usage errors, 130 for Ctrl-C); ``SWIN_DEBUG=1`` adds the traceback. Importing this package must stay
cheap: torch is imported only inside the commands that need it.
"""

from __future__ import annotations

import errno
import os
import traceback

import typer

from swincli.api import SwinError

# file-system refusals a user fixes by choosing another path (read-only, full, over quota)
_USER_ERRNOS = {errno.EROFS, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EACCES, errno.EPERM}


def _debug() -> bool:
    return os.environ.get("SWIN_DEBUG", "").lower() in ("1", "true", "yes", "on")


def _fail(message: str, code: int, label: str = "error") -> int:
    if _debug():
        traceback.print_exc()
    typer.echo(f"{typer.style(label + ':', fg='red' if label == 'error' else 'yellow', bold=True)} {message}", err=True)
    return code


def main(argv: list[str] | None = None) -> int:
    from swincli.cli.app import build_app

    command = typer.main.get_command(build_app())
    try:
        result = command.main(args=argv, prog_name="swin", standalone_mode=False)
    except SwinError as exc:
        return _fail(exc.one_line(), exc.exit_code, getattr(exc, "label", "error"))
    except KeyboardInterrupt:
        typer.echo("Aborted.", err=True)
        return 130
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename}", 1)
    except OSError as exc:
        if exc.errno not in _USER_ERRNOS:
            return _click_exit(exc)
        where = f"cannot write {exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc} (hint: choose another output path, or free some space)", 1)
    except Exception as exc:  # noqa: BLE001
        return _click_exit(exc)
    return result if isinstance(result, int) else 0


def _click_exit(exc: Exception) -> int:
    """Exit codes for click's own exceptions (Typer may vendor click, so match by shape, not class)."""
    code = getattr(exc, "exit_code", None)
    kind = type(exc).__name__
    if kind == "Exit" and isinstance(code, int):
        return code
    if kind == "Abort":
        typer.echo("Aborted.", err=True)
        return 130
    if hasattr(exc, "format_message") and isinstance(code, int):  # usage errors (exit code 2) and the like
        ctx = getattr(exc, "ctx", None)
        hint = f" (hint: see {ctx.command_path} --help)" if ctx is not None and code == 2 else ""
        return _fail(exc.format_message() + hint, code)
    hint = "" if _debug() else " (hint: set SWIN_DEBUG=1 for the traceback, and please report it)"
    return _fail(f"unexpected {type(exc).__name__}: {exc}{hint}", 1)


__all__ = ["main"]
