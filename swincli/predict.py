"""Classifying (or embedding) images in batches: one result per input, in input order.

Inputs are read by :mod:`swincli.datasets.image_files` (files, folders, globs, URLs, stdin), decoded in
DataLoader workers with the checkpoint's own evaluation preprocessing, so a prediction equals what
``swin eval`` scores. A file that cannot be read yields one result with an ``error`` and the rest
carry on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader

from swincli.datasets.image_files import ImageFiles, collate_image_files
from swincli.datasets.transforms import eval_transform_for
from swincli.memory import ensure_fits, estimate


PROB_DIGITS = 6  # what float32 softmax resolves; the same in JSON as in CSV, for a checkpoint and its export


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
    loader = DataLoader(ImageFiles(paths, eval_transform_for(model)), batch_size=batch_size, num_workers=workers, collate_fn=collate_image_files)
    names = class_names(model) if not features and model.config.num_classes else []
    k = min(top_k, len(names)) if names else 0
    exported = getattr(model, "exported", False)  # its runtime plans its own memory and precision
    if not exported:
        need = estimate(model.config, min(batch_size, len(paths)), train=False, amp=amp is not None,
                        weights=str(device) != "cpu")  # fmt: skip
        ensure_fits(need, str(device), f"predicting in batches of {min(batch_size, len(paths))}", "a smaller --batch-size")
    model.eval().to(device)
    for indices, x, errors in loader:
        results: dict[int, Prediction] = {i: Prediction(paths[i], error=err) for i, err in errors}
        if x is not None:
            if exported:
                feats, logits = None, model(x.to(device))
            else:
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
                    entries = [{"index": int(c), "label": names[int(c)], "prob": round(float(p), PROB_DIGITS)}
                               for p, c in zip(top.values[row], top.indices[row])]  # fmt: skip
                    results[i] = Prediction(paths[i], top_k=entries)
        if on_batch:
            on_batch(len(results))
        yield from (results[i] for i in sorted(results))
