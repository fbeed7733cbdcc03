"""Classifying (or embedding) images: whatever files people have, in batches, never dying on one.

Inputs are files, folders (recursively), glob patterns, or ``-`` for a list of paths on standard input.
Images are decoded in DataLoader workers with the checkpoint's own evaluation preprocessing, so a
prediction equals what ``swin eval`` scores. A file that cannot be read yields one result with an
``error`` and the rest carry on.
"""

from __future__ import annotations

import glob
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from swincli.checkpoint import Preprocessing
from swincli.datasets.folder import IMAGE_SUFFIXES, load_rgb
from swincli.datasets.transforms import eval_transform


@dataclass
class Prediction:
    path: str
    top_k: list[dict[str, Any]] | None = None
    error: str | None = None
    features: torch.Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error} if self.error else {"path": self.path, "top_k": self.top_k}


def collect_inputs(inputs: Iterable[str], stdin=None) -> list[str]:
    """Expand folders (recursively, image files only), globs and ``-``; keep unknown paths (they fail later)."""
    out: list[str] = []
    for item in inputs:
        if item == "-":
            out += [line.strip() for line in (stdin or sys.stdin) if line.strip()]
            continue
        path = Path(item).expanduser()
        if path.is_dir():
            out += [str(p) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        elif not path.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(str(path), recursive=True))
            out += matches if matches else [item]
        else:
            out.append(str(path))
    return out


def describe_failure(path: str, exc: BaseException) -> str:
    """A short, user-facing reason a file could not be used."""
    p = Path(path)
    if not p.exists():
        return "no such file"
    if p.is_dir():
        return "is a directory"
    if p.stat().st_size == 0:
        return "empty file"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "image too large (decompression bomb)"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unrecognised format)"
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return "truncated image"
    return f"unreadable image ({type(exc).__name__}: {str(exc)[:80]})"


class _Images(Dataset):
    def __init__(self, paths: list[str], transform) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                return i, self.transform(load_rgb(self.paths[i])), None
        except Exception as exc:  # noqa: BLE001 - every failure becomes a per-file error line
            return i, None, describe_failure(self.paths[i], exc)


def _collate(items):
    ok = [(i, x) for i, x, err in items if err is None]
    errors = [(i, err) for i, _, err in items if err is not None]
    x = torch.stack([x for _, x in ok]) if ok else None
    return [i for i, _ in ok], x, errors


def class_names(model) -> list[str]:
    from swincli.labels import imagenet_names

    n = model.config.num_classes
    if model.class_names and len(model.class_names) == n:
        return list(model.class_names)
    return list(imagenet_names(n) or [f"class {i}" for i in range(n)])


@torch.no_grad()
def predict(model, paths: list[str], top_k: int = 5, batch_size: int = 32, device: str = "cpu",
            amp: torch.dtype | None = None, workers: int = 2, features: bool = False, on_batch=None) -> Iterator[Prediction]:  # fmt: skip
    """Yield one :class:`Prediction` per path, in input order."""
    prep = model.preprocessing or Preprocessing.for_config(model.config)
    transform = eval_transform(model.config.image_hw, prep.crop_pct, prep.mean, prep.std, prep.interpolation)
    loader = DataLoader(_Images(paths, transform), batch_size=batch_size, num_workers=workers, collate_fn=_collate)
    names = class_names(model) if not features and model.config.num_classes else []
    k = min(top_k, len(names)) if names else 0
    model.eval().to(device)
    for indices, x, errors in loader:
        results: dict[int, Prediction] = {i: Prediction(paths[i], error=err) for i, err in errors}
        if x is not None:
            with torch.autocast(torch.device(device).type, dtype=amp, enabled=amp is not None):
                feats = model.forward_head(model.forward_features(x.to(device)), pre_logits=True)
                logits = None if features or not names else model.head(feats)
            if logits is None:
                for row, i in enumerate(indices):
                    results[i] = Prediction(paths[i], features=feats[row].float().cpu())
            else:
                probs = logits.float().softmax(dim=-1)
                top = probs.topk(k, dim=-1)
                for row, i in enumerate(indices):
                    entries = [{"index": int(c), "label": names[int(c)], "prob": float(p)}
                               for p, c in zip(top.values[row], top.indices[row])]  # fmt: skip
                    results[i] = Prediction(paths[i], top_k=entries)
        if on_batch:
            on_batch(len(results))
        yield from (results[i] for i in sorted(results))
