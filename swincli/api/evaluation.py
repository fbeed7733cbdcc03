"""``swin eval`` from Python: accuracy of weights on labelled images, as plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swincli.errors import SwinUsageError


def evaluate(checkpoint: str | None = None, data: str | None = None, *, model: str | None = None, size: Any = None,
             window: Any = None, batch_size: int = 64, workers: int | None = None, device: str | None = None,
             amp: str | None = "auto", per_class: bool = False, remap: bool = False, plot: str | Path | None = None,
             force: bool = False, runtime: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Top-1/top-5 accuracy (percent), loss and image count of ``checkpoint`` (any layout) or ``model``'s
    published weights on ``data``, with the preprocessing the weights were trained with. An exported
    ``checkpoint`` (``.onnx``, ``.xml``, ``.pt2``, ``.pte``, ``.engine``) runs in its own runtime (or ``runtime``'s).

    ``per_class`` (implied by ``plot``) adds ``per_class`` rows (with the class each is most mistaken
    for) and ``confusion``; ``plot`` also draws the confusion matrix into that PNG (an existing file
    only with ``force``). ``notes`` says what was assumed; ``unreadable`` lists images that failed to decode,
    ``warnings`` says so in a line."""
    from swincli.device import autocast_dtype  # noqa: F401 - checks amp before anything loads
    from swincli.datasets.unreadable import skipped_message
    from swincli.evaluation.accuracy import run_eval
    from swincli.fileio import check_writable_target
    from swincli.sizes import size_value, window_value

    if data is None:
        raise SwinUsageError("eval needs --data DIR (labelled images)")
    if checkpoint is None and model is None:
        raise SwinUsageError("eval needs weights", hint="pass --checkpoint FILE, or --model NAME for published weights")
    if plot is not None:  # refused before the model loads, like every output
        check_writable_target(plot, force)
    per_class = per_class or plot is not None
    metrics = run_eval(checkpoint, data, img_size=size_value(size), window_size=window_value(window),
                       batch_size=batch_size, workers=workers, device=device, amp=amp, model_name=model, remap=remap,
                       confusion=per_class, runtime=runtime)  # fmt: skip
    out = {k: metrics[k] for k in ("acc1", "acc5", "loss", "images", "unreadable_images", "input_size", "notes")}
    out["unreadable"] = [list(item) for item in metrics["unreadable"]]
    out["warnings"] = [skipped_message(out["unreadable"], "that failed to decode", shown=5)] if out["unreadable"] else []
    if per_class:
        out.update(_per_class(metrics, plot, f"{Path(checkpoint).name if checkpoint else model} on {data}"))
    return out


def _per_class(metrics: dict[str, Any], plot: str | Path | None, title: str) -> dict[str, Any]:
    """Per-class rows with the class each is most often taken for, the confusion summary, and the PNG."""
    from swincli.evaluation.confusion import summarise, top_mistakes

    matrix, names = metrics["confusion"], metrics["class_names"]
    mistakes = top_mistakes(matrix, names)
    rows = [dict(row, mistaken_for=mistakes.get(row["index"])) for row in metrics["per_class"]]
    out: dict[str, Any] = {"per_class": rows, "confusion": summarise(matrix, names)}
    if plot is not None:
        from swincli.drawing.confusion_plot import draw_confusion

        cut_note = draw_confusion(matrix, names, plot, title=title)
        if cut_note:
            metrics["notes"].append(cut_note)
        out["plot"] = str(plot)
    return out
