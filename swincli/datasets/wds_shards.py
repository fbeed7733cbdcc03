"""Webdataset shards as files: expanding the pattern, counting the samples, reading raw samples and
the class names. No decoding and no torch here: :mod:`swincli.datasets.wds_stream` streams the samples
into training and evaluation, :mod:`swincli.datasets.wds` turns ``--data wds:...`` into :class:`Data`.
"""

from __future__ import annotations

import glob
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

from swincli.errors import SwinError


IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


COUNT_THREADS = 8  # shards counted at once (local files: bound by disk; remote: by the network)


HINT = "pip install 'swincli[data]'"


def require_webdataset() -> None:
    try:
        import webdataset  # noqa: F401 - only whether it is there
    except ImportError:
        raise SwinError("--data wds:... needs the webdataset package", hint=HINT) from None


def local_path(url: str) -> Path | None:
    """The file a shard URL names on this machine (a plain path or ``file:``), None for pipe:/http(s)/..."""
    scheme = urlparse(url).scheme
    if scheme == "file":
        return Path(urlparse(url).path)
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):  # C:\\ on Windows
        return Path(os.path.expanduser(url))
    return None


def shard_urls(pattern: str) -> list[str]:
    """The shards of a pattern, in its order (webdataset's brace expansion; globs for local paths).
    Local shards must exist: one clear error up front, not a failed read in the middle of epoch 3."""
    require_webdataset()
    from webdataset.shardlists import expand_urls

    urls: list[str] = []
    for piece in expand_urls(pattern):
        path = local_path(piece)
        if path is not None and glob.has_magic(str(path)):
            urls += sorted(glob.glob(str(path)))
        else:
            urls.append(str(path) if path is not None and urlparse(piece).scheme == "" else piece)
    missing = [u for u in urls if (p := local_path(u)) is not None and not p.is_file()]
    if len(missing) == len(urls):  # also: a glob that matched nothing
        raise SwinError(f"wds: {pattern} matches no file", hint="check the folder and the {000000..000099} range")
    if missing:
        raise SwinError(f"wds: {len(missing)} of the {len(urls)} shards of {pattern} do not exist: {missing[0]}",
                        hint="fix the brace range to the shards you have")  # fmt: skip
    return urls


class ShardError(Exception):
    """A shard that could not be opened or read (wrapped into one SwinError line by the caller)."""

    def __init__(self, url: str, exc: BaseException) -> None:
        first = str(exc.args[0]) if getattr(exc, "args", None) else str(exc)
        super().__init__(f"wds: cannot read shard {url} ({type(exc).__name__}: {first.split(' @ ')[0][:120]})")
        self.url = url

    def swin(self) -> SwinError:
        return SwinError(str(self), hint="shards are uncompressed .tar files (webdataset.TarWriter); check the URL")


def _wanted(name: str) -> bool:
    """Only images and labels are read out of the tar; other members are skipped in the stream."""
    from webdataset.tariterators import base_plus_ext

    ext = base_plus_ext(name)[1]
    return ext is not None and (ext.lower() in IMAGE_EXTS or ext.lower() == "cls")


def raw_samples(url: str, bad: list[str] | None = None) -> Iterator[tuple[str, bytes, int]]:
    """(key, image bytes, label) of every usable sample of one shard, in tar order, grouped by
    webdataset. Samples without an image or an integer label are left out (named in ``bad``). Any
    failure to open or read the shard raises :class:`ShardError`."""
    from webdataset.tariterators import tarfile_samples

    samples = tarfile_samples([{"url": url}], select_files=_wanted)
    while True:
        try:
            sample = next(samples)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - gopen, tarfile, a pipe's exit status: all mean "this shard"
            raise ShardError(url, exc) from None
        key = sample["__key__"]
        image = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
        why, label = ("no image" if image is None else "no .cls label" if "cls" not in sample else None), -1
        if why is None:
            try:
                label = int(sample["cls"][:64].decode("utf-8", "replace").strip())
                why = "negative label" if label < 0 else None
            except ValueError:
                why = "its .cls is not an integer"
        if why is not None:
            if bad is not None:
                bad.append(f"{os.path.basename(url)}:{key} ({why})")
            continue
        yield key, image, label


@dataclass
class ShardCounts:
    """What the counting pass found: samples per shard (None when not counted), labels, left-out samples."""

    urls: list[str]
    counts: list[int] | None
    max_label: int = -1
    incomplete: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts or [])


def count(urls: list[str]) -> ShardCounts:
    """Stream every shard once (images not decoded) and count its usable samples."""

    def one(url: str) -> tuple[int, int, list[str]]:
        bad: list[str] = []
        n, top = 0, -1
        for _, _, label in raw_samples(url, bad):
            n, top = n + 1, max(top, label)
        return n, top, bad

    workers = min(COUNT_THREADS, len(urls))
    try:
        with ThreadPoolExecutor(workers) as pool:
            found = list(pool.map(one, urls))
    except ShardError as exc:
        raise exc.swin() from None
    return ShardCounts(urls, [n for n, _, _ in found], max((t for _, t, _ in found), default=-1),
                       [b for _, _, bad in found for b in bad])  # fmt: skip


def first_labels(urls: list[str]) -> ShardCounts:
    """``--epoch-size``: no count; the first shard's labels only (for class names without classes.txt)."""
    bad: list[str] = []
    try:
        top = max((label for _, _, label in raw_samples(urls[0], bad)), default=-1)
    except ShardError as exc:
        raise exc.swin() from None
    return ShardCounts(urls, None, top, bad)


def read_classes(urls: list[str], max_label: int, where: str, counted: bool = True) -> tuple[list[str], str]:
    """Class names from ``classes.txt`` / ``classes.json`` beside the first (local) shard, else ``0 .. max label``."""
    first = local_path(urls[0])
    folder = first.parent if first is not None else None
    txt, js = (folder / "classes.txt", folder / "classes.json") if folder is not None else (None, None)
    if txt is not None and txt.is_file():
        names = [line.strip() for line in txt.read_text(encoding="utf-8").splitlines()]
        while names and not names[-1]:
            names.pop()
        source = str(txt)
    elif js is not None and js.is_file():
        try:
            value = json.loads(js.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SwinError(f"{js} is not valid JSON ({exc})", hint='a list of names, or {"name": index}') from None
        if isinstance(value, dict):
            by_index = {int(i): str(n) for n, i in value.items()}
            names = [by_index.get(i, str(i)) for i in range(max(by_index) + 1)] if by_index else []
        elif isinstance(value, list):
            names = [str(n) for n in value]
        else:
            raise SwinError(f"{js} holds a {type(value).__name__}", hint='a list of names, or {"name": index}')
        source = str(js)
    else:
        n = max_label + 1
        whence = "" if counted else " (labels of the first shard: put a classes.txt beside local shards to be sure)"
        return [str(i) for i in range(n)], f"{where}: no classes.txt beside the shards: classes named 0..{n - 1}{whence}"
    if max_label >= len(names):
        raise SwinError(f"{where} has label {max_label} but {source} names {len(names)} classes",
                        hint="one class name per line, line N for label N")  # fmt: skip
    return names, f"{where}: class names from {source}"
