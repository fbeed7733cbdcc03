"""Resolution and window transfer (V1 bicubic tables, V2 continuous position bias) and head changes."""

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import randomize
from swincli import SwinConfig, SwinTransformer, create_model, load, load_model, reset_head, save_model
from swincli.errors import ConfigError
from swincli.labels import imagenet_names, map_22k_to_1k
from swincli.models.continuous_position_bias import log_spaced_coords
from swincli.models.relative_position_bias import resize_table

timm = pytest.importorskip("timm")


def _rel(a, b):
    return ((a - b).abs().max() / a.abs().max()).item()


@pytest.mark.parametrize("size, window", [(256, 16), (384, 12), (192, 6)])
def test_v2_transfer_equals_timm_built_at_the_target(size, window):
    from swincli.convert.timm_layout import from_timm

    source = randomize(timm.create_model("swinv2_tiny_window8_256", depths=(2, 2, 2, 2), num_classes=5))
    ours = SwinTransformer(SwinConfig(version=2, img_size=256, window_size=8, depths=(2, 2, 2, 2), num_classes=5))
    ours.load_state_dict(from_timm(source.state_dict()))
    report = ours.eval().set_input_size(size, window)
    target = timm.create_model("swinv2_tiny_window8_256", depths=(2, 2, 2, 2), num_classes=5, img_size=size,
                               window_size=window, pretrained_window_sizes=(8, 8, 8, 8)).eval()  # fmt: skip
    missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
    assert not unexpected and all("relative" in k or "mask" in k for k in missing)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert _rel(target(x), ours(x)) < 1e-5
    assert [st.pretrained_window for st in ours.config.layout()] == [(8, 8)] * 4
    assert report.changed and all(s.actions for s in report.stages)


def test_v1_transfer_is_the_official_bicubic_rule():
    model = randomize(create_model("swin-nano", num_classes=4)).eval()
    reference = SwinTransformer(model.config.replace(img_size=384, window_size=12)).eval()
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("relative_position_bias_table"):  # written out here, independently of swincli
            heads = value.shape[1]
            grid = value.permute(1, 0).reshape(1, heads, 13, 13)
            value = F.interpolate(grid, size=(23, 23), mode="bicubic", align_corners=False).reshape(heads, -1).permute(1, 0)
        state[key] = value
    reference.load_state_dict(state)
    report = model.set_input_size(384, 12)
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        assert _rel(reference(x), model(x)) < 1e-6
    assert "bias tables 13x13 -> 23x23 (bicubic)" in report.stages[0].actions


