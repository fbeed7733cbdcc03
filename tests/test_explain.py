"""Grad-CAM explanations (swincli.explain, swin predict --explain): files, localisation, gradients, errors.

Models are custom tiny configs (C=16, two stages) so that Score-CAM, one forward pass per channel of
the last stage, stays cheap; the localisation test trains a linear head on a random Swin trunk to tell
the colour of one square on a noisy grey background, then asks the maps where the square is.
"""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from swincli import save_model
from swincli.cli import main
from swincli.errors import SwinError
from swincli.explain import METHODS, compute_cams, explain, unique_names
from swincli.models.config import SwinConfig
from swincli.models.swin import SwinTransformer

pytest.importorskip("pytorch_grad_cam")


def tiny(version: int, size: int = 32, classes: int = 3, window: int = 4, seed: int = 0) -> SwinTransformer:
    """Two stages: a (size/8)^2 final map of 32 channels."""
    torch.manual_seed(seed)
    config = SwinConfig(version=version, img_size=size, embed_dim=16, depths=(1, 1), num_heads=(1, 2),
                        window_size=window, num_classes=classes, drop_path_rate=0.0)  # fmt: skip
    model = SwinTransformer(config).eval()
    model.class_names = [f"c{i}" for i in range(classes)]
    return model


def noise(path, size=(40, 30), seed=0):
    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


# ---------------------------------------------------------------------- files
@pytest.mark.parametrize("version", [1, 2])
def test_one_png_per_readable_image_for_every_method(version, tmp_path):
    model = tiny(version)
    paths = [str(noise(tmp_path / "in" / "a.png", seed=1)), str(tmp_path / "in" / "missing.png"),
             str(noise(tmp_path / "in" / "b.jpg", (30, 50), seed=2))]  # fmt: skip
    for method in METHODS:
        out = tmp_path / method
        results = list(explain(model, paths, out, method, batch_size=2))
        assert [r.path for r in results] == paths
        assert results[1].file is None and results[1].error == "no such file"
        assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
        for r in (results[0], results[2]):
            assert r.error is None and r.label == model.class_names[r.index] and 0 < r.prob <= 1
            with Image.open(r.file) as png:
                assert png.format == "PNG" and png.size == (2 * 224 + 4, 224)  # 32 px enlarged 7 times, twice


@pytest.mark.parametrize("version", [1, 2])
def test_the_hooked_map_is_the_final_normalised_feature_map(version):
    from swincli.explain import target_layer, tokens_to_nchw

    model, seen = tiny(version, size=64), []
    handle = target_layer(model).register_forward_hook(lambda m, i, out: seen.append(tokens_to_nchw(out)))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        want = model.forward_features(x)
    handle.remove()
    assert seen[0].shape == (2, 32, 8, 8)
    torch.testing.assert_close(seen[0], want)
    torch.testing.assert_close(model.forward_head(seen[0]), logits)


def test_names_stay_unique():
    assert unique_names(["x/a.jpg", "y/b.png"]) == ["a.png", "b.png"]
    assert unique_names(["x/cat.jpg", "y/cat.jpg", "y/Cat.png"]) == ["x_cat.png", "y_cat.png", "y_Cat-3.png"]
    assert unique_names(["https://h/p/i m.jpg?x=1", "/"]) == ["i_m.png", "image.png"]


# ---------------------------------------------------------------------- what the maps mean
S = 48
COLOURS = np.array([(220, 40, 40), (40, 200, 40), (40, 40, 220)], dtype=np.float32)


def squares(n: int, seed: int):
    """Images with one coloured square (class = its colour) on grey noise; the squares' boxes (x0, y0, x1, y1)."""
    rng = np.random.default_rng(seed)
    images, labels, boxes = [], [], []
    for _ in range(n):
        img = np.full((S, S, 3), rng.uniform(90, 160), np.float32) + rng.normal(0, 12, (S, S, 3))
        c, side = int(rng.integers(3)), int(rng.integers(9, 14))
        y0, x0 = (int(v) for v in rng.integers(0, S - side, 2))
        img[y0 : y0 + side, x0 : x0 + side] = COLOURS[c] + rng.normal(0, 12, (side, side, 3))
        images.append(img)
        labels.append(c)
        boxes.append((x0, y0, x0 + side, y0 + side))
    x = torch.from_numpy((np.clip(np.stack(images), 0, 255) / 255 - 0.5) / 0.25).float().permute(0, 3, 1, 2)
    return x.contiguous(), torch.tensor(labels), boxes


