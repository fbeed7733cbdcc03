"""Writing what a user owns: a file or folder appears complete under its final name, or not at all.

Every output is written under a temporary name beside its target, ``.NAME.swin-tmp-HOST-PID-RANDOM``,
and renamed over the target once complete: a new file gets the umask's mode (0666 & ~umask), a
replaced one keeps its old mode, and a symlink is replaced, never written through. The temporary
name is removed when the write fails, on Ctrl-C and on SIGTERM/SIGHUP; one left by SIGKILL is
removed by the next write to the same target (see :mod:`swincli.tempfiles`).

A folder target (a Hugging Face model folder) is written as a temporary folder; when the folder
already exists (and ``replace``), each written file is renamed into it, one by one: the folder's
other files are never touched, and nothing is ever deleted recursively but our own temporary folder.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from swincli.errors import SwinError
from swincli.tempfiles import TEMP_MARK, discard, register, remove_stale_temps, temp_path, unregister

__all__ = ["TEMP_MARK", "atomic_dir", "atomic_file", "check_writable_target", "remove_stale_temps", "temp_path"]
_FULL = {errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}


def check_writable_target(path: str | os.PathLike, force: bool, *, folder: bool = False) -> Path:
    """Refuse, before any work is done, an output that exists (without ``force``), is of the wrong kind, or
    sits where nothing can be written; the one-line errors name the path."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if folder and not path.is_dir():
            raise SwinError(f"{path} is a file, not a folder", hint="this output is a folder: give a folder name")
        if not folder and path.is_dir():
            raise SwinError(f"{path} is a folder", hint="give a file name")
        if not force:
            raise SwinError(f"{path} already exists", hint="pass --force to overwrite it")
        if folder:
            _check_dir_writable(path, path)
    _check_dir_writable(path, _absolute(path).parent)  # where the temporary file goes
    return path


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed over ``path``."""
    path = Path(path)
    where = _absolute(path)
    _make_parent(path)
    if path.is_dir():
        raise SwinError(f"{path} is a folder", hint="give a file name")
    remove_stale_temps(where)
    tmp = temp_path(where)
    register(tmp)
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        mode = _mode_of(where, default=stat.S_IMODE(os.fstat(fd).st_mode))
        os.close(fd)
        yield tmp
        _sync_file(tmp, mode)
        _rename(tmp, where, path)
    except BaseException as exc:
        discard(tmp)
        if isinstance(exc, OSError) and exc.errno in _FULL:
            raise _cannot_write(path, exc) from None
        raise
    finally:
        unregister(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``. A new ``path`` gets it by one rename; an existing one
    (only with ``replace``) gets each written file renamed into it and keeps all its other files."""
    path = Path(path)
    _make_parent(path)
    if path.exists() and not path.is_dir():
        raise SwinError(f"{path} is a file, not a folder", hint="this output is a folder: give a folder name")
    if path.exists() and not replace:
        raise SwinError(f"{path} already exists", hint="pass --force to overwrite it")
    where = _absolute(path)
    remove_stale_temps(where)
    tmp = temp_path(where)
    register(tmp)
    try:
        try:
            os.mkdir(tmp, 0o777)  # the kernel applies the umask
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        file_mode = stat.S_IMODE(os.stat(tmp).st_mode) & 0o666  # the umask's, whatever mode a writer chose
        yield tmp
        for file in _files(tmp):
            _sync_file(file, file_mode)
        try:
            os.rename(tmp, where)  # replaces nothing but an empty folder
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not replace:
                raise _cannot_write(path, exc) from None
            _merge(tmp, where, path)
            discard(tmp)  # our temporary folder, empty by now
        _sync_dir(where.parent)
    except BaseException as exc:
        discard(tmp)
        if isinstance(exc, OSError) and exc.errno in _FULL:
            raise _cannot_write(path, exc) from None
        raise
    finally:
        unregister(tmp)


# ---------------------------------------------------------------------- folders
def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir() or p.is_symlink())


def _merge(tmp: Path, target: Path, shown: Path) -> None:
    """Rename each written file into ``target``; first refuse if one would land on a folder (nothing moved)."""
    names = [file.relative_to(tmp) for file in _files(tmp)]
    for name in names:
        for part in (name, *[p for p in name.parents if p != Path(".")]):
            dest = target / part
            if part == name and dest.is_dir() and not dest.is_symlink():
                raise SwinError(f"{shown / part} is a folder", hint="move it away, or choose another output folder")
            if part != name and dest.exists() and not dest.is_dir():
                raise SwinError(f"{shown / part} is a file", hint="move it away, or choose another output folder")
    for name in names:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if (mode := _mode_of(dest, default=None)) is not None:
            os.chmod(tmp / name, mode)  # a replaced file keeps the mode its owner gave it
        _rename(tmp / name, dest, shown / name)
    _sync_dir(target)


# ---------------------------------------------------------------------- helpers
def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def _check_dir_writable(path: Path, folder: Path) -> None:
    """The nearest existing folder at or above ``folder`` must be a folder we may create files in."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SwinError(f"cannot write {path}: {existing} is a file", hint="choose another output path")
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        read_only = False
    if read_only:
        raise SwinError(f"cannot write {path}: {existing} is on a read-only file system",
                        hint="choose another output path")  # fmt: skip
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SwinError(f"cannot write {path}: permission denied in {existing}", hint="choose another output path")


def _cannot_write(path: Path, exc: OSError) -> SwinError:
    hint = "free some space, or choose another output path" if exc.errno in _FULL - {errno.EROFS} else (
        "choose another output path")  # fmt: skip
    return SwinError(f"cannot write {path}: {exc.strerror or exc}", hint=hint)


def _mode_of(path: Path, default: int | None) -> int | None:
    """The permission bits of the file ``path`` replaces (a symlink is replaced, so its target's do not count)."""
    try:
        st = os.lstat(path)
    except OSError:
        return default
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else default


def _sync_file(path: Path, mode: int | None) -> None:
    if path.is_symlink():
        return
    if mode is not None:
        os.chmod(path, mode)  # writers may replace the file we created (safetensors writes 0600)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(folder: Path) -> None:
    """Make the renames durable; a file system that cannot fsync a folder is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rename(src: Path, dest: Path, shown: Path) -> None:
    try:
        os.replace(src, dest)
    except OSError as exc:
        raise _cannot_write(shown, exc) from None


def _absolute(path: Path) -> Path:
    """``.`` and ``..`` have no name to put a temporary one beside: work with the absolute path (links kept)."""
    return Path(os.path.abspath(path))
