"""The confusion matrix as a PNG, drawn with Pillow (no matplotlib at run time).

Rows are the true classes, columns the predicted ones; a cell's colour is its share of the row (the
true class's images), its number the count. Up to :data:`MAX_DRAWN` classes are drawn; beyond that
the figure shows the :data:`MAX_DRAWN` classes with the most mistakes (as the true or the predicted
class), and says so in its title, while the JSON (:mod:`swincli.evaluation.confusion`) always holds
every class. ``swin eval --plot`` and run tracking (``--log``) both draw through :func:`draw_confusion`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw

from swincli.drawing.fonts import INK, MUTED, place_text, scaled_font
from swincli.evaluation.confusion import class_name, used_classes
from swincli.fileio import atomic_file

MAX_DRAWN = 100
LABEL_W = 150  # pixels for the class names left of the rows and above the columns (longer names are cut)
TITLE_H, AXIS_H, ACC_W, PAD = 30, 22, 64, 12
EMPTY, FULL = (255, 255, 255), (8, 48, 107)  # share 0 and 1 of a row: white to dark blue


def drawn_classes(matrix: torch.Tensor, limit: int = MAX_DRAWN) -> list[int]:
    """The classes a figure shows: those with images or predictions, or, past ``limit``, the ``limit``
    with the most mistakes as the true or the predicted class (ties: lower index), in index order."""
    used = used_classes(matrix)
    if len(used) <= limit:
        return used
    off = matrix.clone()
    off.fill_diagonal_(0)
    mistakes = off.sum(0) + off.sum(1)
    ranked = sorted(used, key=lambda i: (-int(mistakes[i]), i))
    return sorted(ranked[:limit])


def figure_size(classes: int) -> tuple[int, int]:
    """The PNG's (width, height) for ``classes`` drawn classes: a function of the count alone."""
    cell = _cell(classes)
    side = classes * cell
    return AXIS_H + LABEL_W + side + ACC_W + PAD, TITLE_H + AXIS_H + LABEL_W + side + PAD


def draw_confusion(matrix: torch.Tensor, names: Sequence[str], path: str | os.PathLike,
                   title: str | None = None) -> str | None:  # fmt: skip
    """Draw the matrix (see the module docstring) and write ``path`` atomically; returns a note when only
    the most confused :data:`MAX_DRAWN` classes fit, else ``None``."""
    shown = drawn_classes(matrix)
    total = len(used_classes(matrix))
    note = None
    if len(shown) < total:
        note = f"the confusion matrix shows the {len(shown)} most confused of {total} classes (all are in the JSON)"
    heading = title or "confusion matrix"
    heading += f" ({len(shown)} most confused of {total} classes)" if note else ""
    sub = matrix[shown][:, shown].double()
    rows = matrix[shown].sum(1).double()  # the whole row: a shown class's images, wherever they went
    _render(sub, rows, [class_name(names, i) for i in shown], heading).save_png(path)
    return note


class _Figure:
    def __init__(self, image: Image.Image, scale: int) -> None:
        self.image, self.scale = image, scale

    def save_png(self, path: str | os.PathLike) -> Path:
        image = self.image
        if self.scale > 1:
            width, height = image.size
            image = image.resize((width // self.scale, height // self.scale), Image.Resampling.LANCZOS)
        with atomic_file(path) as tmp:
            image.save(tmp, format="PNG")
        return Path(path)


def _render(sub: torch.Tensor, rows: torch.Tensor, labels: list[str], heading: str) -> _Figure:
    n = len(labels)
    cell = _cell(n)
    font, s = scaled_font(max(8, min(13, cell - 3)))
    big, _ = scaled_font(14)
    width, height = figure_size(n)
    img = Image.new("RGB", (width * s, height * s), "white")
    draw = ImageDraw.Draw(img)
    x0, y0 = (AXIS_H + LABEL_W) * s, (TITLE_H + AXIS_H + LABEL_W) * s  # the matrix's top-left corner
    c = cell * s
    place_text(draw, (width * s / 2, TITLE_H * s / 2), heading, big, INK, ax=0.5, ay=0.5)
    place_text(draw, (x0 + n * c / 2, (TITLE_H + AXIS_H / 2) * s), "predicted class", big, MUTED, ax=0.5, ay=0.5)
    _vertical(img, "true class", big, MUTED, (AXIS_H * s // 2, y0 + n * c // 2))
    place_text(draw, (x0 + n * c + 8 * s, y0 - 6 * s), "acc %", font, MUTED, ay=1.0)
    for i, label in enumerate(labels):
        short = _fit(draw, label, font, (LABEL_W - 6) * s)
        place_text(draw, (x0 - 6 * s, y0 + i * c + c / 2), short, font, INK, ax=1.0, ay=0.5)
        _vertical(img, short, font, INK, (x0 + i * c + c // 2, y0 - 6 * s), bottom=True)
        total = float(rows[i])
        acc = f"{100.0 * float(sub[i, i]) / total:.1f}" if total else "-"
        place_text(draw, (x0 + n * c + 8 * s, y0 + i * c + c / 2), acc, font, INK, ay=0.5)
        for j in range(n):
            count = float(sub[i, j])
            share = count / total if total else 0.0
            colour = tuple(round(a + (b - a) * share) for a, b in zip(EMPTY, FULL))
            box = (x0 + j * c, y0 + i * c, x0 + (j + 1) * c, y0 + (i + 1) * c)
            draw.rectangle(box, fill=colour, outline=(235, 235, 235) if cell >= 14 else None)
            if count and cell >= 22:
                text = str(int(count))
                if draw.textlength(text, font=font) <= c - 4 * s:
                    fill = (255, 255, 255) if share > 0.5 else INK
                    place_text(draw, (box[0] + c / 2, box[1] + c / 2), text, font, fill, ax=0.5, ay=0.5)
    draw.rectangle((x0, y0, x0 + n * c, y0 + n * c), outline=MUTED, width=s)
    return _Figure(img, s)


def _vertical(img: Image.Image, text: str, font, fill, at: tuple[int, int], bottom: bool = False) -> None:
    """Text rotated to read bottom-up, centred on ``at`` (``bottom``: its end at ``at``, for column labels)."""
    probe = ImageDraw.Draw(img)
    left, top, right, lower = probe.textbbox((0, 0), text, font=font)
    w, h = max(1, right - left), max(1, lower - top)
    strip = Image.new("L", (w, h), 0)
    ImageDraw.Draw(strip).text((-left, -top), text, fill=255, font=font)
    strip = strip.rotate(90, expand=True)  # now h wide, w tall
    x = at[0] - strip.width // 2
    y = at[1] - strip.height if bottom else at[1] - strip.height // 2
    img.paste(Image.new("RGB", strip.size, fill), (x, y), strip)


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _cell(classes: int) -> int:
    """Pixels per cell: big enough for a count up to ~20 classes, at least 10 px for 100."""
    return max(10, min(48, 800 // max(classes, 1)))
