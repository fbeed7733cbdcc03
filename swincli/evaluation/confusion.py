"""Confusion matrices as data: which classes a model takes for which.

The counts come from :func:`swincli.evaluation.loop.evaluate` with ``confusion=True`` (the same forward
passes that give the accuracy). ``swin eval --format json`` and its per-class table read them through
:func:`summarise` and :func:`top_mistakes`; the PNG is drawn by :mod:`swincli.drawing.confusion_plot`.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch


def summarise(matrix: torch.Tensor, names: Sequence[str]) -> dict[str, Any]:
    """The classes with images or predictions, and the square matrix over them (rows true, columns
    predicted): it sums to the number of images scored. A 1000-class checkpoint scored on a 10-class
    folder (``--remap``) gives a dozen rows instead of a million zeros; ``index`` are the model outputs."""
    used = used_classes(matrix)
    return {
        "classes": [class_name(names, i) for i in used],
        "index": used,
        "matrix": matrix[used][:, used].tolist(),
    }


def top_mistakes(matrix: torch.Tensor, names: Sequence[str]) -> dict[int, str]:
    """Per true class with mistakes: the class it is most often predicted as, ``"dog (3, 12%)"``."""
    out = {}
    for i in used_classes(matrix):
        row = matrix[i].clone()
        images = int(row.sum())
        row[i] = 0
        j = int(row.argmax())
        if images and int(row[j]):
            out[i] = f"{class_name(names, j)} ({int(row[j])}, {100.0 * int(row[j]) / images:.0f}%)"
    return out


def used_classes(matrix: torch.Tensor) -> list[int]:
    """The classes with images or predictions (all of them when the matrix is empty)."""
    used = ((matrix.sum(0) + matrix.sum(1)) > 0).nonzero().flatten().tolist()
    return used or list(range(len(matrix)))


def class_name(names: Sequence[str], i: int) -> str:
    """A class's name, or its index when the checkpoint names fewer classes."""
    return str(names[i]) if i < len(names) else str(i)
