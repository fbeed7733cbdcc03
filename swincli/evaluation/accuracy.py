"""``swin eval``: a checkpoint (any layout) on a labelled folder or dataset, with its own preprocessing.

Images are scored against the output their class name has in the checkpoint (:mod:`swincli.evaluation.class_match`).
"""

from __future__ import annotations

from typing import Any

from swincli.datasets.build import eval_data, eval_folder
from swincli.datasets.folder import class_folders
from swincli.datasets.transforms import Transformed, eval_transform_for
from swincli.datasets.unreadable import skipped_message
from swincli import distributed
from swincli.evaluation.class_match import Relabeled, match_classes
from swincli.evaluation.loop import evaluate
from swincli.memory import ensure_fits, estimate
from swincli.threads import loader_workers


def run_eval(checkpoint: str, data: str, img_size=None, window_size=None, batch_size: int = 64, workers: int | None = None,
             device: str | None = None, amp: str | None = None, model_name: str | None = None,
             remap: bool = False, confusion: bool = False, runtime: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Accuracy and loss; ``metrics["notes"]`` says what was assumed or left out (``remap``: score only the
    classes the data and the checkpoint share, matched by name; ``confusion``: also ``metrics["confusion"]``,
    true x predicted counts over the checkpoint's outputs, and ``metrics["class_names"]``, see
    :mod:`swincli.evaluation.confusion`; ``runtime``: run an exported file with that format's runtime)."""
    from swincli.device import autocast_dtype

    ctx = distributed.setup(device)
    try:
        model = _model(checkpoint, img_size, window_size, model_name, runtime, str(ctx.device))
        exported = getattr(model, "exported", False)
        amp_dtype = None if exported else autocast_dtype(amp, ctx.device)  # a runtime runs the precision it was exported in
        dataset, match = _labelled(data, model.class_names, model.config.num_classes, remap)
        tf = eval_transform_for(model)
        ds = dataset.transformed(tf) if hasattr(dataset, "transformed") else Transformed(dataset, tf)  # wds: streamed
        batch_size = min(batch_size, max(1, len(ds)))  # a batch is never larger than the data
        workers = loader_workers(workers, ctx.device.type, -(-len(ds) // batch_size))
        if not exported:
            need = estimate(model.config, batch_size, train=False, amp=amp_dtype is not None, weights=ctx.device.type != "cpu")
            ensure_fits(need, str(ctx.device), f"evaluating in batches of {batch_size}", "a smaller --batch-size")
        model.to(ctx.device)
        metrics = evaluate(model, ds, batch_size, ctx, amp_dtype, workers, model.config.num_classes, confusion=confusion)
        names = model.class_names or list(match.index)
        if confusion:
            metrics["class_names"] = [str(names[i]) if i < len(names) else str(i) for i in range(model.config.num_classes)]
        for row in metrics["per_class"]:
            row["class"] = names[row["index"]] if row["index"] < len(names) else str(row["index"])
        metrics["resized"] = bool(model.resize_report and model.resize_report.changed)
        metrics["input_size"] = list(model.config.image_hw)
        metrics["notes"] = list(model.load_notes) + match.notes  # what loading assumed, then class matching
        return metrics
    finally:
        distributed.teardown(ctx)


def _model(checkpoint, img_size, window_size, model_name, runtime, device):
    """A checkpoint (any layout) with the CPU fast path, or an exported file run by its runtime."""
    from swincli.export.formats import is_exported

    if is_exported(checkpoint, runtime):
        from swincli.export.runtime import load_exported

        return load_exported(checkpoint, runtime, device, size=img_size, window=window_size)
    from swincli.loader import load
    from swincli.models.fast_path import optimize_for_inference

    model = load(checkpoint, img_size=img_size, window_size=window_size, model=model_name)
    optimize_for_inference(model)
    return model


def _labelled(data: str, names: list[str] | None, num_classes: int, remap: bool):
    """The evaluation images with model-output labels, and how classes were matched. Class folders are
    matched before any image is indexed: a mismatch is refused at once, skipped folders are never read."""
    folder = eval_folder(data)
    if folder is not None and folder.is_dir() and class_folders(folder):
        found = class_folders(folder)
        match = match_classes(found, names, num_classes, remap, str(folder))
        kept = [c for c in found if c in match.index]
        dataset, _ = eval_data(data, kept)
        if dataset.skipped:
            match.notes.append(skipped_message(dataset.skipped, f"that cannot be read in {folder}"))
        return Relabeled(dataset, kept, match), match
    split_notes: list[str] = []  # hf: and wds: say which split, columns and class names they used
    dataset, found = eval_data(data, None, split_notes)  # a torchvision dataset, hf:, wds:, or a folder that will say what is wrong
    match = match_classes(found, names, num_classes, remap, data)
    match.notes[:0] = split_notes
    if hasattr(dataset, "relabeled"):  # wds: shards are streamed: labels mapped as the samples come
        return dataset.relabeled([match.index.get(c) for c in found]), match
    return Relabeled(dataset, found, match, getattr(dataset, "targets", None)), match
