"""Shared fixtures, and the two test tiers.

Tiers: tests marked ``slow`` (the documented examples, torchrun, kill-and-resume and convergence runs)
are deselected by default (``addopts`` in pyproject.toml has ``-m 'not slow'``); ``pytest -m slow`` runs
only them, ``pytest -m ''`` everything. Every test has a time limit (``timeout`` in pyproject.toml; a
slow test that needs more says so with ``@pytest.mark.timeout``).

The checkpoints and folders are built once per session and shared read-only: a test that changes a file
copies it first.
The builders behind them are in helpers.py, which test modules import (never another test module).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A fixed thread count: training would otherwise choose it from the load, and bitwise comparisons need one.
# One: next to other work two-thread OpenMP teams wait at every barrier (tests/examples_sandbox.py); on a
# busy 2-core machine the fast tier took 16 minutes with two threads and under 3 with one.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import make_folder, randomize, save_tiny  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))

# ------------------------------------------------------------------ models
@pytest.fixture
def tiny_v1():
    from swincli import create_model

    return randomize(create_model("swin-nano", num_classes=10, drop_path_rate=0.0)).eval()


@pytest.fixture
def tiny_v2():
    from swincli import create_model

    return randomize(create_model("swinv2-nano", num_classes=10, drop_path_rate=0.0)).eval()


# ------------------------------------------------------------------ files, built once per session (read-only)
@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """swin-nano at 32 px, window 2, classes blue, green and red (those of ``colours``): what the CLI
    tests predict, evaluate, fine-tune and convert."""
    from helpers import CLASS_NAMES

    return save_tiny(tmp_path_factory.mktemp("tiny") / "tiny.safetensors", CLASS_NAMES)


@pytest.fixture(scope="session")
def nano_checkpoint(tmp_path_factory):
    """swin-nano at its own 224 px, window 7, three unnamed classes: a checkpoint to convert and export."""
    from swincli import create_model, save_model

    return save_model(create_model("swin-nano", num_classes=3), tmp_path_factory.mktemp("nano") / "nano.safetensors")


@pytest.fixture(scope="session")
def colours(tmp_path_factory):
    """train/ and val/ class folders red, green, blue: 8 and 4 images a class (helpers.make_folder)."""
    return make_folder(tmp_path_factory.mktemp("colours"), per_class=8)


@pytest.fixture(scope="session")
def few_colours(tmp_path_factory):
    """The same classes with 4 and 2 images a class (12 to train on, 6 to validate)."""
    return make_folder(tmp_path_factory.mktemp("colours-small"), per_class=4)
