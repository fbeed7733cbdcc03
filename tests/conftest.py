import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# a fixed thread count: training would otherwise choose it from the load, and bitwise comparisons need one
os.environ.setdefault("OMP_NUM_THREADS", str(min(2, os.cpu_count() or 1)))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter a non-trivial value: norms away from 1/0, logit scales spread, biases non-zero.

    Freshly initialised models hide bugs (V2 post-norms start at zero, biases at zero), so parity tests
    run on weights like these.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
            if "logit_scale" in name:
                p.copy_(noise.abs() * 2)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * noise)
            elif name.endswith("bias") or name.endswith("q_bias") or name.endswith("v_bias"):
                p.copy_(0.1 * noise)
            elif "relative_position_bias_table" in name:
                p.copy_(noise)
            elif "absolute_pos_embed" in name:
                p.copy_(0.5 * noise)
    return model


@pytest.fixture
def tiny_v1():
    from swincli import create_model

    return randomize(create_model("swin-nano", num_classes=10, drop_path_rate=0.0)).eval()


@pytest.fixture
def tiny_v2():
    from swincli import create_model

    return randomize(create_model("swinv2-nano", num_classes=10, drop_path_rate=0.0)).eval()
