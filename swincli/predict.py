"""Classifying (or embedding) images: whatever files people have, in batches, never dying on one.

Inputs are files, folders (recursively), glob patterns, ``http(s)://`` URLs (downloaded once into the
cache, :mod:`swincli.fetch`), or ``-`` for a list of paths on standard input. Only regular files are
opened: a FIFO named ``x.png`` would block the reader forever, so it is an error line instead.
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
from swincli.fetch import FetchError, fetch, is_url
from swincli.memory import ensure_fits, estimate


@dataclass
class Prediction:
    path: str
    top_k: list[dict[str, Any]] | None = None
    error: str | None = None
    features: torch.Tensor | None = None
    explanation: str | None = None  # the heatmap PNG of ``--explain`` (swincli.explain)

    def to_dict(self) -> dict[str, Any]:
        if self.error:
            return {"path": self.path, "error": self.error}
        out = {"path": self.path, "top_k": self.top_k}
        return out if self.explanation is None else {**out, "explanation": self.explanation}


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


class _Images(Dataset):
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
    need = estimate(model.config, min(batch_size, len(paths)), train=False, amp=amp is not None,
                    weights=str(device) != "cpu")  # fmt: skip
    ensure_fits(need, str(device), f"predicting in batches of {min(batch_size, len(paths))}", "a smaller --batch-size")
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
