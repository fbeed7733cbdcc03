"""ImageNet class names and the official ImageNet-22k -> 1k head mapping, shipped as package data.

The lists are in the class-index order of every public checkpoint: 1000 ImageNet-1k WordNet ids, and
the 21841 ids of the ImageNet-22k (fall 2011) release used by the official 22k checkpoints.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


def _lines(name: str) -> list[str]:
    text = files("swincli.data.imagenet").joinpath(name).read_text(encoding="utf-8")
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
