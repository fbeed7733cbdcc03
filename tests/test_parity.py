"""Logit parity with timm (the reference library of the dev extra), random non-trivial weights."""

import re

import pytest
import torch

from conftest import randomize
from swincli import SwinConfig, SwinTransformer

timm = pytest.importorskip("timm")


def timm_to_ours(state: dict) -> dict:
    """timm >= 0.9 puts patch merging at the start of the next stage and the head in head.fc."""
    out = {}
    for key, value in state.items():
        if re.search(r"relative_position_index|attn_mask|relative_coords_table|k_bias", key):
            continue
        m = re.match(r"layers\.(\d+)\.downsample\.(.*)", key)
        if m:
            key = f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
        out[key.replace("head.fc.", "head.")] = value
    return out


CASES = [
    ("swin_tiny_patch4_window7_224", {}, dict(version=1, img_size=224, window_size=7), 224),
    ("swinv2_tiny_window8_256", {}, dict(version=2, img_size=256, window_size=8), 256),
    (
        "swinv2_tiny_window16_256",
        dict(pretrained_window_sizes=(8, 8, 8, 8)),
        dict(version=2, img_size=256, window_size=16, pretrained_window_sizes=8),
        256,
    ),
]


@pytest.mark.parametrize("timm_name, timm_kw, ours_kw, size", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_logits_equal_timm(timm_name, timm_kw, ours_kw, size, impl):
    depths = (2, 2, 2, 2)  # reduced depth keeps the test fast; every stage and both block kinds are covered
    reference = randomize(timm.create_model(timm_name, depths=depths, **timm_kw)).eval()
    ours = SwinTransformer(SwinConfig(depths=depths, **ours_kw)).eval()
    ours.load_state_dict(timm_to_ours(reference.state_dict()), strict=True)
    ours.set_attention(impl)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = reference(x), ours(x)
    rel = ((want - got).abs().max() / want.abs().max()).item()
    assert rel < 1e-5, rel
