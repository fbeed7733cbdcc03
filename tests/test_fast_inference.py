"""The CPU inference path (cache-blocked blocks, oneDNN-fused linears) computes what the plain path does."""

import pytest
import torch
import torch.nn.functional as F

from conftest import randomize
from swincli import create_model
from swincli.models import blocked_inference, onednn
from swincli.profiling.attention_schemes import use_scheme


def plain(model, x):
    """The layer-by-layer path: autograd on, so neither the blocked path nor the fused ops apply."""
    with torch.enable_grad():
        return model(x).detach()


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
@pytest.mark.parametrize("size", [None, (50, 70)])
def test_blocked_inference_equals_the_layer_path(name, size, monkeypatch):
    model = randomize(create_model(name, num_classes=7, img_size=size or 64)).eval()
    x = torch.randn(3, 3, *model.config.image_hw)
    expected = plain(model, x)
    calls = []
    original = blocked_inference.run_block
    monkeypatch.setattr(blocked_inference, "run_block", lambda block, t: calls.append(1) or original(block, t))
    for rows in (64, 4096):  # many small chunks, and a whole stage per chunk
        monkeypatch.setattr(blocked_inference, "ROWS", rows)
        with torch.inference_mode():
            got = model(x)
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert len(calls) == 2 * sum(model.config.depths)


def test_blocked_inference_honours_the_attention_chunk(tiny_v2):
    x = torch.randn(2, 3, *tiny_v2.config.image_hw)
    expected = plain(tiny_v2, x)
    tiny_v2.set_attention_chunk(1)
    with torch.no_grad():
        assert torch.allclose(tiny_v2(x), expected, atol=1e-5, rtol=1e-5)


def test_blocked_inference_only_where_it_applies(tiny_v1):
    block = next(tiny_v1.blocks())
    x = torch.randn(1, 8, 8, block.attn.dim)
    with torch.no_grad():
        assert blocked_inference.applies(block, x)
        with use_scheme(tiny_v1, "padding"):  # a replaced attention is the profiler's to run
            assert not blocked_inference.applies(block, x)
        tiny_v1.train()
        assert not blocked_inference.applies(block, x)
    tiny_v1.eval()
    assert not blocked_inference.applies(block, x)  # autograd on


def test_window_order_is_roll_then_partition():
    from swincli.models.window import window_partition

    x = torch.randn(2, 12, 18, 5)
    order = blocked_inference.window_order((12, 18), (6, 6), (3, 3), torch.device("cpu"))
    rolled = window_partition(torch.roll(x, (-3, -3), dims=(1, 2)), (6, 6))
    assert torch.equal(x.reshape(2, -1, 5)[:, order].view_as(rolled), rolled)


@pytest.mark.skipif(not onednn.enabled(), reason="this PyTorch build has no oneDNN fused linear")
@pytest.mark.parametrize("gelu, residual", [(False, False), (True, False), (False, True)])
def test_fused_linear_equals_the_plain_ops(gelu, residual):
    x, w, b = torch.randn(4, 30, 16), torch.randn(24, 16), torch.randn(24)
    r = torch.randn(4, 30, 24) if residual else None
    expected = F.linear(x, w, b)
    expected = F.gelu(expected) if gelu else expected
    expected = expected + r if residual else expected
    with torch.no_grad():
        got = onednn.linear(x, w, b, gelu=gelu, residual=r)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not onednn.enabled(), reason="this PyTorch build has no oneDNN fused linear")
def test_fused_linear_keeps_autograd_and_refreshes_its_bf16_weights():
    layer = torch.nn.Linear(16, 8)
    x = torch.randn(5, 16, requires_grad=True)
    onednn.linear(x, layer.weight, layer.bias).sum().backward()  # grad on: the plain op, differentiable
    assert x.grad is not None
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no bf16 support in oneDNN on this CPU")
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        first = onednn.linear(x, layer.weight, layer.bias)
        assert first.dtype == torch.bfloat16
        layer.weight.mul_(2)  # an in-place update must not leave a stale bf16 copy behind
        second = onednn.linear(x, layer.weight, None)
        expected = F.linear(x, layer.weight)
    assert torch.allclose(second.float(), expected.float(), rtol=2e-2, atol=2e-2)


def test_switching_the_fused_ops_off_gives_the_same_result(tiny_v1):
    x = torch.randn(2, 3, *tiny_v1.config.image_hw)
    with torch.no_grad():
        fused = tiny_v1(x)
        was = onednn.enabled()
        onednn.set_enabled(False)
        try:
            unfused = tiny_v1(x)
        finally:
            onednn.set_enabled(was)
    assert torch.allclose(fused, unfused, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_bf16_autocast_stays_close_to_fp32(name):
    model = randomize(create_model(name, num_classes=7)).eval()
    x = torch.randn(2, 3, *model.config.image_hw)
    with torch.no_grad():
        full = model(x)
        with torch.autocast("cpu", torch.bfloat16):
            half = model(x).float()
    assert (half - full).abs().max() <= 0.05 * full.abs().max()


def test_cosine_attention_equals_normalise_then_scale(tiny_v2):
    attn = next(tiny_v2.attentions())
    qk = torch.randn(2, 3, 16, 2, attn.num_heads, attn.head_dim)
    got = attn._cosine_qk(qk)
    scale = torch.clamp(attn.logit_scale, max=torch.log(torch.tensor(100.0))).exp().view(-1, 1)
    q, k = F.normalize(qk[:, :, :, 0], dim=-1) * scale, F.normalize(qk[:, :, :, 1], dim=-1)
    assert torch.allclose(got[:, :, :, 0], q, atol=1e-5) and torch.allclose(got[:, :, :, 1], k, atol=1e-6)


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_compiles_as_one_graph(name):
    """``swin profile --compile`` uses fullgraph=True: tracing must not break (the eager backend keeps it fast)."""
    torch._dynamo.reset()
    model = randomize(create_model(name, num_classes=5, img_size=64)).eval()
    x = torch.randn(2, 3, 64, 64)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad(), torch._dynamo.config.patch(error_on_recompile=True):
        assert torch.allclose(compiled(x), model(x), atol=1e-5, rtol=1e-5)
        compiled(x)  # the same shapes again: no recompilation (nothing the graph reads may change)


def test_blocked_inference_follows_a_resize(tiny_v2):
    """Cached window orders and masks must not outlive a change of window or image size."""
    x = torch.randn(1, 3, *tiny_v2.config.image_hw)
    with torch.no_grad():
        tiny_v2(x)  # fills the caches
    tiny_v2.resize(img_size=96, window_size=6)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(tiny_v2(x), plain(tiny_v2, x), atol=1e-5, rtol=1e-5)
