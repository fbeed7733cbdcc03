"""The model is an honest nn.Module tree: every submodule runs through its own forward, so hooks, peft LoRA
and other wrappers see what the user built; and the optimised attention equals the paper's formula."""

import pytest
import torch
from torch import nn

from conftest import randomize
from swincli import create_model
from swincli.inference import optimize_for_inference
from swincli.models.shift_mask import shift_mask

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
    mask = shift_mask((8, 8), (4, 4), (2, 2)).double()
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
        for _ in range(2):  # the second call takes the cached mask (without autograd)
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
    out = attn.proj((logits + attn.position_bias()[0] + mask[w]).softmax(-1) @ v)
    with torch.no_grad():
        assert torch.allclose(attn.reference(x, mask)[b, w], out, atol=1e-10)
