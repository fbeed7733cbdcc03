"""Training curves as a PNG, drawn with Pillow alone.

Pillow is already a dependency (image loading), so the curves cost nothing extra to install; matplotlib
would add tens of megabytes and a slow import to every ``swin train`` for three small line charts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from PIL import Image, ImageDraw

from swincli.drawing.fonts import GRID, INK, MUTED, Font, place_text, scaled_font
from swincli.fileio import atomic_file

WIDTH, HEIGHT = 1200, 400
BLUE, ORANGE, GREEN = (31, 119, 180), (255, 127, 14), (44, 160, 44)
# (panel title, [(key, legend label, colour)], y-tick formatter kind)
PANELS = [
    ("loss", [("train_loss", "train", BLUE), ("val_loss", "val", ORANGE)], "num"),
    ("accuracy (%)", [("val_acc1", "top-1", BLUE), ("val_acc5", "top-5", ORANGE)], "pct"),
    ("learning rate", [("lr", "lr", GREEN)], "sci"),
]


def nice_step(span: float, target: int = 5) -> float:
    """A 1/2/5 x 10^k step that cuts ``span`` into about ``target`` intervals."""
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * 0.999)


def nice_range(lo: float, hi: float, target: int = 5) -> tuple[float, float, float]:
    """Widen ``[lo, hi]`` outward to whole steps so ticks land on round numbers; returns (lo, hi, step)."""
    least = 0.1 * max(abs(lo), abs(hi)) or 1.0  # a lone point must not zoom to its fourth decimal
    if hi - lo < least:
        lo, hi = (lo + hi - least) / 2, (lo + hi + least) / 2
    step = nice_step(hi - lo, target)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step, step


def _label(v: float, step: float, kind: str) -> str:
    """Tick text with just enough digits for the step (no 0.30000000000000004)."""
    if abs(v) < step * 1e-6:
        v = 0.0
    if kind == "sci":
        digits = max(1, math.floor(math.log10(abs(v))) - math.floor(math.log10(step))) if v else 1
        return f"{v:.{digits}e}"
    return f"{v:.{max(0, -math.floor(math.log10(step) + 1e-9))}f}"


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], rows: list[dict], spec: tuple,
           font: Font, s: int) -> None:
    """One chart: title and legend above, grid, ticks, then each series as a polyline with markers."""
    name, series, kind = spec
    x0, y0, x1, y1 = box
    left, top, right, bottom = x0 + 74 * s, y0 + 30 * s, x1 - 16 * s, y1 - 42 * s
    head = y0 + 16 * s  # centre line of the header strip
    place_text(draw, (left, head), name, font, INK, ay=0.5)
    data = [[(r["epoch"], r[k]) for r in rows if _finite(r.get("epoch")) and _finite(r.get(k))] for k, _, _ in series]
    lx = right  # legend in the header strip, right-aligned: it can never cover data
    for pts, (_, text, colour) in reversed(list(zip(data, series))):
        if pts:
            lx -= draw.textlength(text, font=font) + 26 * s
            draw.line((lx, head, lx + 16 * s, head), fill=colour, width=3 * s)
            place_text(draw, (lx + 20 * s, head), text, font, INK, ay=0.5)
    points = [p for pts in data for p in pts]
    draw.rectangle((left, top, right, bottom), outline=MUTED, width=s)
    place_text(draw, ((left + right) / 2, bottom + 26 * s), "epoch", font, MUTED, ax=0.5)
    if not points:
        place_text(draw, ((left + right) / 2, (top + bottom) / 2), "no data", font, MUTED, ax=0.5, ay=0.5)
        return
    xlo, xhi = min(p[0] for p in points), max(p[0] for p in points)
    xlo, xhi = (xlo - 1, xhi + 1) if xlo == xhi else (xlo, xhi)
    xstep = max(1, round(nice_step(xhi - xlo, 6)))
    ylo, yhi, ystep = nice_range(min(p[1] for p in points), max(p[1] for p in points))
    if kind == "pct":
        ylo, yhi = max(ylo, 0.0), min(yhi, 100.0)
    inset = 8 * s  # keeps markers off the frame
    px = lambda x: left + inset + (x - xlo) / (xhi - xlo) * (right - left - 2 * inset)  # noqa: E731
    py = lambda y: bottom - inset - (y - ylo) / (yhi - ylo) * (bottom - top - 2 * inset)  # noqa: E731
    for i in range(round((yhi - ylo) / ystep) + 1):
        y = ylo + i * ystep
        draw.line((left + s, py(y), right - s, py(y)), fill=GRID, width=s)
        place_text(draw, (left - 6 * s, py(y)), _label(y, ystep, kind), font, INK, ax=1.0, ay=0.5)
    for x in range(math.ceil(xlo / xstep) * xstep, int(xhi) + 1, xstep):
        draw.line((px(x), top + s, px(x), bottom - s), fill=GRID, width=s)
        place_text(draw, (px(x), bottom + 7 * s), str(x), font, INK, ax=0.5)
    r = (3 if len(rows) <= 60 else 1.5) * s
    for pts, (_, _, colour) in zip(data, series):
        xy = [(px(x), py(y)) for x, y in sorted(pts)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2 * s, joint="curve")
        for cx, cy in xy:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)


def plot_curves(rows: list[dict], path: str | os.PathLike, title: str | None = None) -> Path:
    """Draw loss, accuracy and learning rate against epoch side by side; write ``path`` atomically.

    A pure function of ``rows`` and ``title`` (same input, same bytes); missing, None or non-finite
    values are skipped, so a run without validation still gets its loss and lr panels.
    """
    font, s = scaled_font(14)
    img = Image.new("RGB", (WIDTH * s, HEIGHT * s), "white")
    draw = ImageDraw.Draw(img)
    head = 0
    if title:
        head = 24 * s
        place_text(draw, (WIDTH * s / 2, 12 * s), title, font, INK, ax=0.5, ay=0.5)
    width = WIDTH * s // len(PANELS)
    for i, spec in enumerate(PANELS):
        _panel(draw, (i * width, head, (i + 1) * width, HEIGHT * s), rows, spec, font, s)
    if s > 1:
        img = img.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    with atomic_file(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
