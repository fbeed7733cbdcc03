"""Image folders (``DIR/<class>/*``) that survive the images people actually have.

Unreadable files (truncated, empty, not images, decompression bombs) are found when the folder is
indexed, reported once with a count, and left out; a training run never dies on image 41,872.
Images are converted to RGB with their EXIF orientation applied.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageOps
from torch.utils.data import Dataset

from swincli.datasets.unreadable import Unreadable, reason
from swincli.errors import SwinError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def load_rgb(path: str | Path) -> Image.Image:
    """Open any image as RGB: EXIF rotation applied, first frame of animations, bombs refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.seek(0)
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                img = img.point(lambda v: v / 256).convert("L")  # 16-bit grey: keep the high byte
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                img = img.convert("RGBA")
                background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, img)
            return img.convert("RGB")


def probe(path: Path) -> str | None:
    """None if ``path`` decodes as an image, else a short reason."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.verify()
        return None
    except Image.DecompressionBombWarning:
        return "image too large (decompression bomb)"
    except Image.DecompressionBombError:
        return "image too large (decompression bomb)"
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "unreadable"
        return f"{type(exc).__name__}: {str(exc)[:80]}" if str(exc) else type(exc).__name__


def header_sides(paths: Sequence[Path], count: int = 64, seed: int = 0) -> list[int]:
    """The shorter side of up to ``count`` of ``paths`` (a seeded sample): cheap, because ``Image.open``
    reads the header and decodes no pixels. Files that fail to open are left out."""
    picked = random.Random(seed).sample(list(paths), min(count, len(paths)))
    sides = []
    for path in picked:
        try:
            with Image.open(path) as img:
                sides.append(min(img.size))
        except (OSError, ValueError, Image.DecompressionBombError):  # passed the start-up check, fails now: skip
            continue
    return sides


def class_folders(root: Path) -> list[str]:
    """The class names of ``root/<class>/<image>``: its visible sub-folders, sorted."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


class ImageFolder(Dataset):
    """``root/<class>/<image>``; classes sorted by name, unreadable images skipped and counted."""

    def __init__(self, root: str | Path, classes: list[str] | None = None, transform: Callable | None = None,
                 check: bool = True) -> None:  # fmt: skip
        self.root = Path(root)
        if not self.root.is_dir():
            raise SwinError(f"no such data folder: {self.root}", hint="expected DIR/<class>/<image> folders")
        found = class_folders(self.root)
        self.classes = classes if classes is not None else found
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.transform = transform
        self.samples: list[tuple[Path, int]] = []
        self.skipped: list[tuple[Path, str]] = []
        for name in found:
            if name not in self.class_to_idx:
                continue
            for path in sorted((self.root / name).rglob("*")):
                if path.suffix.lower() not in IMAGE_SUFFIXES or path.is_dir():
                    continue
                if not path.is_file():  # a FIFO, socket or device: opening it could block forever
                    self.skipped.append((path, "not a regular file" if path.exists() else "broken link"))
                    continue
                reason = probe(path) if check else None
                if reason:
                    self.skipped.append((path, reason))
                else:
                    self.samples.append((path, self.class_to_idx[name]))
        self.extra_classes = sorted(set(found) - set(self.class_to_idx))
        if not self.samples:
            raise SwinError(f"{self.root} has no readable images", hint="expected DIR/<class>/<image> folders")
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            image = load_rgb(path)
        except Exception as exc:  # noqa: BLE001 - passed the header check, fails in its pixels: skip it
            return Unreadable(str(path), reason(exc)), label
        return (self.transform(image) if self.transform else image), label
