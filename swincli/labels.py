"""ImageNet class names and the official ImageNet-22k -> 1k head mapping, shipped as package data.

The lists are in the class-index order of every public checkpoint: 1000 ImageNet-1k WordNet ids, and
the 21841 ids of the ImageNet-22k (fall 2011) release used by the official 22k checkpoints.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


def _lines(name: str) -> list[str]:
    text = files("swincli.label_files.imagenet").joinpath(name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


@lru_cache(maxsize=None)
def _lemmas() -> dict[str, str]:
    return dict(line.split("\t", 1) for line in _lines("imagenet_synset_to_lemma.txt"))


@lru_cache(maxsize=None)
def imagenet_names(num_classes: int) -> tuple[str, ...] | None:
    """Human-readable names for a 1000- or 21841-class ImageNet head, else None."""
    synsets = {1000: "imagenet_synsets.txt", 21841: "imagenet22k_synsets.txt"}.get(num_classes)
    if synsets is None:
        return None
    lemmas = _lemmas()
    return tuple(lemmas.get(s, s) for s in _lines(synsets))


@lru_cache(maxsize=None)
def map_22k_to_1k() -> tuple[int, ...]:
    """Row i of a 21841-class head that becomes ImageNet-1k class i (the official map22kto1k.txt)."""
    rows = tuple(int(line) for line in _lines("map22kto1k.txt"))
    assert len(rows) == 1000, "map22kto1k.txt must have 1000 rows"
    return rows


def reset_head(model, num_classes: int) -> str:
    """Give ``model`` a head for ``num_classes`` and say what happened. A 21841-class ImageNet-22k head
    becomes the 1000-class ImageNet-1k head by keeping the official rows (and the 1k class names);
    any other change starts a zero-initialised head without class names."""
    old = model.config.num_classes
    if num_classes == old:
        return "head unchanged"
    if old == 21841 and num_classes == 1000:
        model.reset_classifier(1000, row_map=map_22k_to_1k())
        model.class_names = list(imagenet_names(1000))
        return "head 21841 -> 1000 classes with the official ImageNet-22k -> 1k row mapping"
    model.reset_classifier(num_classes)
    model.class_names = None
    if num_classes == 0:
        return f"head removed ({old} -> 0 classes): the model returns pooled features"
    return f"head {old} -> {num_classes} classes, zero-initialised"
