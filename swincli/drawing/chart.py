"""``swin profile --plot``: throughput against batch size, or the attention schemes as bars (Pillow only)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from swincli.drawing.fonts import GRID, INK, plain_font
from swincli.fileio import atomic_file

W, H, PAD = 900, 420, 70
BLUE = (31, 119, 180)


def chart(labels: list[str], values: list[float], title: str, ylabel: str, path: str | Path, bars: bool) -> Path:
    img = Image.new("RGB", (W, H), "white")
    d, font = ImageDraw.Draw(img), plain_font(14)
    d.text((PAD, 15), title, fill=INK, font=font)
    top = max(values) * 1.15 if values and max(values) > 0 else 1.0
    x0, x1, y0, y1 = PAD, W - 30, H - 50, 50
    for i in range(6):
        y = y0 - (y0 - y1) * i / 5
        d.line([(x0, y), (x1, y)], fill=GRID)
        d.text((8, y - 8), f"{top * i / 5:.0f}", fill=INK, font=font)
    d.text((8, y1 - 30), ylabel, fill=INK, font=font)
    step = (x1 - x0) / max(len(values), 1)
    points = []
    for i, (label, value) in enumerate(zip(labels, values)):
        cx = x0 + step * (i + 0.5)
        cy = y0 - (y0 - y1) * value / top
        if bars:
            d.rectangle([cx - step * 0.3, cy, cx + step * 0.3, y0], fill=BLUE)
        points.append((cx, cy))
        d.text((cx - 4 * len(label), y0 + 8), label, fill=INK, font=font)
        d.text((cx - 4 * len(f"{value:.0f}"), cy - 20), f"{value:.0f}", fill=INK, font=font)
    if not bars and len(points) > 1:
        d.line(points, fill=BLUE, width=3)
    for cx, cy in points if not bars else []:
        d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=BLUE)
    d.line([(x0, y0), (x1, y0)], fill=INK)
    path = Path(path)
    with atomic_file(path) as tmp:
        img.save(tmp, format="PNG")
    return path
