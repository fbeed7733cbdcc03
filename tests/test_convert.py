"""swin convert: every layout in and out, logits equal to the source library's, lossless round trips."""

import os
import re

import pytest
import torch
from safetensors.torch import save_file

from helpers import randomize
from swincli import create_model, load, load_model, save_model
from swincli.cli import main
from swincli.convert.official_layout import to_official
from swincli.convert.run import convert

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
DEPTHS = (2, 2, 2, 2)


def _input(size):
    return torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(3))


def _rel(a, b):
    return ((a - b).abs().max() / a.abs().max()).item()


# ------------------------------------------------------------------ sources built by each library
def timm_source(tmp_path, name, **kw):
    model = randomize(timm.create_model(name, depths=DEPTHS, num_classes=11, **kw)).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return path, model, lambda x: model(x)


def official_source(tmp_path, name, simmim=False, **kw):
    """The official layout (merging at the end of a stage, head.*, stored buffers, {'model': ...}).
    The official code is not a package; timm equals it numerically, so timm's model gives the logits."""
    reference = randomize(timm.create_model(name, depths=DEPTHS, num_classes=11, **kw)).eval()
    state = {}
    for key, value in reference.state_dict().items():
        if "relative_position_index" in key or "coords_table" in key:
            continue
        key = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        state[key.replace("head.fc.", "head.")] = value
    from swincli.checkpoint import build_model
    from swincli.convert.infer import infer_config

    net = build_model(infer_config(state, model=None, img_size=kw.get("img_size"), window_size=kw.get("window_size"),
                                   pretrained_window_sizes=kw.get("pretrained_window_sizes"), path_text=name).config,
                      state, "test")  # fmt: skip
    official = to_official(state, net)
    assert any(k.endswith("attn_mask") for k in official)
    if simmim:  # SimMIM pretraining: encoder. prefix, rpe_mlp, a decoder and a mask token
        official = {"encoder." + k.replace(".cpb_mlp.", ".rpe_mlp."): v for k, v in official.items() if not k.startswith("head.")}
        official["encoder.mask_token"] = torch.zeros(1, 1, 96)
        official["decoder.0.weight"] = torch.zeros(3072, 768, 1, 1)
    path = tmp_path / f"{name}_official.pth"
    torch.save({"model": official}, path)
    if simmim:
        return path, reference, lambda x: reference.forward_head(reference.forward_features(x), pre_logits=True)
    return path, reference, lambda x: reference(x)


def hf_source(tmp_path, version, **kw):
    from transformers import SwinConfig, SwinForImageClassification, Swinv2Config, Swinv2ForImageClassification

    config_cls, model_cls = (Swinv2Config, Swinv2ForImageClassification) if version == 2 else (SwinConfig, SwinForImageClassification)
    labels = {i: f"thing {i}" for i in range(11)}
    model = randomize(model_cls(config_cls(depths=list(DEPTHS), id2label=labels, label2id={v: k for k, v in labels.items()}, **kw))).eval()
    path = tmp_path / f"hf-v{version}"
    model.save_pretrained(path)
    return path, model, lambda x: model(pixel_values=x).logits


def tv_source(tmp_path, version):
    from torchvision.models import swin_transformer as tv

    v2 = version == 2
    model = tv.SwinTransformer([4, 4], 96, list(DEPTHS), [3, 6, 12, 24], [8, 8] if v2 else [7, 7], num_classes=11,
                               block=tv.SwinTransformerBlockV2 if v2 else tv.SwinTransformerBlock,
                               downsample_layer=tv.PatchMergingV2 if v2 else tv.PatchMerging)  # fmt: skip
    randomize(model).eval()
    path = tmp_path / f"torchvision_v{version}.pth"
    torch.save(model.state_dict(), path)
    return path, model, lambda x: model(x)


