"""Round trips through foreign layouts keep what the weights do not carry (issue 12, point 5).

A 48 px / window 3 model exported with ``swin convert --to timm|official|torchvision`` and read back
must predict exactly like the original: same size, window, preprocessing and class names, found in the
sidecar (``OUT.json``) or timm's ``config.json``. Without them, the guess is printed as a note, and a
guess the logit check refutes names the flags that fix it.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import randomize
from swincli import create_model, load, load_model, save_model
from swincli.checkpoint import Preprocessing
from swincli.cli import main

timm = pytest.importorskip("timm")
pytest.importorskip("torchvision")
NAMES = ["circle", "square", "triangle", "star"]
PREP = {"crop_pct": 0.8, "interpolation": "bilinear", "mean": (0.5, 0.4, 0.3), "std": (0.25, 0.2, 0.3)}
# torchvision pads where we clip a window to a small map, so its models keep every window whole (96 px)
SIZES = {"timm": 48, "official": 48, "torchvision": 96}


def _original(tmp_path, version: int, size: int):
    net = create_model("swin-nano" if version == 1 else "swinv2-nano", num_classes=4, img_size=size, window_size=3)
    net = randomize(net, seed=version).eval()
    net.class_names = list(NAMES)
    net.preprocessing = Preprocessing(input_size=(size, size), **PREP)
    return net, save_model(net, tmp_path / f"v{version}-{size}.safetensors")


def _images(tmp_path):
    """Two photos whose sizes differ from the model's, so crop_pct and interpolation change the pixels."""
    paths = []
    for i, shape in enumerate([(70, 55), (40, 90)]):
        pixels = (np.random.default_rng(i).random((shape[1], shape[0], 3)) * 255).astype("uint8")
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    return [str(p) for p in paths]


