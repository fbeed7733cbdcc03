"""The CPU inference fast path (optimize_for_inference: blocked blocks, fused linears) computes what the
model computes, and steps aside whenever it could be observed."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import randomize
from swincli import create_model
from swincli.models.fast_path import optimize_for_inference, restore
from swincli.models import blocked_block
from swincli.models.blocked_block import BlockedSwinBlock, window_order
from swincli.models.block import SwinBlock
from swincli.models.fused_linear import FusedLinear, available
from swincli.profiling.attention_schemes import use_scheme

needs_onednn = pytest.mark.skipif(not available(), reason="this PyTorch build has no oneDNN fused linear")


def reference(model, x):
    """The layer-by-layer path: autograd on, so neither the blocked path nor the fused ops apply."""
    with torch.enable_grad():
        return model(x).detach()


def count_blocked_runs(monkeypatch) -> list:
    calls = []
    original = BlockedSwinBlock._chunks
    monkeypatch.setattr(BlockedSwinBlock, "_chunks", lambda self, *a: calls.append(1) or original(self, *a))
    return calls


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
@pytest.mark.parametrize("size", [None, (50, 70)])
def test_blocked_inference_equals_the_layer_path(name, size, monkeypatch):
    model = randomize(create_model(name, num_classes=7, img_size=size or 64)).eval()
    x = torch.randn(3, 3, *model.config.image_hw)
    expected = reference(model, x)
    plan = optimize_for_inference(model)
    assert plan.blocked_blocks == sum(model.config.depths) and not plan.kept
    calls = count_blocked_runs(monkeypatch)
    for tokens in (64, 4096):  # many small chunks, and a whole stage per chunk
        for block in model.blocks():
            block.block_tokens = tokens
        with torch.inference_mode():
            got = model(x)
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert len(calls) == 2 * sum(model.config.depths)


def test_optimize_keeps_keys_parameters_and_is_undone_by_restore(tiny_v2):
    keys = list(tiny_v2.state_dict())
    params = [id(p) for p in tiny_v2.parameters()]
    optimize_for_inference(tiny_v2)
    optimize_for_inference(tiny_v2)  # twice is harmless
    assert list(tiny_v2.state_dict()) == keys and [id(p) for p in tiny_v2.parameters()] == params
    assert "BlockedSwinBlock" in repr(tiny_v2)
    restore(tiny_v2)
    assert {type(m) for m in tiny_v2.modules()}.isdisjoint({FusedLinear, BlockedSwinBlock})


def test_blocked_inference_honours_the_attention_chunk(tiny_v2):
    x = torch.randn(2, 3, *tiny_v2.config.image_hw)
    expected = reference(tiny_v2, x)
    optimize_for_inference(tiny_v2)
    tiny_v2.set_attention_chunk(1)
    with torch.no_grad():
        assert torch.allclose(tiny_v2(x), expected, atol=1e-5, rtol=1e-5)


def test_blocked_inference_only_where_it_cannot_be_seen(tiny_v1):
    optimize_for_inference(tiny_v1)
    block = next(tiny_v1.blocks())
    x = torch.randn(1, 8, 8, block.attn.dim)
    with torch.no_grad():
        assert block.applies(x)
        with use_scheme(tiny_v1, "padding"):  # a replaced attention is the profiler's to run
            assert type(block) is not BlockedSwinBlock
        assert block.applies(x)
        handle = block.mlp.fc1.register_forward_hook(lambda *a: None)
        assert not block.applies(x)  # a hooked submodule runs as itself
        handle.remove()
        handle = nn.modules.module.register_module_forward_hook(lambda *a: None)
        assert not block.applies(x)  # so does everything under a global hook
        handle.remove()
        block.attn.proj_drop.train()
        assert not block.applies(x)  # a submodule in training mode
        block.attn.proj_drop.eval()
        tiny_v1.train()
        assert not block.applies(x)
    tiny_v1.eval()
    assert not block.applies(x)  # autograd on


def test_a_wrapped_submodule_runs_as_itself(tiny_v1, monkeypatch):
    """Replacing a linear by another module type (as peft or quantisation do) turns the block path off."""
    x = torch.randn(1, 3, *tiny_v1.config.image_hw)
    optimize_for_inference(tiny_v1)
    attn = tiny_v1.layers[0].blocks[0].attn
    seen = []

    class Wrapped(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, t):
            seen.append(t.shape)
            return self.inner(t)

    attn.qkv = Wrapped(attn.qkv)
    calls = count_blocked_runs(monkeypatch)
    with torch.no_grad():
        tiny_v1(x)
    assert seen and len(calls) == sum(tiny_v1.config.depths) - 1


def test_window_order_is_roll_then_partition():
    from swincli.models.window import window_partition

    x = torch.randn(2, 12, 18, 5)
    order = window_order((12, 18), (6, 6), (3, 3), torch.device("cpu"))
    rolled = window_partition(torch.roll(x, (-3, -3), dims=(1, 2)), (6, 6))
    assert torch.equal(x.reshape(2, -1, 5)[:, order].view_as(rolled), rolled)


@needs_onednn
@pytest.mark.parametrize("gelu, extra", [(False, False), (True, False), (False, True), (True, True)])
def test_fused_linear_equals_the_plain_ops(gelu, extra):
    layer = FusedLinear.swap(nn.Linear(16, 24))
    x, e = torch.randn(4, 30, 16), torch.randn(24)
    expected = F.linear(x, layer.weight, layer.bias) + (e if extra else 0)
    expected = F.gelu(expected) if gelu else expected
    with torch.no_grad():
        got = layer.fused(x, gelu=gelu, extra_bias=e if extra else None)
        assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)


@needs_onednn
def test_fused_linear_keeps_autograd_and_refreshes_its_bf16_weights():
    layer = FusedLinear.swap(nn.Linear(16, 8))
    x = torch.randn(5, 16, requires_grad=True)
    layer(x).sum().backward()  # grad on: the plain op, differentiable
    assert x.grad is not None and layer.weight.grad is not None
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no bf16 support in oneDNN on this CPU")
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        first = layer(x)
        assert first.dtype == torch.bfloat16 and "_cast" in layer.__dict__  # the cast lives on the module
        layer.weight.mul_(2)  # an in-place update must not leave a stale bf16 copy behind
        second = layer(x)
        expected = F.linear(x, layer.weight, layer.bias)
    assert torch.allclose(second.float(), expected.float(), rtol=2e-2, atol=2e-2)


def test_without_fused_linears_the_result_is_the_same(tiny_v1):
    x = torch.randn(2, 3, *tiny_v1.config.image_hw)
    optimize_for_inference(tiny_v1)
    with torch.no_grad():
        fused = tiny_v1(x)
    restore(tiny_v1)
    plan = optimize_for_inference(tiny_v1, fused_linear=False)
    assert plan.fused_linears == 0 and plan.blocked_blocks > 0
    with torch.no_grad():
        unfused = tiny_v1(x)
    assert torch.allclose(fused, unfused, atol=1e-5, rtol=1e-5)


def test_hooked_linears_are_kept_and_listed(tiny_v1):
    tiny_v1.head.register_forward_hook(lambda *a: None)
    plan = optimize_for_inference(tiny_v1)
    assert type(tiny_v1.head) is nn.Linear and any(k.startswith("head:") for k in plan.kept)


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_bf16_autocast_stays_close_to_fp32(name):
    model = randomize(create_model(name, num_classes=7)).eval()
    optimize_for_inference(model)
    x = torch.randn(2, 3, *model.config.image_hw)
    with torch.no_grad():
        full = model(x)
        with torch.autocast("cpu", torch.bfloat16):
            half = model(x).float()
    assert (half - full).abs().max() <= 0.05 * full.abs().max()


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_compiles_as_one_graph(name):
    """``swin profile --compile`` uses fullgraph=True on the optimised model: the fast path steps aside while
    tracing, and nothing the graph reads may change between calls (the eager backend keeps it fast)."""
    torch._dynamo.reset()
    model = randomize(create_model(name, num_classes=5, img_size=64)).eval()
    optimize_for_inference(model)
    x = torch.randn(2, 3, 64, 64)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad(), torch._dynamo.config.patch(error_on_recompile=True):
        assert torch.allclose(compiled(x), model(x), atol=1e-5, rtol=1e-5)
        compiled(x)  # the same shapes again: no recompilation


def test_blocked_inference_follows_a_resize(tiny_v2):
    """Cached window orders and masks must not outlive a change of window or image size."""
    optimize_for_inference(tiny_v2)
    x = torch.randn(1, 3, *tiny_v2.config.image_hw)
    with torch.no_grad():
        tiny_v2(x)  # fills the caches
    tiny_v2.set_input_size(img_size=96, window_size=6)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(tiny_v2(x), reference(tiny_v2, x), atol=1e-5, rtol=1e-5)


def test_no_environment_is_read_at_import():
    assert not hasattr(blocked_block, "os")
    assert BlockedSwinBlock.block_tokens == blocked_block.DEFAULT_BLOCK_TOKENS
    assert issubclass(BlockedSwinBlock, SwinBlock) and issubclass(FusedLinear, nn.Linear)
