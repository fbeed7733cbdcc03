"""Class activation maps: where in the image the model found its top class, drawn over the image it saw.

Uses the ``grad-cam`` library (``pip install 'swincli[explain]'``), imported only here and only when
asked for. By default the hooked layer is ``model.norm``, the final LayerNorm: ``forward_features``
returns ``norm(x).permute(0, 3, 1, 2)``, so the norm's output is the last stage's normalised feature
map, channels-last ``(B, h, w, C)``; :func:`tokens_to_nchw` turns it (and its gradient) into the
``(B, C, h, w)`` grad-cam expects. The map is the last stage's grid (input / 32: 7 x 7 at 224 px),
upsampled to the input size. ``layer`` (``--explain-layer``) picks an earlier stage instead, hooked at
its last block (before patch merging): stage 3 has twice the last stage's resolution, stage 1 eight
times. A small model's last map can be 2 x 2 or 1 x 1, which draws a few blobs; :func:`coarse_note`
says so and names the flag.

Gradient methods run under ``torch.enable_grad()`` whatever the caller's context, with the input
requiring grad and the parameters' ``requires_grad`` switched off for the call (restored after): the
gradient reaches the feature map, no parameter gradient is computed or left behind, and a frozen
model works too. The CPU fast path (:mod:`swincli.models.fast_path`) steps aside by itself under autograd,
so an optimised model gives the plain model's maps. Everything runs in float32.

The PNG shows the image as the model saw it (resized and centre-cropped by the checkpoint's
preprocessing), enlarged by a whole factor to at least :data:`MIN_SIDE` pixels, twice side by side: as
it is, and with the heatmap blended over it and the explained class and its probability in the corner.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from swincli.drawing.fonts import plain_font
from swincli.errors import SwinError, SwinUsageError
from swincli.wording import plural

if TYPE_CHECKING:
    from PIL import Image

    from swincli.predict import Prediction

METHODS = ("gradcam", "gradcam++", "scorecam", "eigencam")
GRADIENT_METHODS = ("gradcam", "gradcam++")
MIN_SIDE = 224  # smaller inputs are enlarged so that the caption stays readable
GAP = 4  # white pixels between the image and its heatmap
COARSE = 9  # cells: a map of at most 3 x 3 gets a note
SCORECAM_BATCH = 32  # masked copies of one image per forward pass in Score-CAM
HINT = "pip install 'swincli[explain]'"


@dataclass
class Cams:
    """Raw maps of one batch: ``cams`` ``(B, H, W)`` float32 in [0, 1] at the input size, the class each
    explains and its softmax probability."""

    cams: np.ndarray
    classes: list[int]
    probs: list[float]


@dataclass
class Explanation:
    """One input: the PNG written (``file``), or why there is none (``error``)."""

    path: str
    file: str | None = None
    index: int | None = None
    label: str | None = None
    prob: float | None = None
    error: str | None = None


def require_gradcam() -> Any:
    """The ``pytorch_grad_cam`` module, or a one-line error saying how to install it."""
    try:
        import pytorch_grad_cam
    except ImportError:
        raise SwinError("explanations need the grad-cam library, which is not installed", hint=HINT) from None
    return pytorch_grad_cam


def check_method(method: str) -> str:
    if method not in METHODS:
        raise SwinUsageError(f"--explain-method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def tokens_to_nchw(t: Tensor) -> Tensor:
    """grad-cam's reshape_transform for our layout: the final norm's ``(B, h, w, C)`` -> ``(B, C, h, w)``."""
    return t.permute(0, 3, 1, 2)


def check_layer(model: torch.nn.Module, layer: int | None) -> int:
    """``layer`` (``--explain-layer``) as a stage of this model, 1-based; None: the last."""
    stages = model.config.num_stages
    if layer is None:
        return stages
    if not isinstance(layer, int) or isinstance(layer, bool) or not 1 <= layer <= stages:
        raise SwinUsageError(f"--explain-layer must be a stage from 1 to {stages}, got {layer!r}",
                             hint=f"1 gives the finest map, {stages} (the default) the last stage's")  # fmt: skip
    return layer


def target_layer(model: torch.nn.Module, layer: int | None = None) -> torch.nn.Module:
    """The module grad-cam hooks. The last stage (default): the final LayerNorm, whose output (through
    :func:`tokens_to_nchw`) is exactly ``model.forward_features(x)``, the map the head pools. An earlier
    stage: its last block, whose output is that stage's map, channels-last like the norm's."""
    stage = check_layer(model, layer)
    return model.norm if stage == model.config.num_stages else model.layers[stage - 1].blocks[-1]


def coarse_note(model: torch.nn.Module, layer: int | None = None) -> str | None:
    """One line when the hooked map has at most :data:`COARSE` cells (a heatmap of a few blobs), naming the flag
    that gives a finer one; None otherwise."""
    stage, grids = check_layer(model, layer), [st.resolution for st in model.config.layout()]
    h, w = grids[stage - 1]
    if h * w > COARSE:
        return None
    side = "x".join(map(str, model.config.image_hw))
    finer = [f"{i} ({a}x{b})" for i, (a, b) in enumerate(grids[: stage - 1], 1) if a * b > h * w][::-1][:2]
    better = f"--explain-layer {' or '.join(finer)} gives a finer one" if finer else "no stage has a finer one"
    return (f"the stage-{stage} feature map is only {h}x{w} at {side} px, so each heatmap has "
            f"{plural(h * w, 'cell')}; {better}")  # fmt: skip


def compute_cams(model: torch.nn.Module, x: Tensor, method: str = "gradcam", classes: Sequence[int] | None = None,
                 scorecam_batch: int = SCORECAM_BATCH, layer: int | None = None) -> Cams:  # fmt: skip
    """Maps for a batch of preprocessed images ``x`` ``(B, 3, H, W)`` on the model's device; ``classes``:
    the class to explain per image (default: the model's top-1); ``layer``: the stage (default the last)."""
    gc = require_gradcam()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    check_method(method)
    if not model.config.num_classes:
        raise SwinError("this model has no classifier head, so there is no class to explain",
                        hint="use a checkpoint with classes")  # fmt: skip
    kind = {"gradcam": gc.GradCAM, "gradcam++": gc.GradCAMPlusPlus, "scorecam": gc.ScoreCAM, "eigencam": gc.EigenCAM}
    gradients = method in GRADIENT_METHODS
    model.eval()
    x = x.detach().to(next(model.parameters()).device, torch.float32).requires_grad_(gradients)  # not the caller's
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    cam = kind[method](model=model, target_layers=[target_layer(model, layer)], reshape_transform=tokens_to_nchw)
    cam.batch_size = scorecam_batch
    try:
        for p, _ in frozen:
            p.requires_grad_(False)
        targets = [ClassifierOutputTarget(int(c)) for c in classes] if classes is not None else None
        quiet = contextlib.redirect_stderr(io.StringIO()) if method == "scorecam" else contextlib.nullcontext()
        with torch.set_grad_enabled(gradients), quiet:  # Score-CAM draws a tqdm bar per image
            maps = cam(input_tensor=x, targets=targets)
        probs = cam.outputs.detach().float().softmax(-1)
    finally:
        cam.activations_and_grads.release()  # not ``with cam``: its __exit__ swallows IndexError
        for p, flag in frozen:
            p.requires_grad_(flag)
    chosen = [int(c) for c in classes] if classes is not None else probs.argmax(-1).tolist()
    return Cams(np.asarray(maps, dtype=np.float32), chosen, [float(probs[i, c]) for i, c in enumerate(chosen)])


def overlay(image: np.ndarray, cam: np.ndarray, caption: str, min_side: int = MIN_SIDE) -> "Image.Image":
    """``image`` ``(H, W, 3)`` in [0, 1], and beside it (:data:`GAP` white pixels apart) the same with ``cam``
    ``(H, W)`` blended over it (jet colormap, half and half), ``caption`` in its top-left corner; both
    enlarged by a whole factor to at least ``min_side``. The plain image shows what the colours cover."""
    from PIL import Image, ImageDraw
    from pytorch_grad_cam.utils.image import show_cam_on_image

    plain = Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
    blend = Image.fromarray(show_cam_on_image(image.astype(np.float32), cam, use_rgb=True, image_weight=0.5))
    scale = max(1, math.ceil(min_side / min(blend.size)))
    if scale > 1:
        size = (blend.width * scale, blend.height * scale)
        plain, blend = (im.resize(size, Image.Resampling.BICUBIC) for im in (plain, blend))
    draw = ImageDraw.Draw(blend)
    font = plain_font(max(10, blend.height // 16))
    left, top, right, bottom = draw.textbbox((4, 2), caption, font=font)
    draw.rectangle((0, 0, right + 4, bottom + 4), fill=(0, 0, 0))
    draw.text((4, 2), caption, fill=(255, 255, 255), font=font)
    both = Image.new("RGB", (2 * blend.width + GAP, blend.height), (255, 255, 255))
    both.paste(plain, (0, 0))
    both.paste(blend, (blend.width + GAP, 0))
    return both


def unique_names(paths: Sequence[str]) -> list[str]:
    """A PNG name per input: its stem; stems shared by several inputs get their folder's name in front
    (``a/cat.jpg``, ``b/cat.jpg`` -> ``a_cat.png``, ``b_cat.png``), and any name still taken gets the
    input's position (``cat-3.png``)."""
    stems = [_safe(_stem(p)) for p in paths]
    parents = [_safe(Path(p.split("?")[0]).parent.name) for p in paths]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s.lower()] = counts.get(s.lower(), 0) + 1
    names, used = [], set()
    for i, (stem, parent) in enumerate(zip(stems, parents)):
        name = f"{parent}_{stem}" if counts[stem.lower()] > 1 and parent else stem
        candidate, n = name, i + 1
        while candidate.lower() in used:  # case-insensitive: macOS and Windows folders
            candidate, n = f"{name}-{n}", n + len(paths)
        used.add(candidate.lower())
        names.append(candidate + ".png")
    return names


def _stem(path: str) -> str:
    return Path(path.split("?")[0].rstrip("/")).stem or "image"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def check_target_dir(out_dir: str | Path, force: bool) -> Path:
    """Refuse, before any work: a file where the folder goes, a folder that cannot be written, or one that
    already has files in it without ``force`` (then same-named PNGs are replaced, other files kept)."""
    from swincli.fileio import check_writable_target

    out_dir = check_writable_target(out_dir, True, folder=True)
    if out_dir.is_dir() and not force and any(out_dir.iterdir()):
        raise SwinError(f"{out_dir} already has files in it",
                        hint="pass --force to overwrite them, or choose another folder")  # fmt: skip
    return out_dir


def explain(model, paths: Sequence[str], out_dir: str | Path, method: str = "gradcam", *, batch_size: int = 8,
            device: str | torch.device = "cpu", workers: int = 0,
            classes: Callable[[list[int]], dict[int, int]] | None = None, layer: int | None = None,
            note: Callable[[str], None] | None = None) -> Iterator[Explanation]:  # fmt: skip
    """Write ``out_dir/<name>.png`` per readable image (names by :func:`unique_names`) and yield one
    :class:`Explanation` per path, in input order. ``classes``: None explains each image's top-1; a
    function, given a batch's input positions, returns the class to explain for each, and a position it
    leaves out is not explained (the CLI passes the predictions' top-1, leaving out failed ones).
    ``layer``: the stage whose map is explained (default the last); ``note`` gets :func:`coarse_note`'s line
    when that map is coarse (default: standard error, as ``swin predict`` prints its notes)."""
    from torch.utils.data import DataLoader

    from swincli.checkpoint import Preprocessing
    from swincli.datasets.transforms import eval_transform
    from swincli.memory import ensure_fits, estimate
    from swincli.datasets.image_files import ImageFiles, collate_image_files

    require_gradcam()
    check_method(method)
    layer = check_layer(model, layer)
    said = coarse_note(model, layer)
    if said:
        (note or _stderr_note)(said)
    prep = model.preprocessing or Preprocessing.for_config(model.config)
    transform = eval_transform(model.config.image_hw, prep.crop_pct, prep.mean, prep.std, prep.interpolation)
    loader = DataLoader(ImageFiles(list(paths), transform), batch_size=batch_size, num_workers=workers,
                        collate_fn=collate_image_files)
    batch = min(batch_size, len(paths)) if method != "scorecam" else SCORECAM_BATCH
    need = estimate(model.config, max(batch, 1), train=method in GRADIENT_METHODS, trainable=0,  # no parameter grads
                    weights=str(device) != "cpu")  # fmt: skip
    ensure_fits(need, str(device), f"explaining in batches of {batch}", "a smaller --batch-size")
    model.eval().to(device)
    writer = _PngWriter(model, paths, Path(out_dir), prep)
    for indices, x, errors in loader:
        results = {i: Explanation(paths[i], error=err) for i, err in errors}
        if x is not None:
            wanted = classes(indices) if classes else None  # None: each image's top-1
            rows = list(range(len(indices))) if wanted is None else [r for r, i in enumerate(indices) if i in wanted]
            if rows:
                picked = None if wanted is None else [wanted[indices[r]] for r in rows]
                maps = compute_cams(model, x[rows], method, picked, layer=layer)
                for r, cam, c, p in zip(rows, maps.cams, maps.classes, maps.probs):
                    results[indices[r]] = writer.write(indices[r], x[r], cam, c, p)
            for i in indices:  # readable here, but its prediction failed
                results.setdefault(i, Explanation(paths[i], error="no prediction to explain"))
        yield from (results[i] for i in sorted(results))


class _PngWriter:
    """Writes one input's PNG under its unique name, atomically, with its class and probability."""

    def __init__(self, model, paths: Sequence[str], out_dir: Path, prep) -> None:
        from swincli.predict import class_names

        self.paths, self.out_dir = paths, out_dir
        self.names, self.labels = unique_names(paths), class_names(model)
        self.mean, self.std = torch.tensor(prep.mean)[:, None, None], torch.tensor(prep.std)[:, None, None]
        out_dir.mkdir(parents=True, exist_ok=True)

    def write(self, i: int, x: Tensor, cam: np.ndarray, c: int, p: float) -> Explanation:
        from swincli.fileio import atomic_file

        image = (x * self.std + self.mean).clamp(0, 1).permute(1, 2, 0).numpy()
        target = self.out_dir / self.names[i]
        with atomic_file(target) as tmp:
            overlay(image, cam, f"{self.labels[c]}  {p:.1%}").save(tmp, format="PNG")
        return Explanation(self.paths[i], str(target), c, self.labels[c], p)


def _stderr_note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def explain_predictions(model, predictions: Iterable["Prediction"], paths: Sequence[str], out_dir: str | Path,
                        method: str = "gradcam", **options: Any) -> Iterator["Prediction"]:  # fmt: skip
    """Pass ``predictions`` (one per path, in order, as :func:`swincli.predict.predict` yields them)
    through, each readable one with ``explanation`` set to its PNG: the map of its top-1 class.
    Both streams advance together, a batch at a time, so results still appear as they come."""
    stream, pending, fetched = iter(predictions), {}, 0

    def fetch(upto: int) -> None:
        nonlocal fetched
        while fetched <= upto:
            pending[fetched] = next(stream)
            fetched += 1

    def top1(indices: list[int]) -> dict[int, int]:
        fetch(max(indices))
        return {i: pending[i].top_k[0]["index"] for i in indices if pending[i].error is None and pending[i].top_k}

    for i, e in enumerate(explain(model, paths, out_dir, method, classes=top1, **options)):
        fetch(i)
        prediction = pending.pop(i)
        prediction.explanation = e.file
        yield prediction
