"""``--data hf:NAME[:config]``: a Hugging Face ``datasets`` image dataset, as map-style (PIL, label) pairs.

NAME is a local directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (read
with ``load_from_disk``) or a Hub dataset name (``load_dataset``; offline, ``HF_HUB_OFFLINE=1``, it is
read from the Hugging Face cache). The image column is the one with an ``Image`` feature and the label
column the ``ClassLabel`` one, unless ``--image-column`` / ``--label-column`` name them; class names
come from the ``ClassLabel``. Images are decoded here, not by ``datasets``, with the same code as
folder images (:func:`swincli.datasets.folder.load_rgb`: RGB, EXIF rotation, alpha on white), so the
same augmentation applies and an image that fails to decode is skipped and counted, never fatal.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from swincli.datasets.base import DEFAULT_VAL_SPLIT, Data, hold_out
from swincli.datasets.folder import load_rgb
from swincli.datasets.unreadable import Unreadable, reason
from swincli.errors import SwinError, SwinUsageError

PREFIX = "hf:"
HINT_INSTALL = "pip install 'swincli[data]'"
VAL_SPLITS = ("validation", "val", "valid", "test")
IMAGE_NAMES = ("image", "img", "picture", "jpg", "png")  # preferred when several columns are images
LABEL_NAMES = ("label", "labels", "fine_label", "class", "target", "cls")


def is_hf(data: str | None) -> bool:
    return data is not None and data.startswith(PREFIX)


def parse(spec: str) -> tuple[str, str | None]:
    """``hf:NAME[:config]`` -> (NAME, config). A local path containing ``:`` is taken whole."""
    body = spec[len(PREFIX) :]
    if not body:
        raise SwinUsageError("--data hf: needs a dataset name or a save_to_disk folder", hint="e.g. --data hf:cifar10")
    if Path(body).expanduser().exists() or ":" not in body:
        return body, None
    name, _, config = body.rpartition(":")
    return name, config or None


def _datasets():
    try:
        import datasets
    except ImportError:
        raise SwinError("--data hf:... needs the Hugging Face datasets package", hint=HINT_INSTALL) from None
    datasets.disable_progress_bars()
    return datasets


def load(spec: str) -> dict[str, Any]:
    """The dataset's splits by name (a single saved ``Dataset`` is the ``train`` split)."""
    datasets = _datasets()
    name, config = parse(spec)
    local = Path(name).expanduser()
    if not local.exists() and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise SwinError(f"no such folder: {local}", hint="--data hf:DIR takes a folder written by save_to_disk")
    if local.exists():
        try:
            loaded = datasets.load_from_disk(str(local))
        except Exception as exc:  # noqa: BLE001 - FileNotFoundError, a folder of something else ...
            raise SwinError(f"{local} is not a dataset written by save_to_disk ({type(exc).__name__}: {str(exc)[:120]})",
                            hint="write it with Dataset.save_to_disk(DIR) or DatasetDict.save_to_disk(DIR)") from None  # fmt: skip
        return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
    try:
        loaded = datasets.load_dataset(name, config)
    except Exception as exc:  # noqa: BLE001 - ConnectionError offline, DatasetNotFoundError, a missing config ...
        cache = os.environ.get("HF_DATASETS_CACHE") or str(Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "datasets")
        where = f"not in the Hugging Face cache ({cache}) and the Hub is offline" if offline else \
            f"could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"  # fmt: skip
        raise SwinError(f"dataset {name}{':' + config if config else ''} is {where}",
                        hint="load it once online (datasets.load_dataset) to fill the cache, or pass a folder written "
                             "by save_to_disk: --data hf:DIR") from None  # fmt: skip
    if isinstance(loaded, datasets.DatasetDict):
        return dict(loaded)
    return {"train": loaded}


def _kind(feature: Any) -> str:
    return type(feature).__name__


def _describe(features: dict[str, Any]) -> str:
    return ", ".join(f"{k} ({_kind(v)}{'/' + v.dtype if _kind(v) == 'Value' else ''})" for k, v in features.items())


