"""Sequential attention (``set_attention_chunk``) and the per-pattern shift masks: the same numbers as
attending all windows at once, forward and gradients, and a lower measured peak (the V2 paper's claim)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import randomize
from swincli import create_model
from swincli.models.shift_mask import shift_mask, window_masks
from swincli.models.window import window_geometry


def test_window_masks_equal_the_whole_map_mask_and_keep_at_most_four_patterns():
    checked = 0
    for h, w, win, s in itertools.product([4, 8, 12, 20], [4, 8, 16], [(2, 2), (4, 4), (4, 2)], [(1, 1), (2, 1), (0, 2)]):
        geo = window_geometry(h, w, win, (min(s[0], win[0] - 1), min(s[1], win[1] - 1)))
        masks, dense = window_masks(geo.size, win, geo.shift), shift_mask(geo.size, win, geo.shift)
        if dense is None:
            assert masks is None
            continue
        assert torch.equal(masks.dense(), dense) and masks.patterns.shape[0] <= 4
        interior = [i for i, m in enumerate(dense) if not m.any()]
        assert all(masks.ids[i] == 0 for i in interior)  # interior windows need no mask
        assert masks.windows(0, 1) is None or dense[0].any()
        checked += 1
    assert checked > 50


def grads(model, x):
    model.zero_grad(set_to_none=True)
    out = model(x)
    out.square().sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
@pytest.mark.parametrize("stages,checkpointing", [((0, 1), False), (None, False), (None, True)])
def test_chunked_equals_unchunked_forward_and_gradients_on_shifted_padded_maps(name, stages, checkpointing):
    # 72 px: an 18x18 map, padded to 20x20 at window 4 (25 shifted windows), 9x9 -> 12x12, ...
    model = randomize(create_model(name, num_classes=5, img_size=72, window_size=4, drop_path_rate=0.0)).double().train()
    x = torch.randn(2, 3, 72, 72, dtype=torch.float64)
    want, want_grads = grads(model, x)
    model.set_grad_checkpointing(checkpointing)
    model.set_attention_chunk(3, stages)  # 25 windows -> 9 chunks, the last one short
    got, got_grads = grads(model, x)
    assert torch.allclose(got, want, atol=1e-10)
    for n, g in want_grads.items():
        assert torch.allclose(got_grads[n], g, atol=1e-9), n
    with torch.no_grad():  # and in inference
        chunked = model.eval()(x)
        model.set_attention_chunk(None)
        assert torch.allclose(chunked, model(x), atol=1e-10)


def test_the_chunk_applies_to_the_chosen_stages_only(tiny_v2):
    tiny_v2.set_attention_chunk(2)
    assert tiny_v2.attention_chunk() == (2, (0, 1))  # the paper's default: the first two stages
    tiny_v2.set_attention_chunk(1, None)
    assert tiny_v2.attention_chunk() == (1, (0, 1, 2, 3))
    tiny_v2.set_attention_chunk(None)
    assert tiny_v2.attention_chunk() == (None, ())


MEASURE = """
import json, sys, torch
from swincli import create_model
from swincli.memory import PeakMemory
torch.manual_seed(0)
torch.set_num_threads(1)
train, chunk = sys.argv[1] == "train", int(sys.argv[2])
# one stage-1 window of 32x32 tokens is 1024^2 attention logits: 16 windows at 512 px
model = create_model("swinv2-nano", img_size=512, window_size=32, num_classes=4)
model.set_attention_chunk(chunk or None, None)
x = torch.randn(1, 3, 512, 512)
def step():
    if train:
        model.train()(x).sum().backward()
    else:
        with torch.no_grad():
            model.eval()(x)
step()  # libraries first touched, gradients allocated: not what the comparison is about
meter = PeakMemory("cpu")
meter.begin()
step()
meter.end()
print(json.dumps(meter.added))
"""


def peak(mode: str, chunk: int) -> int:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")  # freed tensors go back at once: RSS follows live ones
    proc = subprocess.run([sys.executable, "-c", MEASURE, mode, str(chunk)], capture_output=True, text=True, env=env,
                          check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures the resident set through /proc")
@pytest.mark.parametrize("mode,limit", [("train", 0.75), ("infer", 0.35)])
def test_chunking_lowers_the_measured_peak(mode, limit):
    """Before, a chunked training step kept every chunk's probabilities for backward (measured: 1.00x of the
    unchunked peak) and inference built the whole-map mask (0.42x); now one window's attention is alive at a
    time (0.58x and 0.24x on this project's CPU; the rest is the CPB MLP's activations and the tokens)."""
    whole, chunked = peak(mode, 0), peak(mode, 1)
    assert chunked < limit * whole, (whole, chunked)


def test_chunked_gradients_with_attention_dropout_match_finite_differences():
    """With dropout on the probabilities the chunks draw their own masks, so there is no unchunked twin to
    compare with; the recompute must replay the draws, which a directional finite difference checks."""
    torch.manual_seed(0)
    model = create_model("swinv2-nano", num_classes=5, img_size=40, window_size=4, attn_drop_rate=0.3,
                         drop_path_rate=0.0).double().train()  # fmt: skip
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    model.set_attention_chunk(2, None)
    x = torch.randn(1, 3, 40, 40, dtype=torch.float64)

    def loss():
        torch.manual_seed(7)  # the same dropout draws on every call
        return model(x).square().sum()

    loss().backward()
    params = list(model.parameters())
    direction = [torch.randn_like(p) for p in params]
    analytic = sum((p.grad * d).sum() for p, d in zip(params, direction)).item()
    eps = 1e-6
    with torch.no_grad():
        for p, d in zip(params, direction):
            p.add_(eps * d)
        up = loss().item()
        for p, d in zip(params, direction):
            p.sub_(2 * eps * d)
        down = loss().item()
    assert analytic == pytest.approx((up - down) / (2 * eps), rel=1e-4)