def _predict(images, checkpoint, capsys) -> tuple[list[dict], str]:
    capsys.readouterr()
    assert main(["predict", *images, "-c", str(checkpoint), "--format", "json", "-j", "0", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    return [json.loads(line) for line in out.splitlines()], err


def _same_predictions(want: list[dict], got: list[dict]) -> None:
    for a, b in zip(want, got, strict=True):
        assert a["top_k"][0]["index"] == b["top_k"][0]["index"]
        assert [r["label"] for r in a["top_k"]] == [r["label"] for r in b["top_k"]]
        assert np.allclose([r["prob"] for r in a["top_k"]], [r["prob"] for r in b["top_k"]], atol=1e-5)


@pytest.mark.parametrize("target", ["timm", "official", "torchvision"])
@pytest.mark.parametrize("version", [1, 2])
def test_round_trip_keeps_size_window_names_and_preprocessing(version, target, tmp_path, capsys):
    net, original = _original(tmp_path, version, SIZES[target])
    exported = tmp_path / f"exported-{target}.pth"
    assert main(["convert", str(original), "--to", target, "-o", str(exported)]) == 0
    assert (tmp_path / f"exported-{target}.pth.json").is_file()
    images = _images(tmp_path)
    want, _ = _predict(images, original, capsys)
    assert {r["top_k"][0]["label"] for r in want} <= set(NAMES)
    got, notes = _predict(images, exported, capsys)
    _same_predictions(want, got)
    assert "note" not in notes  # nothing was assumed

    back = tmp_path / "back.safetensors"
    assert main(["convert", str(exported), "-o", str(back), "--no-check"]) == 0  # the export was checked
    again = load_model(back)
    assert again.config.to_dict() == net.config.to_dict()
    assert again.preprocessing == net.preprocessing and again.class_names == NAMES
    a, b = net.state_dict(), again.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_timm_folder_is_timms_own_hub_layout(tmp_path, capsys):
    net, original = _original(tmp_path, 2, 48)
    folder = tmp_path / "timm-model"
    assert main(["convert", str(original), "--to", "timm", "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()  # timm reads config.json itself
    cfg = theirs.pretrained_cfg
    assert tuple(cfg["input_size"]) == (3, 48, 48) and cfg["crop_pct"] == PREP["crop_pct"]
    assert cfg["interpolation"] == "bilinear" and tuple(cfg["mean"]) == PREP["mean"] and cfg["label_names"] == NAMES
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(theirs(x), net(x), atol=1e-5)
    images = _images(tmp_path)
    want, _ = _predict(images, original, capsys)
    for source in (folder, folder / "model.safetensors"):  # the folder, or its weights beside config.json
        got, _ = _predict(images, source, capsys)
        _same_predictions(want, got)


def test_timm_hub_config_without_model_args(tmp_path):
    """timm's Hub repos name size and window only in the architecture and input size."""
    net = randomize(create_model("swinv2-nano", num_classes=4, img_size=64, window_size=4)).eval()
    folder = tmp_path / "snapshot"
    folder.mkdir()
    mine = save_model(net, tmp_path / "mine.safetensors")
    assert main(["convert", str(mine), "--to", "timm", "-o", str(folder / "model.safetensors"), "--no-check"]) == 0
    (folder / "model.safetensors.json").unlink()
    config = {"architecture": "swinv2_nano_window4_64", "num_classes": 4, "pretrained_cfg": {
        "input_size": [3, 64, 64], "crop_pct": 0.9, "interpolation": "bicubic", "mean": [0.5] * 3, "std": [0.5] * 3}}
    (folder / "config.json").write_text(json.dumps(config))
    model = load(folder / "model.safetensors")
    assert model.config.image_hw == (64, 64) and model.config.window_size == 4 and model.load_notes == []
    assert model.preprocessing.crop_pct == 0.9 and model.preprocessing.mean == (0.5, 0.5, 0.5)


@pytest.fixture
def bare_timm(tmp_path):
    """The reported file: the 48 px / window 3 demo model in timm's layout, without its sidecar."""
    _, original = _original(tmp_path, 1, 48)
    exported = tmp_path / "good-timm.pth"
    assert main(["convert", str(original), "--to", "timm", "-o", str(exported), "--no-check"]) == 0
    sidecar = tmp_path / "good-timm.pth.json"
    sidecar.unlink()
    return exported, sidecar


def test_without_sidecar_predict_notes_the_guess(bare_timm, tmp_path, capsys):
    _, notes = _predict(_images(tmp_path), bare_timm[0], capsys)
    assert "good-timm.pth carries no image size or window: assumed 64 px" in " ".join(notes.split())
    assert "--size/--window" in notes


def test_wrong_guess_names_the_flags_that_fix_it(bare_timm, tmp_path, capsys):
    out = tmp_path / "back.safetensors"
    capsys.readouterr()
    assert main(["convert", str(bare_timm[0]), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "please report" not in err
    assert "guessed 64 px" in err and "--size" in err and "--window" in err and not out.exists()
    assert main(["convert", str(bare_timm[0]), "-o", str(out), "--size", "48"]) == 0  # the flag it names


@pytest.mark.parametrize("field, value, message", [
    ("crop_pct", float("nan"), "pretrained_cfg.crop_pct must be a finite number"),
    ("interpolation", "lanczos", "pretrained_cfg.interpolation must be one of bicubic"),
    ("std", [0.2, 0.0, 0.2], "pretrained_cfg.std must be a finite number in (0, 1e+06], got 0.0"),
    ("img_size", 0, "model_args.img_size must be a positive integer"),
    ("window_size", "three", "model_args.window_size must be a positive integer"),
    ("label_names", ["a", "b"], "2 class names for weights with 4 classes"),
])  # fmt: skip
def test_bad_sidecar_is_one_line_naming_file_and_field(bare_timm, tmp_path, capsys, field, value, message):
    exported, sidecar = bare_timm
    data = {"architecture": "swin_tiny_patch4_window7_224", "model_args": {"img_size": 48, "window_size": 3},
            "pretrained_cfg": {"input_size": [3, 48, 48]}}  # fmt: skip
    where = data if field == "label_names" else data["model_args"] if field in ("img_size", "window_size") else data["pretrained_cfg"]
    where[field] = value
    sidecar.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["predict", str(_images(tmp_path)[0]), "-c", str(exported), "-j", "0"]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert str(sidecar) in err and message in err, err


def test_sidecar_follows_the_force_rule(tmp_path, capsys):
    _, original = _original(tmp_path, 1, 48)
    out, sidecar = tmp_path / "o.pth", tmp_path / "o.pth.json"
    sidecar.write_text("mine")
    assert main(["convert", str(original), "--to", "official", "-o", str(out)]) == 1
    assert "o.pth.json already exists" in capsys.readouterr().err
    assert sidecar.read_text() == "mine" and not out.exists()
    assert main(["convert", str(original), "--to", "official", "-o", str(out), "--force"]) == 0
    assert json.loads(sidecar.read_text())["class_names"] == NAMES