def image_column(features: dict[str, Any], given: str | None, where: str) -> str:
    """The column holding the images: ``given``, or the ``Image`` feature (by a usual name if several)."""
    if given is not None:
        if given not in features:
            raise SwinUsageError(f"--image-column {given}: {where} has no such column; columns: {_describe(features)}")
        kind = _kind(features[given])
        if kind != "Image" and not (kind == "Value" and features[given].dtype in ("binary", "large_binary", "string")):
            raise SwinUsageError(f"--image-column {given} is a {kind} column, not images",
                                 hint="name an Image column, or one of image bytes or file paths")  # fmt: skip
        return given
    images = [k for k, v in features.items() if _kind(v) == "Image"]
    if not images:
        raise SwinError(f"{where} has no Image column; columns: {_describe(features)}",
                        hint="name the column with --image-column (Image, bytes or file paths)")  # fmt: skip
    return next((k for k in images if k.lower() in IMAGE_NAMES), images[0])


def label_column(features: dict[str, Any], given: str | None, where: str) -> str:
    """The column holding the labels: ``given``, the ``ClassLabel`` feature, or an int column with a usual name."""
    if given is not None:
        if given not in features:
            raise SwinUsageError(f"--label-column {given}: {where} has no such column; columns: {_describe(features)}")
        _check_label_kind(features, given)
        return given
    labels = [k for k, v in features.items() if _kind(v) == "ClassLabel"]
    if labels:
        return next((k for k in labels if k.lower() in LABEL_NAMES), labels[0])
    ints = [k for k, v in features.items() if k.lower() in LABEL_NAMES and _is_int(v)]
    if ints:
        return ints[0]
    raise SwinError(f"{where} has no ClassLabel column (nor an integer 'label' column); columns: {_describe(features)}",
                    hint="name the column with --label-column; string labels: cast them first with "
                         "ds.class_encode_column(NAME)")  # fmt: skip


def _is_int(feature: Any) -> bool:
    return _kind(feature) == "Value" and feature.dtype.startswith(("int", "uint"))


def _check_label_kind(features: dict[str, Any], column: str) -> None:
    feature = features[column]
    if _kind(feature) != "ClassLabel" and not _is_int(feature):
        raise SwinUsageError(f"--label-column {column} is a {_kind(feature)}"
                             f"{'/' + feature.dtype if _kind(feature) == 'Value' else ''} column, not class labels",
                             hint="use a ClassLabel or integer column; string labels: ds.class_encode_column(NAME), "
                                  "then save_to_disk")  # fmt: skip


def class_names(features: dict[str, Any], column: str, targets: list[int]) -> list[str]:
    """The ``ClassLabel``'s names; for an integer column ``0 .. max``."""
    feature = features[column]
    if _kind(feature) == "ClassLabel":
        return list(feature.names)
    return [str(i) for i in range(max(targets) + 1)] if targets else []


