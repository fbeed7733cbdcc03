"""``--data 'wds:/data/train-{000000..000099}.tar[::/data/val-{000000..000009}.tar]'``: webdataset shards.

The shards are read by the webdataset library: its URL expansion (brace ranges and lists; ``*`` and
``?`` glob local files), :func:`webdataset.gopen.gopen` (local files, ``file:``, ``pipe:CMD`` and
``http(s)://`` through curl) and its tar iterators, which group consecutive members sharing a key
(the path up to the first dot of the file name) into samples. A usable sample has an image
(``.jpg``, ``.jpeg``, ``.png`` or ``.webp``) and its class index as text (``.cls``). The pattern
after ``::`` is the validation set; without one the run has no validation.

At the start every train shard is streamed once (thread pool over shards; images are not decoded)
to count its samples: the epoch's length fixes the learning-rate schedule, the per-shard counts let
every rank and loader worker know its exact share (:mod:`swincli.datasets.wds_stream`). For remote
shards that first pass is a download: ``--epoch-size N`` skips it and takes N as the epoch's length.

Class names: ``classes.txt`` (one name per line, line N is class N) or ``classes.json`` (a list of
names, or ``{"name": index}``) in the folder of the first shard (local shards); without one,
``0 .. N-1`` from the largest label counted (with ``--epoch-size``: from the first shard's labels).
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

from swincli.errors import SwinError, SwinUsageError

PREFIX = "wds:"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
COUNT_THREADS = 8  # shards counted at once (local files: bound by disk; remote: by the network)
HINT = "pip install 'swincli[data]'"


def is_wds(data: str | None) -> bool:
    return data is not None and data.startswith(PREFIX)


def parse(spec: str) -> tuple[str, str | None]:
    """``wds:TRAIN[::VAL]`` -> (TRAIN, VAL or None)."""
    body = spec[len(PREFIX) :]
    train, sep, val = body.partition("::")
    if not train or (sep and not val):
        raise SwinUsageError(f"--data {spec}: expected wds:SHARDS or wds:TRAIN_SHARDS::VAL_SHARDS",
                             hint="e.g. --data 'wds:/data/train-{000000..000099}.tar::/data/val-{000000..000009}.tar'")  # fmt: skip
    return train, val or None


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


def _incomplete(found: ShardCounts, where: str) -> list[str]:
    if not found.incomplete:
        return []
    return [f"{where}: left out {len(found.incomplete)} sample(s) without an image or label: "
            f"{', '.join(found.incomplete[:3])}"]  # fmt: skip


def _empty(found: ShardCounts, pattern: str) -> SwinError:
    first = f"first left out: {found.incomplete[0]}" if found.incomplete else "the shards are empty"
    return SwinError(f"wds: the {len(found.urls)} shard(s) of {pattern} hold no sample with an image and a .cls label",
                     hint=f"a sample is KEY.jpg (or .png, .webp) and KEY.cls in the same tar; {first}")  # fmt: skip


def wds_data(spec: str, val_split: float = 0.0, epoch_size: int | None = None):
    """``--data wds:...`` for training: the train shards streamed (``Data.stream``), the validation
    shards after ``::`` streamed by evaluation (``Data.val``)."""
    from swincli.datasets.build import Data
    from swincli.datasets.wds_stream import ShardEval, ShardStream

    train_pattern, val_pattern = parse(spec)
    if val_split:
        raise SwinUsageError("--val-split does not apply to wds: shards",
                             hint="give the validation shards after '::': --data 'wds:TRAIN::VAL'")  # fmt: skip
    urls = shard_urls(train_pattern)
    found = count(urls) if epoch_size is None else first_labels(urls)
    if found.max_label < 0:
        raise _empty(found, train_pattern)
    classes, note = read_classes(urls, found.max_label, train_pattern, counted=epoch_size is None)
    if epoch_size is None:
        notes = [f"{train_pattern}: {found.total:,} samples in {len(urls)} shard(s)", note]
    else:
        notes = [f"{train_pattern}: {len(urls)} shard(s), not counted: --epoch-size {epoch_size:,} samples an epoch", note]
    warnings = _incomplete(found, train_pattern)
    val = None
    if val_pattern is None:
        notes.append("no validation shards (wds:TRAIN::VAL): no validation, best.safetensors is the last epoch's")
    else:
        val_urls = shard_urls(val_pattern)
        val_found = count(val_urls) if epoch_size is None else ShardCounts(val_urls, None)
        if epoch_size is None:
            if not val_found.total:
                raise _empty(val_found, val_pattern)
            if val_found.max_label >= len(classes):
                raise SwinError(f"{val_pattern} has label {val_found.max_label} but the training shards have "
                                f"{len(classes)} classes", hint="put a classes.txt beside the training shards")  # fmt: skip
            warnings += _incomplete(val_found, val_pattern)
        val = ShardEval(val_urls, val_found.counts, len(classes))
    stream = ShardStream(urls, found.counts, epoch_size or found.total, len(classes))
    return Data(stream, val, classes, notes=notes, warnings=warnings, stream=stream)


def wds_eval(spec: str):
    """``swin eval --data wds:...``: the shards after ``::`` if given, else the pattern's shards (streamed)."""
    from swincli.datasets.wds_stream import ShardEval

    train_pattern, val_pattern = parse(spec)
    pattern = val_pattern or train_pattern
    urls = shard_urls(pattern)
    found = count(urls)
    if not found.total:
        raise _empty(found, pattern)
    classes, note = read_classes(urls, found.max_label, pattern)
    said = [note] if note.endswith(f"0..{len(classes) - 1}") else []  # the class names were guessed: say so
    return ShardEval(urls, found.counts, len(classes)), classes, [*said, *_incomplete(found, pattern)]