SOURCES = {
    "timm-v1-224w7": (lambda p: timm_source(p, "swin_tiny_patch4_window7_224"), {}, (224, 224)),
    "timm-v1-192w6": (lambda p: timm_source(p, "swin_tiny_patch4_window7_224", img_size=192, window_size=6), {}, (192, 192)),
    "timm-v2-256w8": (lambda p: timm_source(p, "swinv2_tiny_window8_256"), {}, (256, 256)),
    "timm-v2-256w16-pre8": (
        lambda p: timm_source(p, "swinv2_tiny_window16_256", pretrained_window_sizes=(8, 8, 8, 8)),
        dict(window_size=16, pretrained_window_sizes=8),
        (256, 256),
    ),
    "official-v1-224w7": (lambda p: official_source(p, "swin_tiny_patch4_window7_224"), {}, (224, 224)),
    "official-v1-192w6": (
        lambda p: official_source(p, "swin_tiny_patch4_window7_224", img_size=192, window_size=6), {}, (192, 192)
    ),
    "official-v2-256w16-pre8": (
        lambda p: official_source(p, "swinv2_tiny_window16_256", pretrained_window_sizes=(8, 8, 8, 8)),
        dict(window_size=16, pretrained_window_sizes=8),
        (256, 256),
    ),
    "hf-v1-224w7": (lambda p: hf_source(p, 1, image_size=224, window_size=7), {}, (224, 224)),
    "hf-v1-192w6": (lambda p: hf_source(p, 1, image_size=192, window_size=6), {}, (192, 192)),
    "hf-v2-256w8": (lambda p: hf_source(p, 2, image_size=256, window_size=8), {}, (256, 256)),
    "hf-v2-256w16-pre8": (
        lambda p: hf_source(p, 2, image_size=256, window_size=16, pretrained_window_sizes=[8, 8, 8, 8]), {}, (256, 256)
    ),
    "torchvision-v1": (lambda p: tv_source(p, 1), dict(img_size=224), (224, 224)),
    "torchvision-v2": (lambda p: tv_source(p, 2), dict(img_size=256), (256, 256)),
}


# the fast tier converts from each library once (V1 and V2, a pretrained window); the slow tier every source
FAST_SOURCES = {"timm-v1-192w6", "official-v1-224w7", "hf-v2-256w16-pre8", "torchvision-v2"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if c in FAST_SOURCES else pytest.mark.slow) for c in SOURCES],
                         ids=list(SOURCES))  # fmt: skip
def test_converted_logits_equal_the_source_library(case, tmp_path):
    build, options, size = SOURCES[case]
    src, _, forward = build(tmp_path)
    report = convert(src, tmp_path / "out.safetensors", **options)
    assert report.check["max_rel_diff"] is not None and report.check["max_rel_diff"] < 1e-5
    model = load_model(tmp_path / "out.safetensors")
    assert model.config.image_hw == size
    x = _input(size)
    with torch.no_grad():
        assert _rel(forward(x), model(x)) < 1e-5
    if case.startswith("hf"):
        assert model.class_names[3] == "thing 3"


def test_simmim_checkpoint_imports_the_encoder(tmp_path):
    src, reference, forward = official_source(tmp_path, "swinv2_tiny_window8_256", simmim=True)
    report = convert(src, tmp_path / "enc.safetensors")
    model = load_model(tmp_path / "enc.safetensors")
    assert model.config.num_classes == 0 and report.source_layout == "official"
    x = _input((256, 256))
    with torch.no_grad():
        assert _rel(forward(x), model(x)) < 1e-5


def test_registry_name_in_the_path_gives_size_and_windows(tmp_path):
    model = randomize(timm.create_model("swinv2_tiny_window16_256", pretrained_window_sizes=(8, 8, 8, 8), depths=(2, 2, 6, 2)))
    folder = tmp_path / "models--timm--swinv2_base_window12to16_192to256.ms_in22k_ft_in1k"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    report = convert(folder / "pytorch_model.bin", tmp_path / "x.safetensors", check=False)
    # the registry entry is SwinV2-B, not these tiny weights: only the window pattern is taken from the name
    assert report.architecture["windows"] == [16, 16, 16, 8]
    assert report.architecture["pretrained_windows"] == [12, 12, 12, 6]
    assert any("file name" in n for n in report.notes)