def hit_rate(cams: np.ndarray, boxes, shift: int = 0, margin: int = 2) -> float:
    """Share of maps whose hottest pixel lies in its box (grown by ``margin``; moved by ``shift``, wrapping)."""
    hits = 0
    for cam, box in zip(cams, boxes):
        y, x = np.unravel_index(cam.argmax(), cam.shape)
        x0, y0, x1, y1 = ((v + shift) % S for v in box) if shift else box
        hits += x0 - margin <= x < x1 + margin and y0 - margin <= y < y1 + margin
    return hits / len(boxes)


@pytest.fixture(scope="module")
def trained():
    """A random trunk with a linear head trained to name the square's colour."""
    model = tiny(1, size=S, window=3, seed=0)
    x, y, _ = squares(384, seed=7)
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
    opt = torch.optim.AdamW(model.head.parameters(), lr=0.05, weight_decay=0.05)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(model.head(feats), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_the_heatmap_peaks_on_the_object(trained):
    x, y, boxes = squares(24, seed=123)
    with torch.no_grad():
        assert (trained(x).argmax(-1) == y).float().mean() >= 0.8  # it does recognise the squares
    cams = compute_cams(trained, x, "gradcam")
    assert cams.cams.shape == (24, S, S)
    assert hit_rate(cams.cams, boxes) >= 0.75
    # the same maps miss boxes moved away or a transposed map: the hits are not luck of the layout
    assert hit_rate(cams.cams, boxes, shift=S // 2) <= 0.2
    assert hit_rate(cams.cams.transpose(0, 2, 1), boxes) <= 0.5
    # and a model that knows nothing (the same trunk, a random head) mostly misses
    untrained = tiny(1, size=S, window=3, seed=0)
    assert hit_rate(compute_cams(untrained, x, "gradcam").cams, boxes) <= 0.5


def test_gradcam_follows_the_class_and_the_gradients(trained):
    from swincli.models.fast_path import optimize_for_inference

    x, _, _ = squares(4, seed=5)
    maps = [compute_cams(trained, x, "gradcam", classes=[c] * 4).cams for c in range(3)]
    assert min(np.abs(maps[a] - maps[b]).mean() for a, b in ((0, 1), (0, 2), (1, 2))) > 0.05  # not class-blind
    plain = compute_cams(trained, x, "gradcam")
    fast = tiny(1, size=S, window=3)
    fast.load_state_dict(trained.state_dict())
    optimize_for_inference(fast)  # as swin predict loads it
    with torch.no_grad():  # the caller's no_grad cannot switch the gradients off
        again = compute_cams(fast, x, "gradcam")
    np.testing.assert_allclose(again.cams, plain.cams, atol=1e-5)
    assert again.classes == plain.classes
    assert all(p.requires_grad and p.grad is None for p in fast.parameters())  # nothing left behind


def test_a_frozen_model_still_explains(trained):
    x, _, boxes = squares(8, seed=9)
    for p in trained.parameters():
        p.requires_grad_(False)
    try:
        cams = compute_cams(trained, x, "gradcam").cams
    finally:
        for p in trained.parameters():
            p.requires_grad_(True)
    assert cams.max() > 0.99 and hit_rate(cams, boxes) >= 0.5


# ---------------------------------------------------------------------- the command
@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(tiny(2, size=32), path, class_names=["cat", "dog", "fox"])
    return path


def test_predict_explain_writes_pngs_and_names_them_in_json(checkpoint, tmp_path, capsys):
    for folder in ("x", "y"):
        noise(tmp_path / "photos" / folder / "cat.jpg", seed=len(folder))
    (tmp_path / "photos" / "bad.png").write_bytes(b"not an image")
    cams = tmp_path / "cams"
    args = ["predict", str(tmp_path / "photos"), "-c", str(checkpoint), "--explain", str(cams), "--format", "json",
            "-j", "0", "-b", "2"]  # fmt: skip
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 1  # the broken file
    rows = [json.loads(line) for line in out.splitlines()]
    assert [("explanation" in r) for r in rows] == [False, True, True]
    assert [r["explanation"] for r in rows[1:]] == [str(cams / "x_cat.png"), str(cams / "y_cat.png")]
    for r in rows[1:]:
        with Image.open(r["explanation"]) as png:
            assert png.size == (2 * 224 + 4, 224) and png.mode == "RGB"
    assert "2 heatmaps (gradcam) saved to" in err
    # the folder has files now: refused, as -o is, unless --force
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already has files" in err and "--force" in err
    assert main([*args, "--force", "--explain-method", "eigencam", "--format", "csv"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "path,rank,index,label,prob,error,explanation"
    assert out.splitlines()[2].endswith(f",{cams / 'x_cat.png'}")  # after the bad file's row


def test_explain_refuses_before_loading(checkpoint, tmp_path, capsys, monkeypatch):
    img = str(noise(tmp_path / "a.png"))
    base = ["predict", img, "-c", str(checkpoint), "-j", "0"]
    assert main([*base, "--explain", str(tmp_path / "c"), "--explain-method", "lime"]) == 2
    assert main([*base, "--explain-method", "gradcam"]) == 2  # without --explain
    assert main([*base, "--explain", str(tmp_path / "c"), "--features"]) == 2
    (tmp_path / "file").write_text("x")
    assert main([*base, "--explain", str(tmp_path / "file")]) == 1
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)  # as if not installed
    assert main([*base, "--explain", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'swincli[explain]'" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()
    with pytest.raises(SwinError, match="grad-cam"):
        compute_cams(tiny(1), torch.zeros(1, 3, 32, 32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_explain_on_cuda(trained, tmp_path):
    x, _, boxes = squares(8, seed=123)
    model = tiny(1, size=S, window=3)
    model.load_state_dict(trained.state_dict())
    on_gpu = compute_cams(model.cuda(), x.cuda(), "gradcam")
    on_cpu = compute_cams(trained, x, "gradcam")
    np.testing.assert_allclose(on_gpu.cams, on_cpu.cams, atol=2e-2)
    for method in METHODS:
        assert compute_cams(model, x[:2], method).cams.shape == (2, S, S)
    png = tmp_path / "a.png"
    Image.fromarray((np.clip(x[0].permute(1, 2, 0).numpy() * 0.25 + 0.5, 0, 1) * 255).astype("uint8")).save(png)
    results = list(explain(model, [str(png)], tmp_path / "cams", device="cuda"))
    assert results[0].file is not None


# ---------------------------------------------------------------------- coarse maps (issue 18.6d)
@pytest.fixture
def nano64(tmp_path):
    """swin-nano at 64 px: its last map is 2 x 2, its stage-2 map 8 x 8."""
    from swincli import create_model

    torch.manual_seed(0)
    path = tmp_path / "nano64.safetensors"
    save_model(create_model("swin-nano", img_size=64, window_size=4, num_classes=3), path, class_names=["a", "b", "c"])
    return path


def test_a_coarse_map_is_noted_and_an_earlier_stage_gives_a_finer_one(nano64, tmp_path, capsys):
    img = str(noise(tmp_path / "in" / "a.png", (70, 70), seed=3))
    base = ["predict", img, "-c", str(nano64), "-j", "0", "--format", "json"]
    assert main([*base, "--explain", str(tmp_path / "last")]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "feature map is only 2x2" in line]
    assert len(notes) == 1 and "--explain-layer 3 (4x4) or 2 (8x8)" in notes[0], err
    with Image.open(tmp_path / "last" / "a.png") as png:
        both = np.asarray(png.convert("RGB")).astype(int)
    assert both.shape == (256, 2 * 256 + 4, 3)  # 64 px enlarged 4 times: the image, then the overlay
    plain, heat = both[:, :256], both[:, 260:]
    assert (both[:, 256:260] == 255).all()
    assert np.abs(plain - heat).mean() > 20  # the left panel is the image without the heatmap

    assert main([*base, "--explain", str(tmp_path / "fine"), "--explain-layer", "2"]) == 0
    assert "feature map is only" not in capsys.readouterr().err
    assert (tmp_path / "fine" / "a.png").is_file()


def test_explain_layer_hooks_the_stage_and_is_checked(nano64, tmp_path, capsys):
    from swincli import api
    from swincli.explain import target_layer, tokens_to_nchw
    from swincli.loader import load

    model = load(str(nano64))
    seen = []
    for stage, side in ((1, 16), (2, 8), (3, 4), (4, 2)):
        handle = target_layer(model, stage).register_forward_hook(lambda m, i, out: seen.append(tokens_to_nchw(out)))
        with torch.no_grad():
            model(torch.randn(1, 3, 64, 64))
        handle.remove()
        assert seen[-1].shape[-2:] == (side, side)
    img = str(noise(tmp_path / "a.png", (64, 64)))
    rows = api.explain(model, [img], tmp_path / "py", layer=2)
    assert rows[0]["file"] and rows[0]["error"] is None
    base = ["predict", img, "-c", str(nano64), "-j", "0"]
    assert main([*base, "--explain", str(tmp_path / "c"), "--explain-layer", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--explain-layer must be a stage from 1 to 4, got 5" in err
    assert main([*base, "--explain-layer", "2"]) == 2  # without --explain
    assert "--explain-layer needs --explain DIR" in capsys.readouterr().err
