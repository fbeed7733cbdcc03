"""Loose image files, as ``swin predict`` and ``--explain`` take them: whatever people have, never dying on one.

Inputs are files, folders (recursively), glob patterns, ``http(s)://`` URLs (downloaded once into the
cache, :mod:`swincli.fetch`), or ``-`` for a list of paths on standard input. Only regular files are
opened: a FIFO named ``x.png`` would block the reader forever, so it becomes an error instead. A file
that cannot be read yields its index with a reason, and the rest carry on.
"""

from __future__ import annotations

import glob
import sys
import warnings
from pathlib import Path
from typing import Iterable

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from swincli.datasets.folder import IMAGE_SUFFIXES, load_rgb
from swincli.fetch import FetchError, fetch, is_url


def collect_inputs(inputs: Iterable[str], stdin=None) -> list[str]:
    """Expand folders (recursively, by image suffix), globs and ``-``; keep URLs, and unknown paths and
    non-regular files (they become error lines later)."""
    out: list[str] = []
    for item in inputs:
        if item == "-":
            out += [line.strip() for line in (stdin or sys.stdin) if line.strip()]
            continue
        if is_url(item):
            out.append(item)
            continue
        path = Path(item).expanduser()
        if path.is_dir():
            out += [str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()]
        elif not path.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(str(path), recursive=True))
            out += matches if matches else [item]
        else:
            out.append(str(path))
    return out


def describe_failure(path: str, exc: BaseException) -> str:
    """A short, user-facing reason a file could not be used."""
    if isinstance(exc, FetchError):
        return str(exc)
    p = Path(path)
    reason = not_regular(p)
    if reason:
        return reason
    if p.stat().st_size == 0:
        return "empty file"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "image too large (decompression bomb)"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unrecognised format)"
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return "truncated image"
    return f"unreadable image ({type(exc).__name__}: {str(exc)[:80]})"


def not_regular(path: Path) -> str | None:
    """Why ``path`` cannot be opened as an image file without risk (None: a regular file). Checked before
    opening: opening a FIFO blocks until a writer comes, a device may never end."""
    if path.is_file():
        return None
    if path.is_dir():
        return "is a directory"
    return "not a regular file" if path.exists() else "no such file"


class ImageFiles(Dataset):
    """Items ``(index, tensor or None, error or None)``: a failure is a value, not an exception."""

    def __init__(self, paths: list[str], transform) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        local = self.paths[i]
        try:
            local = str(fetch(local)) if is_url(local) else local
            reason = not_regular(Path(local))
            if reason:
                return i, None, reason
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                return i, self.transform(load_rgb(local)), None
        except Exception as exc:  # noqa: BLE001 - every failure becomes a per-file error line
            return i, None, describe_failure(local, exc)


def collate_image_files(items):
    """A batch of :class:`ImageFiles` items: (indices read, stacked tensor or None, [(index, error)])."""
    ok = [(i, x) for i, x, err in items if err is None]
    errors = [(i, err) for i, _, err in items if err is not None]
    x = torch.stack([x for _, x in ok]) if ok else None
    return [i for i, _ in ok], x, errors
