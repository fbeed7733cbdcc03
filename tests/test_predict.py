"""swin predict: published weights from a Hub-style cache (offline), every image mode, broken files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import CLASS_NAMES, make_folder, randomize
from swincli import create_model, load_model, save_model
from swincli.cli import main
from swincli.datasets.folder import load_rgb

timm = pytest.importorskip("timm")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hub(root: Path, repo: str, state: dict) -> Path:
    """A Hugging Face cache laid out like the real one: models--org--name/{refs/main, snapshots/<commit>/...}."""
    from safetensors.torch import save_file

    folder = root / "hub" / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
    return folder


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SWIN_CACHE", str(tmp_path / "swincache"))
    reference = randomize(timm.create_model("swin_tiny_patch4_window7_224")).eval()
    fake_hub(tmp_path / "hf", "timm/swin_tiny_patch4_window7_224.ms_in1k", reference.state_dict())
    return reference


def photo(path: Path, size=(40, 30), mode="RGB", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def test_predict_by_name_from_the_hub_cache(hub, tmp_path, capsys):
    img = photo(tmp_path / "cat.jpg", (300, 260))
    code = main(["predict", str(img), "--model", "swin-t", "--format", "json", "-k", "3", "--workers", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["path"] == str(img) and len(result["top_k"]) == 3
    cached = tmp_path / "swincache" / "weights" / "swin_tiny_patch4_window7_224.ms_in1k.safetensors"
    assert cached.is_file()  # converted once, loaded directly next time
    model = load_model(cached)
    assert model.class_names[0] == "tench, Tinca tinca" and model.preprocessing.crop_pct == 0.9
    # the same top-1 as timm's own model on the same preprocessed image
    from swincli.datasets.transforms import eval_transform

    x = eval_transform((224, 224), 0.9, model.preprocessing.mean, model.preprocessing.std)(load_rgb(img))[None]
    with torch.no_grad():
        want = hub(x).softmax(-1)[0]
    assert result["top_k"][0]["index"] == int(want.argmax())
    assert result["top_k"][0]["prob"] == pytest.approx(float(want.max()), rel=1e-4)
    assert result["top_k"][0]["label"] == model.class_names[int(want.argmax())]
    assert main(["predict", str(img), "--model", "swin_tiny_patch4_window7_224.ms_in1k", "--format", "json", "--workers", "0"]) == 0


def test_missing_weights_offline_is_one_clear_line(hub, tmp_path, capsys):
    img = photo(tmp_path / "x.png")
    code = main(["predict", str(img), "--model", "swinv2-b", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "timm/swinv2_base_window8_256.ms_in1k/model.safetensors" in err  # the architecture the alias names
    assert "swin convert" in err


def _every_kind_of_file(folder: Path) -> dict[str, str | None]:
    """file name -> expected error substring (None: must be classified)."""
    folder.mkdir()
    photo(folder / "rgb.jpg")
    photo(folder / "gray.png", mode="L")
    photo(folder / "palette.png", mode="P")
    photo(folder / "alpha.png", mode="RGBA")
    photo(folder / "cmyk.jpg", mode="CMYK")
    Image.fromarray((np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50)).save(folder / "deep16.png")
    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "blue")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    Image.new("RGB", (40, 20), "green").save(folder / "rotated.jpg", exif=exif)
    full = (folder / "rgb.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("this is text, not an image\n")
    Image.new("L", (100, 100)).save(folder / "bomb.png")
    return {
        "rgb.jpg": None, "gray.png": None, "palette.png": None, "alpha.png": None, "cmyk.jpg": None,
        "deep16.png": None, "anim.gif": None, "rotated.jpg": None, "truncated.jpg": "truncated",
        "empty.png": "empty file", "notes.png": "not an image", "bomb.png": "decompression bomb",
    }  # fmt: skip


def test_every_image_mode_and_every_broken_file(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # a 100x100 image plays the bomb
    expected = _every_kind_of_file(tmp_path / "imgs")
    code = main(["predict", str(tmp_path / "imgs"), "--checkpoint", str(tiny_checkpoint), "--format", "json",
                 "--workers", "0"])  # fmt: skip
    out, _ = capsys.readouterr()
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.splitlines())}
    assert code == 1 and set(rows) == set(expected)
    for name, error in expected.items():
        if error is None:
            assert "top_k" in rows[name] and rows[name]["top_k"][0]["label"] in CLASS_NAMES, name
        else:
            assert error in rows[name]["error"], (name, rows[name])
    assert load_rgb(tmp_path / "imgs" / "rotated.jpg").size == (20, 40)  # EXIF orientation applied
    assert load_rgb(tmp_path / "imgs" / "deep16.png").mode == "RGB"


def test_table_csv_output_file_and_stdin(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    ck = tiny_checkpoint
    a, b = photo(tmp_path / "a.png"), photo(tmp_path / "b.png", seed=1)
    assert main(["predict", str(a), "-c", str(ck), "--workers", "0", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert str(a) in out and "█" in out and "%" in out
    target = tmp_path / "preds.csv"
    assert main(["predict", str(tmp_path / "*.png"), "-c", str(ck), "--format", "csv", "-o", str(target), "--workers", "0"]) == 0
    lines = target.read_text().splitlines()
    assert lines[0] == "path,rank,index,label,prob,error" and len(lines) == 1 + 2 * 3
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{a}\n{b}\n"))
    assert main(["predict", "-", "-c", str(ck), "--format", "json", "--workers", "0"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_features_are_written_as_npy(tiny_checkpoint, tmp_path, capsys):
    ck = tiny_checkpoint
    (tmp_path / "imgs").mkdir()
    photo(tmp_path / "imgs" / "a.png")
    photo(tmp_path / "imgs" / "b.png", seed=2)
    target = tmp_path / "emb.npy"
    assert main(["predict", str(tmp_path / "imgs"), "-c", str(ck), "--features", "-o", str(target), "--workers", "0"]) == 0
    emb = np.load(target)
    assert emb.shape == (2, 256)
    assert Path(str(target) + ".paths.txt").read_text().splitlines()[0].endswith("a.png")


def test_predict_agrees_with_eval_image_by_image(tmp_path, capsys, monkeypatch):
    """...and both run the CPU fast path (optimize_for_inference) on the plain model they load."""
    from swincli.models.blocked_block import BlockedSwinBlock

    blocked = []
    original = BlockedSwinBlock._chunks
    monkeypatch.setattr(BlockedSwinBlock, "_chunks", lambda self, *a: blocked.append(1) or original(self, *a))

    data = make_folder(tmp_path / "data", per_class=4)
    model = randomize(create_model("swin-nano", num_classes=3, img_size=32, window_size=2))
    model.preprocessing = None
    ck = save_model(model, tmp_path / "m.safetensors", class_names=CLASS_NAMES)
    assert main(["predict", str(data / "val"), "-c", str(ck), "--format", "json", "-k", "1", "--workers", "0"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    correct = [r["top_k"][0]["label"] == Path(r["path"]).parent.name for r in rows]
    assert blocked, "swin predict did not take the fast path"
    blocked.clear()
    assert main(["eval", "-c", str(ck), "-d", str(data), "--format", "json", "--workers", "0"]) == 0
    assert blocked, "swin eval did not take the fast path"
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["images"] == len(rows) == 6
    assert metrics["acc1"] == pytest.approx(100.0 * sum(correct) / len(correct))
    # and image by image: the eval pipeline's argmax equals predict's label for every file
    from swincli.datasets.build import eval_data
    from swincli.datasets.transforms import Transformed, eval_transform

    loaded = load_model(ck)
    prep = loaded.preprocessing
    ds, _ = eval_data(str(data), loaded.class_names)
    tds = Transformed(ds, eval_transform((32, 32), prep.crop_pct, prep.mean, prep.std))
    by_path = {r["path"]: r["top_k"][0]["index"] for r in rows}
    with torch.no_grad():
        for i, (path, _) in enumerate(ds.samples):
            assert int(loaded(tds[i][0][None]).argmax()) == by_path[str(path)]

