"""Text for the figures swin draws with Pillow: one font choice and one way to place a string."""

from __future__ import annotations

from PIL import ImageDraw, ImageFont

INK, GRID, MUTED = (40, 40, 40), (225, 225, 225), (120, 120, 120)

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def plain_font(size: int) -> Font:
    """Pillow's built-in font at ``size`` pixels (scalable since Pillow 10.1 with FreeType), else its
    small fixed bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, OSError):
        return ImageFont.load_default()


def scaled_font(size: int) -> tuple[Font, int]:
    """:func:`plain_font` at twice ``size`` for drawing at 2x and downsampling (cheap anti-aliasing);
    returns (font, supersampling factor), the factor 1 where only the bitmap font exists."""
    font = plain_font(size * 2)
    return font, 2 if isinstance(font, ImageFont.FreeTypeFont) else 1


def place_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Font, fill: tuple,
               ax: float = 0.0, ay: float = 0.0) -> None:
    """Place ``text`` by its ink box (ax/ay: 0 left/top, 0.5 centre, 1 right/bottom); bitmap fonts lack anchors."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text((xy[0] - left - ax * (right - left), xy[1] - top - ay * (bottom - top)), text, fill=fill, font=font)
