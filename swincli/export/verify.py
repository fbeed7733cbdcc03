"""Every export is checked as it is written: the file, run by its own runtime, against eager PyTorch.

The images are the user's (``--data``: up to :data:`SAMPLES` of them, :data:`INT8_SAMPLES` for an int8
file, spread over the folder, or its ``val/`` split when it has one) or else generated ones, through the checkpoint's own evaluation
preprocessing, so the check sees the inputs the file will see. A dynamic batch is checked at batch 1
and at 3 (the file was traced at 2); a fixed one at its own. fp32 and fp16 files are held to a
relative tolerance (largest logit difference over the largest eager logit); an int8 file to the share
of images whose top-1 class agrees with fp32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from swincli.errors import SwinError, SwinUsageError

SAMPLES = 32
INT8_SAMPLES = 500  # agreement is a share of labels: at 32 images one flip would already be under 98%
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}
# OpenVINO's CPU plugin: its own fp32 kernels; and --half files compute in bf16 where the CPU has it (docs/export.md)
RUNTIME_TOLERANCE = {("openvino", "fp32"): 1e-3, ("openvino", "fp16"): 3e-2}
INT8_AGREEMENT = 0.98
CHECK_BATCHES = (1, 3)


@dataclass
class Verification:
    images: int
    source: str  # "generated" or the folder
    max_abs_diff: float
    max_rel_diff: float
    top1_agreement: float
    tolerance: float | None  # None for int8, judged by agreement
    batches: list[int]

    def to_dict(self) -> dict:
        return asdict(self)


def image_paths(data: str | Path, limit: int = SAMPLES) -> list[str]:
    """Up to ``limit`` image paths of ``data`` (its ``val/`` split if any), evenly spread over the sorted files."""
    from swincli.datasets.image_files import collect_inputs

    folder = Path(data)
    if not folder.is_dir():
        raise SwinUsageError(f"--data {data} is not a folder of images", hint="pass a folder (class folders are fine)")
    if (folder / "val").is_dir():
        folder = folder / "val"
    paths = collect_inputs([str(folder)])
    if not paths:
        raise SwinUsageError(f"no images found in {folder}", hint="pass a folder with .jpg/.png images")
    count = min(limit, len(paths))
    return [paths[i * len(paths) // count] for i in range(count)]


def load_images(net, paths: list[str]) -> torch.Tensor:
    """``paths`` through ``net``'s evaluation preprocessing; unreadable files are left out."""
    from swincli.datasets.image_files import ImageFiles
    from swincli.datasets.transforms import eval_transform_for

    files = ImageFiles(paths, eval_transform_for(net))
    images = [files[i][1] for i in range(len(files))]
    images = [x for x in images if x is not None]
    if not images:
        raise SwinUsageError("none of the --data images could be read", hint="check the folder's images")
    return torch.stack(images)


def generated_images(net, count: int = 8) -> torch.Tensor:
    """Images with structure (gradients, blobs, noise), drawn with a fixed seed and preprocessed like real ones."""
    import numpy as np
    from PIL import Image

    from swincli.datasets.transforms import eval_transform_for

    rng = np.random.default_rng(0)
    transform = eval_transform_for(net)
    h, w = net.config.image_hw
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = []
    for _ in range(count):
        base = rng.uniform(0, 255, 3) * (1 - xx[..., None]) + rng.uniform(0, 255, 3) * yy[..., None]
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None] * rng.uniform(-120, 120, 3)
        pixels = np.clip(base + blob + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        out.append(transform(Image.fromarray(pixels)))
    return torch.stack(out)


def compare(want: torch.Tensor, got: torch.Tensor) -> tuple[float, float, float]:
    """Largest absolute difference, that over the largest eager logit, and the top-1 agreement."""
    diff = (got.float() - want.float()).abs().max().item()
    agree = (got.argmax(-1) == want.argmax(-1)).float().mean().item()
    return diff, diff / max(want.abs().max().item(), 1e-12), agree


def run_batches(model, images: torch.Tensor, batch: int | None) -> tuple[torch.Tensor, list[int]]:
    """Logits of ``images`` through ``model`` at the checked batch sizes, in input order."""
    sizes = [batch] if batch else [b for b in CHECK_BATCHES if b <= len(images)] or [len(images)]
    outs, start, used = [], 0, []
    while start < len(images):
        b = sizes[len(used) % len(sizes)]
        outs.append(model(images[start : start + b]))
        used.append(b)
        start += b
    return torch.cat(outs)[: len(images)], sorted(set(used))


def verify(reference, exported, images: torch.Tensor, source: str, fmt: str, precision: str) -> Verification:
    """Check ``exported`` (an :class:`~swincli.export.runtime.ExportedModel`) against ``reference`` (eager)."""
    with torch.no_grad():
        want = torch.cat([reference(images[i : i + 8].to(_device(reference))).float().cpu() for i in range(0, len(images), 8)])
    got, batches = run_batches(exported, images, exported.batch)
    diff, rel, agree = compare(want, got.cpu())
    tol = None if precision == "int8" else RUNTIME_TOLERANCE.get((fmt, precision), TOLERANCE[precision])
    result = Verification(len(images), source, diff, rel, agree, tol, batches)
    if tol is not None and rel > tol:
        raise SwinError(f"the exported {fmt} file is off: its logits differ from PyTorch's by {rel:.2e} (relative, "
                        f"allowed {tol:.0e}); nothing was written", hint="please report this with `swin env`")  # fmt: skip
    if precision == "int8" and agree < INT8_AGREEMENT:
        raise SwinError(f"the int8 {fmt} file agrees with fp32 on only {agree:.1%} of top-1 labels (needs "
                        f"{INT8_AGREEMENT:.0%}) on {len(images)} images; nothing was written",
                        hint="calibrate on more, or more typical, --data images; or export without --int8")  # fmt: skip
    return result


def _device(model) -> torch.device:
    return next(model.parameters()).device