def _cubic(x, a=-0.75):
    """PyTorch's cubic convolution kernel, written out."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def _bicubic_1d(values, out_len):
    n = len(values)
    out = []
    for i in range(out_len):
        src = (i + 0.5) * n / out_len - 0.5
        base = math.floor(src)
        t = src - base
        acc = 0.0
        for k in range(-1, 3):
            idx = min(max(base + k, 0), n - 1)  # border samples are repeated
            acc += values[idx] * _cubic(k - t)
        out.append(acc)
    return out


def test_v1_rule_hand_computed():
    # window 2 -> 3: a 3x3 grid per head becomes 5x5. A separable table u v^T resizes to U V^T.
    u, v = [0.0, 1.0, 4.0], [2.0, -1.0, 0.5]
    table = torch.tensor([[a * b] for a in u for b in v])  # (9, 1 head)
    out = resize_table(table, (2, 2), (3, 3)).view(5, 5)
    expected = torch.tensor(_bicubic_1d(u, 5))[:, None] * torch.tensor(_bicubic_1d(v, 5))[None, :]
    assert torch.allclose(out, expected, atol=1e-6)
    assert out[2, 2].item() == pytest.approx(1.0 * -1.0)  # the centre (offset 0) maps onto itself
    # first output of u: src = 0.5 * 3/5 - 0.5 = -0.2, so t = 0.8 from sample -1; the four taps are
    # samples -2, -1, 0, 1 -> clamped to u[0], u[0], u[0], u[1] = 0, 0, 0, 1, and only the last
    # counts: cubic(1.2) = a*1.2^3 - 5a*1.2^2 + 8a*1.2 - 4a with a = -0.75, i.e. -0.096
    assert _bicubic_1d(u, 5)[0] == pytest.approx(-0.096)
    assert out[0, 2].item() == pytest.approx(-0.096 * -1.0, abs=1e-6)


def test_v2_rule_hand_computed():
    # window 3 normalised by a pretrained window 2: offsets -2..2 / (2-1) * 8 = -16..16,
    # then sign(x) * log2(|x| + 1) / log2(8)
    table = log_spaced_coords((3, 3), (2, 2))
    expected = torch.tensor([-math.log2(17) / 3, -math.log2(9) / 3, 0.0, math.log2(9) / 3, math.log2(17) / 3])
    assert torch.allclose(table[0, :, 2, 0], expected, atol=1e-6)  # dh along the first axis, dw = 0
    assert torch.allclose(table[0, 2, :, 1], expected, atol=1e-6)
    assert table[0, 2, 2].abs().sum() == 0
    assert table[0, 0, 0, 0].item() == pytest.approx(-1.362488, abs=1e-6)  # log2(17) / 3


def test_v2_resizing_twice_equals_once():
    base = randomize(create_model("swinv2-nano", num_classes=3)).eval()
    once = SwinTransformer(base.config).eval()
    once.load_state_dict(base.state_dict())
    base.set_input_size(384, 12)
    base.set_input_size(256, 16)
    once.set_input_size(256, 16)
    assert base.config == once.config
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(base(x), once(x))
    assert [st.pretrained_window for st in base.config.layout()] == [(8, 8)] * 4


def test_resizing_to_the_same_size_is_a_no_op(tiny_v1):
    before = {k: v.clone() for k, v in tiny_v1.state_dict().items()}
    config = tiny_v1.config
    report = tiny_v1.set_input_size(224, 7)
    assert not report.changed and tiny_v1.config == config
    assert all(torch.equal(before[k], v) for k, v in tiny_v1.state_dict().items())


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_non_square_forward_and_backward(name):
    model = randomize(create_model(name, num_classes=3, drop_path_rate=0.0))
    model.set_input_size((224, 288), (7, 9))
    assert [st.window for st in model.config.layout()] == [(7, 9)] * 4
    assert [st.shift for st in model.config.layout()] == [(3, 4), (3, 4), (3, 4), (0, 0)]
    x = torch.randn(2, 3, 224, 288, requires_grad=True)
    out = model(x)
    out.sum().backward()
    assert out.shape == (2, 3) and torch.isfinite(x.grad).all()
    direct = create_model(name, num_classes=3, img_size=(224, 288), window_size=(7, 9))
    direct(torch.randn(1, 3, 224, 288)).sum().backward()


def test_padding_is_reported_with_sizes_that_avoid_it(tiny_v1):
    report = tiny_v1.set_input_size(256)
    assert report.padding[0] == "stage 1: map 64 is padded to 70"
    assert report.padding[-1] == "sizes that need no padding: 224 or 448"
    with torch.no_grad():
        assert tiny_v1(torch.randn(1, 3, 256, 256)).shape == (1, 10)


def test_impossible_transfers_are_refused(tiny_v1):
    with pytest.raises(ConfigError, match="too small"):
        tiny_v1.set_input_size(16)
    from swincli.models.resize import plan_resize

    with pytest.raises(ConfigError, match="patch size"):
        plan_resize(tiny_v1.config, img_size=224, patch_size=2)


def test_absolute_position_embeddings_are_resized():
    model = randomize(create_model("swin-nano", ape=True, num_classes=2))
    report = model.set_input_size(448, 14)
    assert model.absolute_pos_embed.shape == (1, 112 * 112, 32)
    assert "56 -> 112" in report.ape


def test_head_22k_to_1k_uses_the_official_rows():
    model = randomize(create_model("swinv2-nano", num_classes=21841))
    weight, bias = model.head.weight.detach().clone(), model.head.bias.detach().clone()
    what = reset_head(model, 1000)
    rows = list(map_22k_to_1k())
    assert torch.equal(model.head.weight, weight[rows]) and torch.equal(model.head.bias, bias[rows])
    assert model.class_names == list(imagenet_names(1000)) and "22k -> 1k" in what
    assert model.config.num_classes == 1000


def test_other_head_changes(tiny_v1):
    assert "zero-initialised" in reset_head(tiny_v1, 7)
    assert tiny_v1.head.out_features == 7 and tiny_v1.head.weight.abs().sum() == 0
    reset_head(tiny_v1, 0)
    assert tiny_v1(torch.randn(1, 3, 224, 224)).shape == (1, 256)


def test_reset_classifier_with_a_row_map(tiny_v1):
    """The model knows nothing of ImageNet: the rows to keep are the caller's."""
    weight = tiny_v1.head.weight.detach().clone()
    tiny_v1.reset_classifier(3, row_map=[9, 0, 4])
    assert torch.equal(tiny_v1.head.weight, weight[[9, 0, 4]]) and tiny_v1.config.num_classes == 3
    with pytest.raises(ConfigError, match=">= 0"):
        tiny_v1.reset_classifier(-1)


def test_load_model_into_another_size(tiny_v2, tmp_path):
    path = save_model(tiny_v2, tmp_path / "m.safetensors")
    model = load(path, img_size=384, window_size=12, num_classes=4)
    assert model.config.image_hw == (384, 384) and model.config.num_classes == 4
    assert model.preprocessing.input_size == (384, 384) and model.resize_report.changed
    expected = load_model(path)
    expected.set_input_size(384, 12)
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        assert torch.allclose(model.forward_features(x), expected.forward_features(x))
