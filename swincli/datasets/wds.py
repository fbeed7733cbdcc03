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

from swincli.datasets.base import Data
from swincli.datasets.wds_shards import ShardCounts, count, first_labels, read_classes, shard_urls
from swincli.datasets.wds_stream import ShardEval, ShardStream
from swincli.errors import SwinError, SwinUsageError

PREFIX = "wds:"


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
    train_pattern, val_pattern = parse(spec)
    pattern = val_pattern or train_pattern
    urls = shard_urls(pattern)
    found = count(urls)
    if not found.total:
        raise _empty(found, pattern)
    classes, note = read_classes(urls, found.max_label, pattern)
    said = [note] if note.endswith(f"0..{len(classes) - 1}") else []  # the class names were guessed: say so
    return ShardEval(urls, found.counts, len(classes)), classes, [*said, *_incomplete(found, pattern)]
