"""``swin predict`` from Python: classes (or embeddings, or Grad-CAM heatmaps) for images, as plain data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from swincli.errors import SwinUsageError

DEFAULT_MODEL = "swinv2-t"


def predict(inputs: str | Iterable[str], *, model: str | None = None, checkpoint: str | None = None, top_k: int = 5,
            size: Any = None, window: Any = None, batch_size: int = 32, workers: int | None = None,
            device: str | None = None, amp: str | None = "auto", features: bool = False,
            explain: str | Path | None = None, explain_method: str = "gradcam", explain_layer: int | None = None,
            force: bool = False, offline: bool = False, revision: str | None = None, runtime: str | None = None,
            on_load: Callable[[dict], None] | None = None,
            on_batch: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:  # fmt: skip
    """One dict per input image, in input order, as each batch finishes: ``path`` and ``top_k`` (a list of
    ``index``, ``label``, ``prob``), or ``error``; with ``features``, ``features`` (a numpy vector) instead
    of ``top_k``; with ``explain`` (a folder), ``explanation``: the heatmap PNG of the top class.

    ``inputs``: files, folders, globs, URLs, or ``-`` for paths on stdin. Weights: ``checkpoint`` (any
    layout, or an exported file run by its own runtime: the suffix's, or ``runtime``), ``model``'s published
    weights, or else :data:`DEFAULT_MODEL`. Everything that can be refused
    is refused before this returns (bad values, no images, a missing heatmap library); then ``on_load``
    gets ``notes``, ``resize`` (the transfer report, or None), ``images`` and ``weights``."""
    from swincli.datasets.image_files import collect_inputs
    from swincli.device import autocast_dtype, pick_device
    from swincli.predict import predict as run

    dev = pick_device(device)
    dtype = autocast_dtype(amp, dev)  # bad values before the model loads
    method = _check_explain(explain, explain_method, features, force)
    _check_exported(checkpoint, runtime, features, explain)
    paths = collect_inputs([inputs] if isinstance(inputs, str) else list(inputs))
    if not paths:
        raise SwinUsageError("no images found in the inputs", hint="pass image files, folders or globs")
    net, info = load_for_inference(model, checkpoint, size, window, revision, offline, DEFAULT_MODEL, runtime=runtime,
                                   device=dev)  # fmt: skip
    if explain is not None:
        from swincli.explain import coarse_note

        info["notes"] += [line for line in [coarse_note(net, explain_layer)] if line]
    if on_load is not None:
        on_load(dict(info, images=len(paths)))
    workers = _workers(workers, dev, len(paths), batch_size)
    results = run(net, paths, top_k, batch_size, dev, dtype, workers, features, on_batch=on_batch)
    if explain is not None:
        from swincli.explain import explain_predictions

        results = explain_predictions(net, results, paths, explain, method, batch_size=batch_size, device=dev,
                                      workers=workers, layer=explain_layer, note=lambda line: None)  # said in on_load
    return (_plain(r) for r in results)


def explain(source: Any, paths: Sequence[str], out_dir: str | Path, method: str = "gradcam", **options: Any) -> list[dict]:
    """``swin predict --explain`` alone: a heatmap PNG per image in ``out_dir`` (see :mod:`swincli.explain`).
    ``source``: a loaded model, or a checkpoint path / layout ``load()`` reads; ``options``: ``batch_size``,
    ``device``, ``workers``, ``layer``. Same-named PNGs in ``out_dir`` are replaced. One dict per path:
    ``path``, ``file``, ``index``, ``label``, ``prob`` or ``error``."""
    from dataclasses import asdict

    from swincli.explain import explain as run
    from swincli.explain import require_gradcam

    require_gradcam()
    if not hasattr(source, "config"):
        from swincli.loader import load

        source = load(source)
    return [asdict(e) for e in run(source, list(paths), out_dir, method, **options)]


def load_for_inference(model: str | None, checkpoint: str | None, size: Any, window: Any, revision: str | None = None,
                       offline: bool = False, default: str | None = None, pretrained: bool = True,
                       runtime: str | None = None, device: str = "cpu"):  # fmt: skip
    """The model predict, eval and profile run, with the CPU fast path applied (or an exported file, run by
    its runtime), and what to tell the user: ``notes``, ``resize`` (the transfer report as a dict, or None)
    and ``weights`` (what was loaded)."""
    from swincli.export.formats import is_exported
    from swincli.models.fast_path import optimize_for_inference
    from swincli.loader import load
    from swincli.sizes import size_value, window_value

    if is_exported(checkpoint, runtime):
        from swincli.export.runtime import load_exported

        net = load_exported(checkpoint, runtime, device, size=size, window=window)
        return net, {"notes": list(net.load_notes), "resize": None, "weights": checkpoint}
    if runtime is not None:
        raise SwinUsageError(f"--runtime {runtime} runs exported files, and {checkpoint or model} is not one",
                             hint="pass the exported file as --checkpoint, or drop --runtime")  # fmt: skip
    notes = []
    if model is None and checkpoint is None and default is not None:
        model = default
        notes.append(f"no --model or --checkpoint: using {model}{_weights_tag(model) if pretrained else ''}")
    net = load(checkpoint, img_size=size_value(size), window_size=window_value(window), model=model,
               pretrained=pretrained, revision=revision, offline=True if offline else None,
               progress=sys.stderr.isatty())  # fmt: skip
    optimize_for_inference(net)
    report = net.resize_report.to_dict() if net.resize_report is not None and net.resize_report.changed else None
    return net, {"notes": notes + list(net.load_notes), "resize": report, "weights": checkpoint or model}


def _weights_tag(name: str) -> str:
    from swincli.hub import resolve_weights

    entry, weights = resolve_weights(name)
    return f" ({entry.name}.{weights.tag})"


def _check_exported(checkpoint: str | None, runtime: str | None, features: bool, explain: Any) -> None:
    """An exported file outputs logits only: no embeddings, no gradients for heatmaps."""
    from swincli.export.formats import is_exported

    if is_exported(checkpoint, runtime) and (features or explain is not None):
        flag = "--features" if features else "--explain"
        raise SwinUsageError(f"{flag} needs the checkpoint: an exported file gives logits only", hint="pass the checkpoint it was exported from")


def _check_explain(explain: str | Path | None, method: str | None, features: bool, force: bool) -> str:
    """``explain``'s method, checked with its folder and the grad-cam import before the model loads."""
    if explain is None:
        return ""
    from swincli.explain import check_method, check_target_dir, require_gradcam

    if features:
        raise SwinUsageError("--explain and --features are alternatives", hint="explanations are of classes")
    method = check_method(method or "gradcam")
    require_gradcam()
    check_target_dir(explain, force)
    return method


def _workers(requested: int | None, device: str, images: int, batch_size: int) -> int:
    from swincli.threads import loader_workers

    return loader_workers(requested, device.split(":")[0], -(-images // batch_size))


def _plain(result) -> dict[str, Any]:
    out = result.to_dict()
    if result.features is not None:
        out["features"] = result.features.numpy()
    return out


def write_embeddings(results: Iterable[dict[str, Any]], path: str | Path,
                     on_error: Callable[[str, str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """``swin predict --features -o emb.npy``: the vectors of ``results`` stacked into ``path`` and their
    paths, in row order, into ``path.paths.txt``; both renamed into place only once both are written.
    Returns ``rows``, ``dim``, ``names_file`` and ``errors`` (``[path, reason]`` for each failed input)."""
    import numpy as np

    from swincli.fileio import atomic_file

    rows, names, errors = [], [], []
    for r in results:
        if r.get("error"):
            errors.append([r["path"], r["error"]])
            if on_error is not None:
                on_error(r["path"], r["error"])
        else:
            rows.append(r["features"])
            names.append(r["path"])
    names_file = embeddings_names_file(path)
    if rows:
        with atomic_file(path) as tmp, atomic_file(names_file) as tmp_names:
            with open(tmp, "wb") as fh:
                np.save(fh, np.stack(rows))
            tmp_names.write_text("".join(n + "\n" for n in names))
    return {"rows": len(rows), "dim": int(rows[0].shape[0]) if rows else 0, "names_file": str(names_file), "errors": errors}


def embeddings_names_file(features: str | Path) -> Path:
    """The row order of an embeddings file: ``emb.npy`` -> ``emb.npy.paths.txt``."""
    return Path(str(features) + ".paths.txt")