# ------------------------------------------------------------------ swincli -> X -> swincli
ROUND_TRIP_MODELS = {
    "v1": lambda: create_model("swin-nano", num_classes=7),
    "v2": lambda: create_model("swinv2-nano", num_classes=7),
    "v2-w16-pre8": lambda: create_model("swinv2-nano", num_classes=7, window_size=16, pretrained_window_sizes=8),
}


@pytest.mark.parametrize("target", ["official", "timm", "hf", "torchvision"])
@pytest.mark.parametrize("which", ROUND_TRIP_MODELS, ids=list(ROUND_TRIP_MODELS))
def test_round_trip_is_lossless(which, target, tmp_path):
    model = randomize(ROUND_TRIP_MODELS[which]()).eval()
    names = [f"class {i}" for i in range(7)]
    ours = save_model(model, tmp_path / "ours.safetensors", class_names=names)
    out = tmp_path / ("exported" if target == "hf" else "exported.pth")
    if target == "torchvision" and which == "v2-w16-pre8":
        with pytest.raises(Exception, match="pretrained window|clips"):
            convert(ours, out, to=target)
        assert not out.exists()
        return
    report = convert(ours, out, to=target)
    assert report.check["max_rel_diff"] < 1e-5  # the written file, loaded by the target library
    options = {"window_size": 16, "pretrained_window_sizes": 8} if which == "v2-w16-pre8" and target != "hf" else {}
    back = convert(out, tmp_path / "back.safetensors", img_size=model.config.image_hw if target != "hf" else None, **options)
    assert back.source_layout == target
    again = load_model(tmp_path / "back.safetensors")
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again.config.layout() == model.config.layout()
    if target == "hf":
        assert again.class_names == names


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("swin-nano", 224), ("swinv2-nano", 256)])
def test_onnx_export_has_a_dynamic_batch(name, size, tmp_path, capsys):
    """Through the real command: it used to write a correct file, then exit 1 on a KeyError while printing."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = randomize(create_model(name, num_classes=5)).eval()
    src = save_model(model, tmp_path / "m.safetensors")
    assert main(["convert", str(src), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "Saved the ONNX model" in printed and "batches 1, 3" in printed
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, 3, size, size)
        with torch.no_grad():
            want = model(x)
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        assert _rel(want, got) < 1e-4


# ------------------------------------------------------------------ bad inputs through the CLI
class Payload:
    """Unpickling this would create a file: the proof that nothing was executed is that it does not exist."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _bad_inputs(tmp_path, good):
    from torchvision.models import resnet18

    random_bytes = tmp_path / "random.pth"
    random_bytes.write_bytes(os.urandom(4096))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-5000])
    code = tmp_path / "code.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "payload": Payload(tmp_path / "PWNED")}, code)
    resnet = tmp_path / "resnet18.pth"
    torch.save(resnet18().state_dict(), resnet)
    foreign_st = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in resnet18().state_dict().items()}, str(foreign_st))
    hf_empty = tmp_path / "hf-no-weights"
    hf_empty.mkdir()
    (hf_empty / "config.json").write_text('{"model_type": "swin"}')
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    return {
        "random bytes": (random_bytes, "neither a PyTorch checkpoint nor a readable safetensors"),
        "truncated safetensors": (truncated, "readable safetensors"),
        "pickle with code": (code, "can only be loaded by executing code"),
        "resnet state dict": (resnet, "not a Swin state dict"),
        "resnet safetensors": (foreign_st, "not a Swin state dict"),
        "hf folder without weights": (hf_empty, "no weights"),
        "empty file": (empty, "is empty"),
        "missing file": (tmp_path / "nope.pth", "no such file"),
    }


def test_bad_inputs_give_one_line_and_write_nothing(nano_checkpoint, tmp_path, capsys):
    for label, (src, message) in _bad_inputs(tmp_path, nano_checkpoint).items():
        out_dir = tmp_path / f"out-{label.replace(' ', '-')}"
        out_dir.mkdir()
        code = main(["convert", str(src), "-o", str(out_dir / "x.safetensors")])
        _, err = capsys.readouterr()
        assert code == 1, label
        assert message in err, (label, err)
        assert err.strip().count("\n") == 0 and "Traceback" not in err, label
        assert list(out_dir.iterdir()) == [], label
    assert not (tmp_path / "PWNED").exists()


