"""The training-curve PNG: right size, not blank, robust to missing values, byte-for-byte deterministic."""

import math

import pytest
from PIL import Image

from swincli.drawing.curves import nice_range, plot_curves


def _rows(n: int = 10) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 2.3 * math.exp(-e / 4) + 0.3,
            "val_loss": 2.1 * math.exp(-e / 5) + 0.5,
            "val_acc1": 70 * (1 - math.exp(-e / 3)),
            "val_acc5": 95 * (1 - math.exp(-e / 2)),
            "lr": 1e-3 * min(1.0, e / 3) * 0.5 * (1 + math.cos(math.pi * e / n)),
        }
        for e in range(1, n + 1)
    ]


def _coloured(img: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Pixels in ``box`` that are clearly chromatic (curves, markers, legend), not white/grey text or grid."""
    px = img.crop(box).tobytes()
    return sum(1 for r, g, b in zip(px[0::3], px[1::3], px[2::3]) if max(r, g, b) - min(r, g, b) > 60)


def test_png_size_and_content(tmp_path):
    out = plot_curves(_rows(), tmp_path / "curves.png", title="demo")
    assert out == tmp_path / "curves.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (1200, 400)
        img = img.convert("RGB")
    assert len(img.getcolors(maxcolors=1 << 20)) > 10
    for i in range(3):
        assert _coloured(img, (i * 400, 0, (i + 1) * 400, 400)) > 200, f"panel {i} has no curve"


@pytest.mark.parametrize(
    "rows",
    [
        _rows(1),
        [{"epoch": e, "train_loss": 1.0 / e, "lr": 1e-3} for e in range(1, 6)],  # no validation
        [
            {"epoch": 1, "train_loss": None, "val_loss": float("nan"), "val_acc1": None, "lr": float("inf")},
            {"epoch": 2, "train_loss": 1.0, "val_loss": 1.2, "val_acc1": float("nan"), "val_acc5": 50.0, "lr": 0.0},
            {"epoch": 3, "train_loss": float("-inf"), "val_acc1": 100.0, "val_acc5": 100.0, "lr": None},
        ],
        [],
    ],
    ids=["single-epoch", "no-val", "none-and-nan", "empty"],
)
def test_sparse_rows_do_not_crash(tmp_path, rows):
    out = plot_curves(rows, tmp_path / "curves.png")
    with Image.open(out) as img:
        assert img.size == (1200, 400)


def test_single_epoch_shows_a_point(tmp_path):
    out = plot_curves(_rows(1), tmp_path / "curves.png")
    with Image.open(out) as img:
        img = img.convert("RGB")
    for i in range(3):  # below the legend strip, so only markers count
        assert _coloured(img, (i * 400, 40, (i + 1) * 400, 350)) > 5


def test_deterministic_and_atomic(tmp_path):
    a, b = tmp_path / "a" / "curves.png", tmp_path / "b" / "curves.png"
    plot_curves(_rows(), a)
    plot_curves(_rows(), b)
    assert a.read_bytes() == b.read_bytes()
    plot_curves(_rows(12), a)  # overwrite in place
    assert sorted(p.name for p in a.parent.iterdir()) == ["curves.png"]
    assert a.read_bytes() != b.read_bytes()


def test_nice_range_is_round():
    lo, hi, step = nice_range(0.37, 2.41)
    assert (lo, hi, step) == (0.0, 2.5, 0.5)
    lo, hi, step = nice_range(3.0, 3.0)  # a lone value still gets a span
    assert lo < 3.0 < hi and step > 0
