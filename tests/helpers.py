"""What more than one test module needs: data builders, the tiny checkpoint, a CLI runner, random weights.

Test modules import these (``from helpers import make_folder``); a test module never imports another
test module. The fixtures built from them, once per session, are in conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
CLASS_NAMES = sorted(COLOURS)  # ["blue", "green", "red"]: the classes of make_folder, in folder order
# swin train/finetune flags that keep a run tiny: swin-nano at 32 px, window 2, on the CPU
TINY = ["--size", "32", "--window", "2", "--workers", "0", "-b", "4", "--quiet"]


def make_folder(root: Path, per_class: int = 8, split: bool = True, size: int = 40) -> Path:
    """Class folders (red, green, blue; under train/ and val/ unless ``split`` is false). Class = dominant
    colour with noise: learnable in a few steps by a tiny model."""
    g = torch.Generator().manual_seed(0)
    for part, count in (("train", per_class), ("val", max(2, per_class // 2))) if split else ((None, per_class),):
        for name, rgb in COLOURS.items():
            folder = root / part / name if part else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                noise = (torch.rand(size, size, 3, generator=g) * 60).to(torch.uint8)
                pixels = (torch.tensor(rgb, dtype=torch.uint8) // 2 + noise).numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def plain_images(folder: Path, count: int = 5, size: tuple[int, int] = (40, 40)) -> Path:
    """``count`` flat-coloured PNGs (``0.png`` ...) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", size, (50 * i % 256, 20, max(0, 200 - 40 * i))).save(folder / f"{i}.png")
    return folder


def save_tiny(path: Path, class_names: list[str] | None = None, num_classes: int | None = None,
                    size: int = 32, window: int = 2, version: int = 1, **kw) -> Path:  # fmt: skip
    """A swin-nano (``version`` 2: swinv2-nano) at ``size`` px saved at ``path``: the checkpoint CLI tests run on."""
    from swincli import create_model, save_model

    names = list(class_names) if class_names is not None else None
    classes = num_classes if num_classes is not None else (len(names) if names else 3)
    model = create_model("swin-nano" if version == 1 else "swinv2-nano", num_classes=classes, img_size=size,
                         window_size=window, **kw)  # fmt: skip
    return save_model(model, path, class_names=names)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``swin ARGS`` in this process: (exit code, stdout, stderr). Arguments may be paths or numbers."""
    from swincli.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_cli_isolated(*args) -> tuple[int, str, str]:
    """``swin ARGS`` in a child process: for the runtimes (OpenVINO, AOTInductor, ExecuTorch) whose native
    threads and state must not stay in the test process, where a later test once crashed on them."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "swincli", *map(str, args)], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


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
