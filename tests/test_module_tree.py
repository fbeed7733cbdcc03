"""The model is an honest nn.Module tree: every submodule runs through its own forward, so hooks, peft LoRA
and other wrappers see what the user built; and the optimised attention equals the paper's formula."""

import copy

import pytest
import torch
from torch import nn

from helpers import randomize
from swincli import create_model
from swincli.models.fast_path import optimize_for_inference
from swincli.models.shift_mask import window_masks

HOOKED = (nn.Linear, nn.LayerNorm, nn.GELU, nn.Dropout)


def fired_hooks(model: nn.Module, run) -> tuple[set[str], set[str]]:
    """(names of hooked modules, names whose forward hook fired) while ``run()`` runs."""
    names, fired = set(), set()
    for name, m in model.named_modules():
        if isinstance(m, HOOKED):
            names.add(name)
            m.register_forward_hook(lambda mod, args, out, name=name: fired.add(name))
    run()
    return names, fired


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
@pytest.mark.parametrize("mode", ["train", "eval", "eval-no-grad", "optimised-eval-no-grad"])
def test_every_module_hook_fires(name, mode):
    model = randomize(create_model(name, num_classes=5, img_size=64, window_size=4))
    model.train(mode == "train")
    if mode.startswith("optimised"):
        optimize_for_inference(model)
    x = torch.randn(2, 3, 64, 64)

    def run():
        with torch.set_grad_enabled("no-grad" not in mode):
            model(x)

    names, fired = fired_hooks(model, run)
    assert len(names) > 50 and fired == names


def count_linear_calls(model: nn.Module) -> dict[str, int]:
    """Calls of every ``nn.Linear`` of ``model`` (FusedLinear included) from now on, by name, through forward hooks."""
    counts = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            counts[name] = 0
            m.register_forward_hook(lambda mod, args, out, name=name: counts.__setitem__(name, counts[name] + 1))
    return counts


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_every_linear_runs_on_every_forward(name):
    """No module is skipped by a cache on a later call (V2's CPB MLP once was, after the first no-grad
    forward): quantisation observers and FLOP counters see every call, in every mode."""
    model = randomize(create_model(name, num_classes=5, img_size=64, window_size=4))
    counts = count_linear_calls(model)
    assert len(counts) > 20 and (name == "swin-nano" or any(".cpb_mlp.0" in n for n in counts))
    x, done = torch.randn(2, 3, 64, 64), 0
    for train, grad in [(False, False), (False, True), (True, False), (True, True)]:
        model.train(train)
        for _ in range(3):
            with torch.set_grad_enabled(grad):
                model(x)
            done += 1
            assert {n for n, c in counts.items() if c != done} == set(), (train, grad)


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_global_hooks_see_every_module_under_sdpa(name):
    """SDPA skips the idle ``attn_drop`` module only where nobody can tell; a global module hook (FLOP counters,
    module trackers) can, so the explicit softmax runs and calls it."""
    model = randomize(create_model(name, num_classes=5, img_size=64, window_size=4)).eval()
    model.set_attention("sdpa")
    seen = []
    handle = nn.modules.module.register_module_forward_hook(lambda mod, args, out: seen.append(mod))
    try:
        with torch.no_grad():
            model(torch.randn(1, 3, 64, 64))
    finally:
        handle.remove()
    called = {id(m) for m in seen}
    assert all(id(attn.attn_drop) in called for attn in model.attentions())


def test_hooks_added_after_optimising_fire_on_every_forward(tiny_v2):
    """The fast path keeps V2's folded bias between calls; a hook added later on the CPB MLP makes it step aside."""
    optimize_for_inference(tiny_v2)
    x = torch.randn(1, 3, *tiny_v2.config.image_hw)
    with torch.no_grad():
        tiny_v2(x)  # fills the fast path's cache
        counts = count_linear_calls(tiny_v2)
        for _ in range(3):
            tiny_v2(x)
    assert all(c == 3 for c in counts.values()) and counts["layers.0.blocks.0.attn.cpb_mlp.0"] == 3


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_optimised_model_follows_in_place_position_bias_updates(name):
    """The substitution's kept bias + mask is keyed on the parameters' versions: never stale after an in-place update."""
    plain = randomize(create_model(name, num_classes=5, img_size=64, window_size=4)).eval()
    fast = copy.deepcopy(plain)
    assert optimize_for_inference(fast).blocked_blocks == sum(plain.config.depths)
    x = torch.randn(2, 3, 64, 64)
    outputs = []
    for step in range(2):
        with torch.inference_mode():
            want, got, again = plain(x), fast(x), fast(x)  # the second fast call takes the kept mask
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5) and torch.equal(again, got)
        outputs.append(want)
        with torch.no_grad():
            for model in (plain, fast):
                for block in model.blocks():
                    attn = block.attn
                    bias = attn.cpb_mlp[0].weight if attn.version == 2 else attn.relative_position_bias_table
                    bias.mul_(-3.0).add_(0.5)
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-3)  # the update changed the logits


