import pytest
import torch

from helpers import randomize
from swincli import SwinConfig, SwinTransformer, count_params, create_model
from swincli.models.shift_mask import MASK_VALUE, shift_mask


def test_shift_mask_hand_computed():
    mask = shift_mask((4, 4), (2, 2), (1, 1))
    assert mask.shape == (4, 4, 4)
    assert torch.all(mask[0] == 0)  # top-left window: one region
    # top-right window: columns 2 and 3 come from different regions; tokens (0,2),(0,3),(1,2),(1,3)
    expected = torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]) * MASK_VALUE
    assert torch.equal(mask[1], expected)
    # bottom-right window: four tokens from four regions
    assert torch.equal(mask[3], (1 - torch.eye(4)) * MASK_VALUE)
    assert shift_mask((4, 4), (2, 2), (0, 0)) is None


@pytest.mark.parametrize("fixture", ["tiny_v1", "tiny_v2"])
def test_sdpa_path_equals_eager_path(fixture, request):
    model = request.getfixturevalue(fixture).double()
    x = torch.randn(2, 3, *model.config.image_hw, dtype=torch.float64)
    with torch.no_grad():
        model.set_attention("sdpa")
        fused = model(x)
        model.set_attention("eager")
        eager = model(x)
        model.set_attention("auto")
        auto = model(x)
    assert torch.allclose(fused, eager, rtol=0, atol=1e-10) and torch.allclose(auto, eager, rtol=0, atol=1e-10)
    model.train()  # the training path computes the mask without the cache
    model.set_attention("sdpa")
    assert torch.allclose(model(x), eager, atol=1e-10)


def test_non_square_images_and_windows():
    model = randomize(SwinTransformer(SwinConfig(version=2, img_size=(64, 96), window_size=(4, 6), embed_dim=16,
                                                 depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), num_classes=4)))
    model.eval().double()
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        a = model(x)
        model.set_attention("eager")
        b = model(x)
    assert a.shape == (2, 4) and torch.allclose(a, b, atol=1e-10)


def test_eval_cache_follows_weight_changes(tiny_v1):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = tiny_v1(x)
        assert torch.equal(before, tiny_v1(x))
        table = tiny_v1.layers[0].blocks[1].attn.relative_position_bias_table
        table.add_(torch.randn_like(table))  # not a constant: softmax ignores those
        after = tiny_v1(x)
        tiny_v1.set_attention("eager")
        reference = tiny_v1(x)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, reference, atol=1e-5)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_batch_is_never_frozen(tiny_v2):
    x = torch.randn(3, 3, 256, 256)
    with torch.no_grad():
        batched = tiny_v2(x)
        single = torch.cat([tiny_v2(x[i : i + 1]) for i in range(3)])
        traced = torch.jit.trace(tiny_v2, x[:2], check_trace=False)
        assert torch.allclose(traced(x), batched, atol=1e-5)  # traced at batch 2, run at batch 3
    assert torch.allclose(batched, single, atol=1e-5)


def test_features_for_any_input_size(tiny_v1):
    x = torch.randn(2, 3, 200, 300)
    with torch.no_grad():
        final, maps = tiny_v1.forward_intermediates(x)
        logits = tiny_v1(x)
    assert [tuple(m.shape) for m in maps] == [(2, 32, 50, 75), (2, 64, 25, 38), (2, 128, 13, 19), (2, 256, 7, 10)]
    assert final.shape == (2, 256, 7, 10) and logits.shape == (2, 10)
    assert [f["reduction"] for f in tiny_v1.feature_info] == [4, 8, 16, 32]
    with torch.no_grad():
        only = tiny_v1.forward_intermediates(x, indices=2, intermediates_only=True)
        normed = tiny_v1.forward_intermediates(x, indices=[-1], norm=True, intermediates_only=True)
        assert torch.equal(normed[0], tiny_v1.forward_features(x))
    assert [m.shape[1] for m in only] == [128, 256]


def test_derived_buffers_are_not_stored(tiny_v2):
    keys = tiny_v2.state_dict().keys()
    assert not [k for k in keys if "relative_position_index" in k or "coords_table" in k or "attn_mask" in k]
    assert any("cpb_mlp.0.weight" in k for k in keys) and not any("k_bias" in k for k in keys)


def test_v2_blocks_start_as_identity():
    model = create_model("swinv2-nano")
    block = model.layers[0].blocks[1]
    x = torch.randn(1, 64, 64, 32)
    assert torch.equal(block(x), x)


def test_stochastic_depth_grows_linearly():
    model = create_model("swin-nano", drop_path_rate=0.3)
    rates = [b.drop_path.p for b in model.blocks()]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.3) and rates == sorted(rates)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_v2):
    model = tiny_v2.double().train()
    x = torch.randn(2, 3, 256, 256, dtype=torch.float64)
    model(x).sum().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    assert all(torch.allclose(a, p.grad) for a, p in zip(plain, model.parameters()))


@pytest.mark.parametrize("ablation", [dict(ape=True), dict(shift=False), dict(rel_pos=False)])
@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_ablations_build_and_run(name, ablation):
    model = create_model(name, num_classes=5, img_size=128, **ablation).eval()
    assert count_params(model.config) == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 128))
        bigger = model(torch.randn(1, 3, 160, 192))  # absolute positions are resized on the fly
    assert out.shape == bigger.shape == (1, 5)
    if ablation.get("shift") is False:
        assert all(b.shift == (0, 0) for b in model.blocks())
    if ablation.get("rel_pos") is False:
        assert not any("relative_position" in k or "cpb" in k for k in model.state_dict())


def test_no_weight_decay_names(tiny_v2):
    names = tiny_v2.no_weight_decay()
    assert any("cpb_mlp" in n for n in names) and any("logit_scale" in n for n in names)


@pytest.mark.parametrize("fixture", ["tiny_v1", "tiny_v2"])
def test_attention_chunks_give_the_same_result(fixture, request):
    model = request.getfixturevalue(fixture).double().train()
    x = torch.randn(2, 3, *model.config.image_hw, dtype=torch.float64)
    whole = model(x)
    whole.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_attention_chunk(5)  # 64 windows in stage 1 -> 13 sequential chunks
    chunked = model(x)
    chunked.sum().backward()
    assert torch.allclose(whole, chunked, atol=1e-10)
    assert all(torch.allclose(a, p.grad, atol=1e-10) for a, p in zip(grads, model.parameters()))
