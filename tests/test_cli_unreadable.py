"""An image that passes the start-up check but fails to decode mid-run is skipped, counted and named."""

import json

from PIL import Image

from helpers import save_tiny
from swincli.cli import main
from swincli.datasets.folder import probe


def _folder(root, per_class=12, size=40):
    import random

    rng = random.Random(0)
    for c, colour in enumerate([(220, 30, 30), (30, 30, 220)]):
        d = root / f"c{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(max(0, v - rng.randrange(40)) for v in colour))
            img.save(d / f"{i}.jpg", quality=95)
    bad = root / "c0" / "0.jpg"
    noise = Image.frombytes("RGB", (200, 200), bytes(rng.randrange(256) for _ in range(200 * 200 * 3)))
    noise.save(bad, quality=95)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # cut short: the header is intact, the pixels are not
    return bad


def test_a_truncated_jpeg_passes_the_header_check(tmp_path):
    bad = _folder(tmp_path / "d")
    assert probe(bad) is None  # which is why the run itself must survive it


def test_train_skips_a_truncated_image_and_reports_it(tmp_path, capsys):
    bad = _folder(tmp_path / "d")
    run_dir = tmp_path / "run"
    code = main(["train", "--data", str(tmp_path / "d"), "--val-split", "0.25", "--size", "32", "--window", "2",
                 "--epochs", "2", "--batch-size", "6", "--workers", "0", "-o", str(run_dir), "--mixup", "0",
                 "--cutmix", "0"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["unreadable_images"] for r in rows] == [1, 1]  # read (and skipped) once per epoch
    assert "failed to decode" in err and str(bad) in err
    assert (run_dir / "unreadable.txt").read_text().startswith(f"{bad}\ttruncated image")


def test_eval_skips_a_truncated_image(tmp_path, capsys):
    bad = _folder(tmp_path / "d")
    save_tiny(tmp_path / "m.safetensors", ["c0", "c1"])
    code = main(["eval", "-c", str(tmp_path / "m.safetensors"), "-d", str(tmp_path / "d"), "--format", "json",
                 "-j", "0"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == 23 and result["unreadable_images"] == 1
    assert str(bad) in err
