"""``swin eval``: a checkpoint (any layout) on a labelled folder or dataset, with its own preprocessing."""

from __future__ import annotations

from typing import Any

from swincli.checkpoint import Preprocessing
from swincli.datasets.build import eval_data
from swincli.datasets.transforms import Transformed, eval_transform
from swincli.engine import distributed as D
from swincli.engine.evaluate import evaluate
from swincli.errors import SwinError


def run_eval(checkpoint: str, data: str, img_size=None, window_size=None, batch_size: int = 64, workers: int = 2,
             device: str | None = None, amp: str | None = None, model_name: str | None = None) -> dict[str, Any]:  # fmt: skip
    from swincli.engine.trainer import _amp_dtype
    from swincli.inference import optimize_for_inference
    from swincli.loader import load

    ctx = D.setup(device)
    try:
        model = load(checkpoint, img_size=img_size, window_size=window_size, model=model_name)
        optimize_for_inference(model)
        prep = model.preprocessing or Preprocessing.for_config(model.config)
        dataset, classes = eval_data(data, model.class_names)
        if model.class_names is None and len(classes) != model.config.num_classes:
            raise SwinError(f"{data} has {len(classes)} classes but the model predicts {model.config.num_classes}",
                            hint="evaluate on data with the model's classes")  # fmt: skip
        ds = Transformed(dataset, eval_transform(model.config.image_hw, prep.crop_pct, prep.mean, prep.std, prep.interpolation))
        model.to(ctx.device)
        metrics = evaluate(model, ds, batch_size, ctx, _amp_dtype(amp, ctx.device), workers, model.config.num_classes)
        names = model.class_names or classes
        for row in metrics["per_class"]:
            row["class"] = names[row["index"]] if row["index"] < len(names) else str(row["index"])
        metrics["resized"] = bool(model.resize_report and model.resize_report.changed)
        metrics["input_size"] = list(model.config.image_hw)
        return metrics
    finally:
        D.teardown(ctx)
