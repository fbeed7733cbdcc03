"""``swin convert`` from Python: weights between layouts, logits checked, as plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def convert(source: str | Path, output: str | Path, *, from_layout: str = "auto", to: str = "swin",
            model: str | None = None, size: Any = None, window: Any = None, pretrained_window: Any = None,
            num_classes: int | None = None, check: bool | None = None, force: bool = False) -> dict[str, Any]:  # fmt: skip
    """Convert ``source`` (a weight file or Hugging Face folder, layout recognised unless ``from_layout``)
    to ``to`` at ``output``, optionally at a new size/window or head. Returns what was read, written and
    checked: ``source_layout``/``target`` with their display names, ``architecture``, ``tensors``,
    ``dropped``, ``notes``, ``check``, ``onnx_check``, ``resize`` and ``sidecar``."""
    from swincli.convert.detect import NAMES
    from swincli.convert.run import convert as run
    from swincli.sizes import size_value, window_value

    report = run(source, output, from_layout=from_layout, to=to, model=model, img_size=size_value(size),
                 window_size=window_value(window), pretrained_window_sizes=window_value(pretrained_window),
                 num_classes=num_classes, check=check, force=force).to_dict()  # fmt: skip
    report["source_layout_name"] = NAMES[report["source_layout"]]
    report["target_name"] = NAMES.get(report["target"], report["target"])
    return report