class HFImages(Dataset):
    """One split as (RGB PIL image, label) pairs; rows without a label (-1, None) are left out.

    The image column is read undecoded (bytes or a path) and decoded by :func:`load_rgb`, so a
    corrupt image becomes an :class:`Unreadable` marker (skipped and counted by the training loop
    and ``swin eval``) instead of an exception in a loader worker."""

    def __init__(self, split: Any, image: str, label: str, where: str) -> None:
        from datasets import Image

        table = split.select_columns([image, label])
        if _kind(table.features[image]) == "Image":
            table = table.cast_column(image, Image(decode=False))
        self.table, self.image, self.label, self.where = table, image, label, where
        raw = table.select_columns([label]).with_format("arrow")[:].column(label).to_pylist()  # 1M rows: 50 ms
        self.rows = [i for i, t in enumerate(raw) if t is not None and t >= 0]
        self.targets = [int(raw[i]) for i in self.rows]
        self.unlabelled = len(raw) - len(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        row = self.rows[index]
        label = self.targets[index]
        value = self.table[row][self.image]
        name = f"{self.where}[{row}]"
        try:
            if isinstance(value, dict):  # an Image feature, undecoded: {"bytes": ..., "path": ...}
                data, path = value.get("bytes"), value.get("path")
                if path:
                    name = f"{self.where}[{row}] ({path})"
                source = io.BytesIO(data) if data else path
            else:  # bytes, or a file path
                source = io.BytesIO(value) if isinstance(value, (bytes, bytearray)) else value
            if source is None:
                return Unreadable(name, "no image data"), label
            return load_rgb(source), label
        except Exception as exc:  # noqa: BLE001 - any decoder failure: skipped and counted, like folder images
            return Unreadable(name, reason(exc)), label


def pick_splits(splits: dict[str, Any], where: str) -> tuple[str, str | None]:
    """(train split, validation split or None): ``train``, then the first of validation/val/valid/test
    that has labels; a dataset of one split trains on it."""
    if "train" in splits:
        train = "train"
    elif len(splits) == 1:
        train = next(iter(splits))
    else:
        raise SwinError(f"{where} has no 'train' split; splits: {', '.join(splits)}",
                        hint="save the training rows as the 'train' split of a DatasetDict")  # fmt: skip
    return train, next((s for s in VAL_SPLITS if s in splits and s != train), None)


def hf_data(spec: str, val_split: float, seed: int, image: str | None = None, label: str | None = None):
    """``--data hf:...`` for training: the train split and a validation split (held out if there is none)."""

    splits = load(spec)
    where = spec
    train_name, val_name = pick_splits(splits, where)
    features = dict(splits[train_name].features)
    image = image_column(features, image, where)
    label = label_column(features, label, where)
    notes: list[str] = [f"{spec}: images from column '{image}', labels from '{label}'"]
    warnings: list[str] = []
    train = HFImages(splits[train_name], image, label, f"{spec}/{train_name}")
    if not len(train):
        raise SwinError(f"{where} split '{train_name}' has no labelled rows", hint="--label-column names the labels")
    classes = class_names(features, label, train.targets)
    val = None
    if val_name is not None:
        candidate = HFImages(splits[val_name], image, label, f"{spec}/{val_name}")
        if len(candidate):
            val = candidate
        else:
            notes.append(f"{spec}: split '{val_name}' has no labels: not used for validation")
    for ds in (train, val):
        if ds is not None and ds.unlabelled:
            warnings.append(f"{ds.where}: left out {ds.unlabelled} row(s) without a label")
        if ds is not None and ds.targets and max(ds.targets) >= len(classes):
            raise SwinError(f"{ds.where} has label {max(ds.targets)} but {len(classes)} classes",
                            hint="the label column's ClassLabel names must cover every label")  # fmt: skip
    if val is None:
        fraction = val_split or DEFAULT_VAL_SPLIT
        train_part, val_part = hold_out(train, fraction, seed, where)
        if not val_split:
            notes.append(f"{spec} has no validation split: holding out {fraction:.0%} of '{train_name}' (--val-split)")
        return Data(train_part, val_part, classes, notes=notes, warnings=warnings)
    if val_split:
        notes.append(f"--val-split ignored: {spec} has a '{val_name}' split")
    return Data(train, val, classes, notes=notes, warnings=warnings)


def hf_eval(spec: str, image: str | None = None, label: str | None = None) -> tuple[HFImages, list[str], list[str]]:
    """``swin eval --data hf:...``: the validation split (validation/val/valid/test), else the train split.
    Returns the images, the class names and notes."""
    splits = load(spec)
    train_name, val_name = pick_splits(splits, spec)
    name = val_name or train_name
    features = dict(splits[name].features)
    image = image_column(features, image, spec)
    label = label_column(features, label, spec)
    ds = HFImages(splits[name], image, label, f"{spec}/{name}")
    if not len(ds):
        raise SwinError(f"{spec} split '{name}' has no labelled rows", hint="evaluate on a split with labels")
    notes = [] if val_name else [f"{spec} has no validation split: evaluating on '{name}'"]
    return ds, class_names(features, label, ds.targets), notes
