"""Shapes: the built-in dataset that ``swin train`` uses when given no data.

Why it exists: a first run should train something real without a download, network access or a
data directory, and give the same numbers on every machine. So the images are drawn on the fly,
each a pure function of ``(seed, split, index)``: same pixels in any process or worker.

Why it is not trivial: every image has a random shape colour and a random, darker background
colour, a background gradient, pixel noise and 0-2 small distractor blobs of any colour, and the
shape gets a random position, rotation and size. Sizes are normalised so that every class covers
the same range of pixel areas, so colour statistics (mean colour, colour histograms, fraction of
shape pixels) say nothing about the class: a model has to learn the shapes themselves. Some pairs
(circle/square, triangle/star, square/diamond, horizontal/vertical bars) differ only in outline or
orientation, so augmentations must not rotate by 90 degrees (flips are safe).
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image, ImageDraw

CLASSES: list[str] = [
    "circle", "square", "triangle", "cross", "ring",
    "star", "horizontal bars", "vertical bars", "diamond", "crescent",
]
TRAIN_LENGTH = 8000
VAL_LENGTH = 1000
SPLITS = ("train", "val")

_SUPERSAMPLE = 2  # draw masks at 2x and box-downsample: smooth edges, still well under 1 ms
_MAX_RADIUS = 0.44  # bounding radius of the largest shape, as a fraction of the image side
_MIN_RADIUS = 0.21  # bounding radius of the smallest circle, same units
_MAX_TILT = math.radians(15)  # orientation-defined classes (bars, diamond) only wobble this much

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights
_MIN_LUMA_GAP = 100.0  # between shape and background, out of 255

Point = tuple[float, float]


def _star() -> list[Point]:
    return [(r * math.cos(math.pi / 2 + k * math.pi / 5), r * math.sin(math.pi / 2 + k * math.pi / 5))
            for k, r in zip(range(10), [1.0, 0.42] * 5)]


def _cross(w: float = 0.3) -> list[Point]:
    a = math.sqrt(1 - w * w)
    quarter = [(a, -w), (a, w), (w, w)]
    pts: list[Point] = []
    for k in range(4):  # rotate the quarter outline by k * 90 degrees
        c, s = round(math.cos(k * math.pi / 2)), round(math.sin(k * math.pi / 2))
        pts += [(c * x - s * y, s * x + c * y) for x, y in quarter]
    return pts


def _bars(horizontal: bool) -> list[list[Point]]:
    h, gap = 0.3, 0.2
    half_w = math.sqrt(1 - (1.5 * h + gap) ** 2)
    bars = []
    for k in (-1, 0, 1):
        y0 = k * (h + gap) - h / 2
        rect = [(-half_w, y0), (half_w, y0), (half_w, y0 + h), (-half_w, y0 + h)]
        bars.append(rect if horizontal else [(y, x) for x, y in rect])
    return bars


# Unit outlines (bounding radius 1); circular classes are drawn as ellipses in _draw.
_POLYGONS: dict[str, list[list[Point]]] = {
    "square": [[(math.cos(a), math.sin(a)) for a in np.arange(4) * math.pi / 2 + math.pi / 4]],
    "triangle": [[(math.cos(a), math.sin(a)) for a in np.arange(3) * 2 * math.pi / 3 - math.pi / 2]],
    "cross": [_cross()],
    "star": [_star()],
    "horizontal bars": _bars(True),
    "vertical bars": _bars(False),
    "diamond": [[(0.0, -1.0), (0.6, 0.0), (0.0, 1.0), (-0.6, 0.0)]],
}
_FULL_ROTATION = {"circle", "square", "triangle", "cross", "ring", "star", "crescent"}


def _draw(name: str, side: int, cx: float, cy: float, r: float, angle: float) -> Image.Image:
    """Mask ('L', side x side) of one shape with bounding radius ``r`` around (cx, cy)."""
    mask = Image.new("L", (side, side), 0)
    d = ImageDraw.Draw(mask)

    def disk(x: float, y: float, rad: float, fill: int) -> None:
        d.ellipse([x - rad, y - rad, x + rad, y + rad], fill=fill)

    if name == "circle":
        disk(cx, cy, r, 255)
    elif name == "ring":
        disk(cx, cy, r, 255)
        disk(cx, cy, 0.6 * r, 0)
    elif name == "crescent":
        disk(cx, cy, r, 255)
        disk(cx + 0.5 * r * math.cos(angle), cy + 0.5 * r * math.sin(angle), 0.85 * r, 0)
    else:
        c, s = math.cos(angle), math.sin(angle)
        for poly in _POLYGONS[name]:
            d.polygon([(cx + r * (c * x - s * y), cy + r * (s * x + c * y)) for x, y in poly], fill=255)
    return mask


def _unit_areas() -> dict[str, float]:
    """Area of each shape at bounding radius 1, measured from the renderer so it matches exactly."""
    side = 400
    return {n: float(np.asarray(_draw(n, side, side / 2, side / 2, side / 2.2, 0.3)).mean() / 255 * side**2
                     / (side / 2.2) ** 2) for n in CLASSES}


_AREAS = _unit_areas()
# Pixel areas (fraction of the image) reachable by every class between the radius limits.
_AREA_RANGE = (_MIN_RADIUS**2 * max(_AREAS.values()), _MAX_RADIUS**2 * min(_AREAS.values()))


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    """A generator seeded by a stable hash (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(f"swincli-shapes/{seed}/{split}/{index}".encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Independent uniform RGB colours, redrawn until the shape is clearly lighter than the background.

    A luminance gap (not just any colour distance) matters: with near-isoluminant pairs, or with the
    polarity flipping from image to image, swin-nano needs several times the steps before it finds
    the edges. Hue and the colours themselves stay uniform, so they still say nothing about the class.
    """
    while True:  # only ~8% of random pairs pass, so test a batch per try
        fg, bg = rng.uniform(0, 255, (2, 32, 3))
        ok = np.flatnonzero((fg - bg) @ _LUMA >= _MIN_LUMA_GAP)
        if ok.size:
            return fg[ok[0]], bg[ok[0]]


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1), shared by every image of one size (read-only)."""
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def render(label: int, size: int, rng: np.random.Generator) -> Image.Image:
    """Draw one RGB image of class ``label``, consuming randomness only from ``rng``."""
    name = CLASSES[label]
    fg, bg = _colour_pair(rng)
    yy, xx = _grid(size)
    # Background: flat colour plus a linear gradient in a random direction.
    theta, amp = rng.uniform(0, 2 * math.pi), rng.uniform(0, 40)
    ramp = (xx - 0.5) * math.cos(theta) + (yy - 0.5) * math.sin(theta)
    img = bg.astype(np.float32) + amp * ramp[..., None]
    # Distractors: small blobs of random colour, under the shape so it is never occluded.
    for _ in range(int(rng.integers(0, 3))):
        bx, by, br = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), rng.uniform(0.03, 0.07)
        blob = ((xx - bx) ** 2 + (yy - by) ** 2) <= br * br
        img[blob] = rng.uniform(0, 255, 3)
    # The shape: the area is drawn independently of the class, the radius follows from it.
    area = rng.uniform(*_AREA_RANGE)
    r = math.sqrt(area / _AREAS[name])
    margin = r + 1.5 / size
    cx, cy = rng.uniform(margin, 1 - margin, 2)
    angle = rng.uniform(0, 2 * math.pi) if name in _FULL_ROTATION else rng.uniform(-_MAX_TILT, _MAX_TILT)
    side = size * _SUPERSAMPLE
    mask = _draw(name, side, cx * side, cy * side, r * side, angle).reduce(_SUPERSAMPLE)
    m = np.asarray(mask, dtype=np.float32)[..., None] / 255
    img = img * (1 - m) + fg.astype(np.float32) * m
    img += rng.uniform(2, 12) * rng.standard_normal(img.shape, dtype=np.float32)
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")


class ShapesDataset(torch.utils.data.Dataset):
    """Procedural shape classification: ``(PIL RGB image, label)`` pairs, deterministic per index.

    ``train`` and ``val`` are separate hash streams, so they never share an image. Labels cycle
    through the classes (``index % num_classes``), so every split is balanced.
    """

    def __init__(self, split: str = "train", size: int = 64, length: int | None = None, seed: int = 0,
                 transform: Callable[[Image.Image], Any] | None = None, cache: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {size}")
        self.split, self.size, self.seed, self.transform = split, size, seed, transform
        self.length = (TRAIN_LENGTH if split == "train" else VAL_LENGTH) if length is None else length
        if self.length < 0:
            raise ValueError(f"length must be >= 0, got {self.length}")
        self.classes: list[str] = list(CLASSES)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        self.targets: list[int] = [i % len(self.classes) for i in range(self.length)]
        # rendered images kept in this process (8000 x 48 px is ~55 MB): later epochs skip drawing
        self._cache: dict[int, Image.Image] | None = {} if cache else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        label = self.targets[index]
        image = self._cache.get(index) if self._cache is not None else None
        if image is None:
            image = render(label, self.size, _rng(self.seed, self.split, index))
            if self._cache is not None:
                self._cache[index] = image
        return (self.transform(image) if self.transform is not None else image), label

    def __repr__(self) -> str:
        return (f"ShapesDataset(split={self.split!r}, size={self.size}, length={self.length}, "
                f"seed={self.seed}, classes={len(self.classes)})")


def make_datasets(size: int = 64, seed: int = 0, train_length: int | None = None,
                  val_length: int | None = None, cache: bool = False) -> tuple[ShapesDataset, ShapesDataset]:
    """The train and val splits with matching size and seed (transforms are the caller's choice)."""
    return (ShapesDataset("train", size=size, length=train_length, seed=seed, cache=cache),
            ShapesDataset("val", size=size, length=val_length, seed=seed, cache=cache))
