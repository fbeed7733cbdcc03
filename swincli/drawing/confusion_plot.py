"""The confusion matrix as a PNG, drawn with Pillow (no matplotlib at run time).

Rows are the true classes, columns the predicted ones; a cell's colour is its share of the row (the
true class's images), from :data:`MIN_TINT` up for any count above zero, so a single mistake among
hundreds still shows, and its number the count. The label bands fit the longest (cut) class name, so
short names leave no empty band under the title. Up to :data:`MAX_DRAWN` classes are drawn; beyond that
the figure shows the :data:`MAX_DRAWN` classes with the most mistakes (as the true or the predicted
class), and says so in its title, while the JSON (:mod:`swincli.evaluation.confusion`) always holds
every class. ``swin eval --plot`` and run tracking (``--log``) both draw through :func:`draw_confusion`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw

from swincli.drawing.fonts import INK, MUTED, place_text, scaled_font
from swincli.evaluation.confusion import class_name, used_classes
from swincli.fileio import atomic_file

MAX_DRAWN = 100
LABEL_W = 150  # at most this many pixels for a class name left of the rows and above the columns (longer: cut)
TITLE_H, AXIS_H, ACC_W, PAD, LABEL_GAP = 30, 22, 64, 12, 6
EMPTY, FULL = (255, 255, 255), (8, 48, 107)  # share 0 and 1 of a row: white to dark blue
MIN_TINT = 0.2  # the lightest tint of a cell with a count: 1 of 500 is light blue, not white


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


@dataclass(frozen=True)
class Layout:
    """Where a figure puts things, in pixels of the saved PNG: a function of the class names and the title."""

    n: int
    cell: int
    rows_w: int  # the band of row labels, left of the matrix
    cols_h: int  # the band of column labels, above it
    width: int

    @property
    def origin(self) -> tuple[int, int]:
        """The matrix's top-left corner."""
        return AXIS_H + self.rows_w, TITLE_H + AXIS_H + self.cols_h

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.origin[1] + self.n * self.cell + PAD

    def cell_box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """Row ``i`` (true class), column ``j`` (predicted): (left, top, right, bottom)."""
        x0, y0 = self.origin
        return x0 + j * self.cell, y0 + i * self.cell, x0 + (j + 1) * self.cell, y0 + (i + 1) * self.cell


def layout(labels: Sequence[str], heading: str = "") -> Layout:
    """The :class:`Layout` for these class names (cut to :data:`LABEL_W`) under ``heading``."""
    n, cell = len(labels), _cell(len(labels))
    font, s = scaled_font(_font_size(cell))
    big, _ = scaled_font(14)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    longest = max((probe.textlength(_fit(probe, t, font, (LABEL_W - LABEL_GAP) * s), font=font) for t in labels),
                  default=0)  # fmt: skip
    band = math.ceil(longest / s) + LABEL_GAP + 2
    content = AXIS_H + band + n * cell + ACC_W + PAD
    title = math.ceil(probe.textlength(heading, font=big) / s) + 2 * PAD
    return Layout(n, cell, band, band, max(content, title))


def figure_size(labels: Sequence[str], heading: str = "confusion matrix") -> tuple[int, int]:
    """The PNG's (width, height) for these drawn class names and title."""
    return layout(labels, heading).size


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


def tint(count: float, total: float) -> tuple[int, int, int]:
    """A cell's colour: white for no images, else its share of the row, from :data:`MIN_TINT` to dark blue."""
    share = count / total if total and count else 0.0
    level = MIN_TINT + (1 - MIN_TINT) * share if share else 0.0
    return tuple(round(a + (b - a) * level) for a, b in zip(EMPTY, FULL))  # type: ignore[return-value]


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
    n, at = len(labels), layout(labels, heading)
    font, s = scaled_font(_font_size(at.cell))
    big, _ = scaled_font(14)
    width, height = at.size
    img = Image.new("RGB", (width * s, height * s), "white")
    draw = ImageDraw.Draw(img)
    x0, y0 = at.origin[0] * s, at.origin[1] * s
    c = at.cell * s
    place_text(draw, (width * s / 2, TITLE_H * s / 2), heading, big, INK, ax=0.5, ay=0.5)
    place_text(draw, (x0 + n * c / 2, (TITLE_H + AXIS_H / 2) * s), "predicted class", big, MUTED, ax=0.5, ay=0.5)
    _vertical(img, "true class", big, MUTED, (AXIS_H * s // 2, y0 + n * c // 2))
    place_text(draw, (x0 + n * c + 8 * s, y0 - LABEL_GAP * s), "acc %", font, MUTED, ay=1.0)
    for i, label in enumerate(labels):
        short = _fit(draw, label, font, (LABEL_W - LABEL_GAP) * s)
        place_text(draw, (x0 - LABEL_GAP * s, y0 + i * c + c / 2), short, font, INK, ax=1.0, ay=0.5)
        _vertical(img, short, font, INK, (x0 + i * c + c // 2, y0 - LABEL_GAP * s), bottom=True)
        total = float(rows[i])
        acc = f"{100.0 * float(sub[i, i]) / total:.1f}" if total else "-"
        place_text(draw, (x0 + n * c + 8 * s, y0 + i * c + c / 2), acc, font, INK, ay=0.5)
        for j in range(n):
            count = float(sub[i, j])
            box = tuple(v * s for v in at.cell_box(i, j))
            colour = tint(count, total)
            draw.rectangle(box, fill=colour, outline=(235, 235, 235) if at.cell >= 14 else None)
            if count and at.cell >= 22:
                text = str(int(count))
                if draw.textlength(text, font=font) <= c - 4 * s:
                    fill = (255, 255, 255) if sum(colour) < 3 * 128 else INK
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


def _font_size(cell: int) -> int:
    return max(8, min(13, cell - 3))


def _cell(classes: int) -> int:
    """Pixels per cell: big enough for a count up to ~20 classes, at least 10 px for 100."""
    return max(10, min(48, 800 // max(classes, 1)))