def test_existing_output_needs_force(nano_checkpoint, tmp_path, capsys):
    src = nano_checkpoint
    out = tmp_path / "timm.pth"
    out.write_text("keep me")
    assert main(["convert", str(src), "--to", "timm", "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["convert", str(src), "--to", "timm", "-o", str(out), "--force"]) == 0
    assert "logits match timm" in capsys.readouterr().out


def test_cli_summary_and_json(tmp_path, capsys):
    src, _, _ = timm_source(tmp_path, "swinv2_tiny_window8_256")
    assert main(["convert", str(src), "-o", str(tmp_path / "a.safetensors"), "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["source_layout"] == "timm" and data["check"]["max_rel_diff"] < 1e-5
    assert main(["convert", str(src), "-o", str(tmp_path / "b.safetensors"), "--from", "hf"]) == 1
    assert "looks like a timm checkpoint" in capsys.readouterr().err


def test_checks_that_cannot_run_are_reported_or_refused(tmp_path):
    model = create_model("swin-nano", num_classes=3, ape=True)
    src = save_model(model, tmp_path / "ape.safetensors")
    report = convert(src, tmp_path / "ape_timm.pth", to="timm")
    assert report.check["max_rel_diff"] is None and "not checked" in report.check["note"]
    with pytest.raises(Exception, match="cannot check against timm"):
        convert(src, tmp_path / "again.pth", to="timm", check=True)
    assert not (tmp_path / "again.pth").exists()
    assert convert(src, tmp_path / "quiet.pth", to="timm", check=False).check is None


def test_convert_resizes_a_swincli_checkpoint(tmp_path, capsys):
    model = randomize(create_model("swinv2-nano", img_size=192, window_size=12, num_classes=21841))
    src = save_model(model, tmp_path / "swinv2_base_window12_192.safetensors")
    out = tmp_path / "b384.safetensors"
    code = main(["convert", str(src), "-o", str(out), "--size", "384", "--window", "24", "--num-classes", "1000"])
    printed = capsys.readouterr().out
    assert code == 0 and "Resolution transfer 192 -> 384" in printed and "normalised by 12" in printed
    resized = load_model(out)
    assert resized.config.image_hw == (384, 384) and resized.config.num_classes == 1000
    assert [st.window[0] for st in resized.config.layout()] == [24, 24, 24, 12]
    assert [st.pretrained_window[0] for st in resized.config.layout()] == [12, 12, 12, 6]
    expected = load(src, img_size=384, window_size=24, num_classes=1000)
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        assert torch.allclose(expected(x), resized(x), atol=1e-6)
    assert main(["convert", str(src), "-o", str(tmp_path / "x.safetensors"), "--model", "swin-t"]) == 1


def test_foreign_weights_with_a_known_size_are_resized(tmp_path):
    # V1: the tables say window 7, so --size 384 --window 12 is a target, reached with the bicubic rule
    src, reference, _ = timm_source(tmp_path, "swin_tiny_patch4_window7_224")
    report = convert(src, tmp_path / "v1.safetensors", img_size=384, window_size=12)
    assert report.check["max_rel_diff"] < 1e-5  # checked at the source size, before the transfer
    assert report.resize["img_size"] == [[224, 224], [384, 384]] and any("resize it" in n for n in report.notes)
    # V2 whose name gives 192 / window 12: --size 384 --window 24 is the official 12to24 transfer
    v2 = randomize(timm.create_model("swinv2_tiny_window8_256", depths=DEPTHS, num_classes=3, img_size=192, window_size=12))
    path = tmp_path / "my_window12_192.pth"
    torch.save(v2.state_dict(), path)
    report = convert(path, tmp_path / "v2.safetensors", img_size=384, window_size=24)
    assert report.architecture["pretrained_windows"] == [12, 12, 12, 6]
    assert report.architecture["windows"] == [24, 24, 24, 12]
