"""Turning ``--data`` into train and validation sets.

``--data`` may be: nothing (the built-in shapes set), a folder with ``train/`` and ``val/`` class
folders, a single class-folder tree split by ``--val-split``, a torchvision dataset name,
downloaded into the cache when online, ``hf:NAME[:config]`` (Hugging Face ``datasets``, see
:mod:`swincli.datasets.hf`) or ``wds:SHARDS[::VAL_SHARDS]`` (webdataset tars, :mod:`swincli.datasets.wds`).
"""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset

from swincli.datasets import hf, wds
from swincli.datasets.base import DEFAULT_VAL_SPLIT, Data, cache_dir, hold_out
from swincli.datasets.folder import ImageFolder
from swincli.datasets.unreadable import skipped_message
from swincli.errors import SwinError, SwinUsageError

TORCHVISION = {
    "cifar10": ("CIFAR10", "train"),
    "cifar100": ("CIFAR100", "train"),
    "stl10": ("STL10", "split"),
    "flowers102": ("Flowers102", "split"),
    "oxford-pets": ("OxfordIIITPet", "split"),
    "food101": ("Food101", "split"),
    "imagenette": ("Imagenette", "split"),
}


def build_data(data: str | None, val_split: float = 0.0, seed: int = 0, size: int = 48,
               image_column: str | None = None, label_column: str | None = None,
               epoch_size: int | None = None) -> Data:  # fmt: skip
    """``--data`` as train and validation sets; ``image_column``/``label_column`` only for ``hf:``,
    ``epoch_size`` only for ``wds:``."""
    if epoch_size is not None and not wds.is_wds(data):
        raise SwinUsageError("--epoch-size applies to --data wds:... only",
                             hint="other data is counted: its epoch is one pass over it")  # fmt: skip
    if (image_column or label_column) and not hf.is_hf(data):
        flag = "--image-column" if image_column else "--label-column"
        raise SwinUsageError(f"{flag} applies to --data hf:... only", hint="image folders and wds: shards need no columns")
    if hf.is_hf(data):
        return hf.hf_data(data, val_split, seed, image_column, label_column)
    if wds.is_wds(data):
        return wds.wds_data(data, val_split, epoch_size)
    if data is None:
        from swincli.datasets.shapes import make_datasets

        tr, va = make_datasets(size=size, seed=seed, cache=True)
        return Data(tr, va, list(tr.classes), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), in_memory=True)
    if data.lower() in TORCHVISION and not Path(data).exists():
        return _torchvision(data.lower())
    root = Path(data).expanduser()
    if not root.exists():
        names = ", ".join(TORCHVISION)
        raise SwinError(f"no such data folder or dataset: {data}", hint=f"pass DIR/<class>/<image> folders or one of: {names}")
    if (root / "train").is_dir():
        out = _train_val(root)
    else:
        out = _one_tree(root, val_split or DEFAULT_VAL_SPLIT, seed, explicit=bool(val_split))
    return out


def eval_folder(data: str) -> Path | None:
    """The folder ``swin eval --data`` reads (``DIR/val`` if present, else DIR); None for a torchvision name,
    ``hf:`` or ``wds:``."""
    if data.startswith(("hf:", "wds:")) or (data.lower() in TORCHVISION and not Path(data).exists()):
        return None
    root = Path(data).expanduser()
    return root / "val" if (root / "val").is_dir() else root


def eval_data(data: str, classes: list[str] | None, notes: list[str] | None = None) -> tuple[Dataset, list[str]]:
    """The evaluation set of ``--data``: ``DIR/val`` if present, else the whole tree (or the test split;
    for ``hf:`` the validation split, for ``wds:A::B`` the shards B). What was assumed goes to ``notes``."""
    if hf.is_hf(data) or wds.is_wds(data):
        ds, names, said = hf.hf_eval(data) if hf.is_hf(data) else wds.wds_eval(data)
        if notes is not None:
            notes += said
        return ds, names
    folder = eval_folder(data)
    if folder is None:
        built = _torchvision(data.lower())
        return built.val, built.classes
    ds = ImageFolder(folder, classes=classes)  # what it skipped is said by the caller (ds.skipped)
    return ds, ds.classes


def _train_val(root: Path) -> Data:
    train = ImageFolder(root / "train")
    notes: list[str] = []
    warn: list[str] = []
    val = None
    if (root / "val").is_dir():
        val = ImageFolder(root / "val", classes=train.classes)
        if val.extra_classes:
            warn.append(f"val has classes not in train (ignored): {', '.join(val.extra_classes[:5])}")
        missing = sorted(set(train.classes) - {val.classes[t] for t in val.targets})
        if missing:
            warn.append(f"train classes with no val images: {', '.join(missing[:5])}")
    else:
        notes.append(f"{root} has train/ but no val/: no validation")
    for ds in (train, val):
        if ds is not None:
            _report_skipped(ds, warn)
    return Data(train, val, train.classes, notes=notes, warnings=warn)


def _one_tree(root: Path, fraction: float, seed: int, explicit: bool) -> Data:
    full = ImageFolder(root)
    warn: list[str] = []
    _report_skipped(full, warn)
    train, val = hold_out(full, fraction, seed, str(root))
    notes = [] if explicit else [f"no val/ folder: holding out {fraction:.0%} of {root} for validation (--val-split)"]
    return Data(train, val, full.classes, notes=notes, warnings=warn)


def _report_skipped(ds: ImageFolder, warn: list[str]) -> None:
    if ds.skipped:
        warn.append(skipped_message(ds.skipped, f"that cannot be read in {ds.root}"))


def _torchvision(name: str) -> Data:
    import torchvision.datasets as tvd

    cls_name, split_kind = TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    root = cache_dir() / name
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("SWIN_OFFLINE") == "1"

    def make(train: bool):
        if split_kind == "train":
            kwargs = {"train": train}
        else:
            kwargs = {"split": {"STL10": "train" if train else "test", "OxfordIIITPet": "trainval" if train else "test",
                                "Food101": "train" if train else "test", "Imagenette": "train" if train else "val",
                                "Flowers102": "train" if train else "val"}[cls_name]}  # fmt: skip
        try:
            return cls(str(root), download=not offline, **kwargs)
        except Exception as exc:  # noqa: BLE001 - URLError, RuntimeError("Dataset not found") ...
            raise SwinError(
                f"dataset {name} is not in {root} and could not be downloaded ({type(exc).__name__})",
                hint=f"run once with internet access, or copy it into {root}, or pass --data DIR",
            ) from None

    train, val = make(True), make(False)
    classes = list(getattr(train, "classes", None) or [str(i) for i in range(len(set(_targets(train))))])
    return Data(train, val, classes, in_memory=getattr(train, "data", None) is not None)  # CIFAR, STL10: arrays


def _targets(ds) -> list[int]:
    for attr in ("targets", "labels", "_labels"):
        if hasattr(ds, attr):
            return list(getattr(ds, attr))
    return [ds[i][1] for i in range(len(ds))]