def test_hooks_added_after_optimising_see_the_layer_output(tiny_v1):
    """A hook on fc1 sees fc1's output (not GELU of it): the fused path steps aside for hooked blocks."""
    optimize_for_inference(tiny_v1)
    mlp = tiny_v1.layers[0].blocks[0].mlp
    seen = {}
    mlp.fc1.register_forward_hook(lambda m, args, out: seen.update(x=args[0], out=out))
    with torch.no_grad():
        tiny_v1(torch.randn(1, 3, 224, 224))
        expected = nn.functional.linear(seen["x"], mlp.fc1.weight, mlp.fc1.bias)
    assert seen["out"].shape == (1, 56, 56, 128) and torch.allclose(seen["out"], expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------- peft LoRA
def lora_model(name: str, optimised: bool):
    peft = pytest.importorskip("peft")
    model = randomize(create_model(name, num_classes=5, img_size=64, window_size=4))
    if optimised:
        optimize_for_inference(model.eval())
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["qkv", "proj", "fc1", "fc2"], init_lora_weights=False)
    return peft.get_peft_model(model, config)


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
@pytest.mark.parametrize("optimised", [False, True])
def test_lora_output_equals_the_merged_model(name, optimised):
    adapted = lora_model(name, optimised).eval()
    wrapped = [n for n, m in adapted.named_modules() if type(m).__name__ == "Linear" and "lora" in type(m).__module__]
    assert any(n.endswith("attn.qkv") for n in wrapped) and any(n.endswith("mlp.fc2") for n in wrapped)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        base = adapted.get_base_model()
        with adapted.disable_adapter():
            plain = adapted(x)
        got = adapted(x)
        merged = adapted.merge_and_unload()(x)
    assert (got - plain).abs().max() > 1e-2 * plain.abs().max()  # the adapters change the output
    assert torch.allclose(got, merged, atol=1e-4, rtol=1e-4)
    assert base is not None


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_every_lora_parameter_gets_a_gradient(name):
    torch.manual_seed(0)  # the suite's earlier tests must not decide which blocks are dropped
    adapted = lora_model(name, optimised=False).train()
    adapted.get_base_model().set_drop_path(0.0)  # a dropped block's adapters rightly get no gradient
    x = torch.randn(2, 3, 64, 64)
    adapted(x).square().mean().backward()
    lora = {n: p for n, p in adapted.named_parameters() if "lora_" in n}
    # A and B for qkv, proj, fc1, fc2 of every block, and patch_embed.proj (peft matches name suffixes)
    assert len(lora) == 2 * 4 * sum(adapted.get_base_model().config.depths) + 2
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora.values())
    assert all(not p.requires_grad for n, p in adapted.named_parameters() if "lora_" not in n)


# ---------------------------------------------------------------------------------------------- the formula
def attention_case(version: int, windows: int = 4):
    model = randomize(create_model("swinv2-nano" if version == 2 else "swin-nano", num_classes=5, img_size=64, window_size=4))
    attn = model.layers[0].blocks[1].attn.double()
    x = torch.randn(2, windows, 16, attn.dim, dtype=torch.float64)
    mask = window_masks((8, 8), (4, 4), (2, 2))
    return attn, x, mask


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("impl", ["eager", "sdpa", "auto"])
@pytest.mark.parametrize("chunk", [None, 3])
@pytest.mark.parametrize("grad", [True, False])
def test_forward_equals_the_reference_formula(version, impl, chunk, grad):
    attn, x, mask = attention_case(version)
    attn.impl, attn.chunk = impl, chunk
    with torch.set_grad_enabled(grad):
        want = attn.reference(x, mask)
        for _ in range(2):  # and again: nothing kept from the first call changes the second
            assert torch.allclose(attn(x, mask), want, atol=1e-10)
        assert torch.allclose(attn(x), attn.reference(x), atol=1e-10)  # no shift


@pytest.mark.parametrize("version", [1, 2])
def test_reference_is_the_paper_formula(version):
    """Written out once more by hand for one window, from the parameters (stage 1 of the nano models has one head)."""
    attn, x, mask = attention_case(version)
    assert attn.num_heads == 1
    b, w = 1, 3
    q, k, v = attn.qkv(x[b, w]).chunk(3, dim=-1)  # (N, d) each
    if version == 1:
        logits = q @ k.T / attn.head_dim**0.5
    else:
        q, v = q + attn.q_bias, v + attn.v_bias  # V2: no bias on k
        tau = min(attn.logit_scale.exp().item(), 100.0)
        logits = tau * nn.functional.cosine_similarity(q[:, None], k[None], dim=-1)
    out = attn.proj((logits + attn.position_bias()[0] + mask.dense()[w]).softmax(-1) @ v)
    with torch.no_grad():
        assert torch.allclose(attn.reference(x, mask)[b, w], out, atol=1e-10)
