"""Logit parity with timm (the reference library of the dev extra), random non-trivial weights."""

import pytest
import torch

from helpers import randomize
from swincli import SwinConfig, SwinTransformer
from swincli.convert.timm_layout import from_timm, to_timm

timm = pytest.importorskip("timm")


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
    ours.load_state_dict(from_timm(reference.state_dict()), strict=True)
    ours.set_attention(impl)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = reference(x), ours(x)
    rel = ((want - got).abs().max() / want.abs().max()).item()
    assert rel < 1e-5, rel


def test_timm_layout_round_trip():
    reference = timm.create_model("swinv2_tiny_window8_256", depths=(2, 2, 2, 2), num_classes=7)
    state = {k: v for k, v in reference.state_dict().items() if "relative" not in k and "k_bias" not in k}
    back = to_timm(from_timm(state))
    assert back.keys() == state.keys() and all(back[k] is state[k] for k in state)
