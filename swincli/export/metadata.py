"""What an exported file carries so that ``swin predict`` needs nothing else: config, classes, preprocessing.

One JSON object, stored under the key ``swincli`` where the format has room for it (ONNX
``metadata_props``, OpenVINO ``rt_info``, a ``.pt2`` archive's extra files) and otherwise in the
``FILE.json`` sidecar that ``swin convert`` writes for foreign layouts. The model config is the one our
checkpoints store, so an exported file describes its network exactly as its checkpoint did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swincli._version import __version__
from swincli.checkpoint import Preprocessing
from swincli.errors import CheckpointError
from swincli.models.config import SwinConfig

KEY = "swincli"
FORMAT = "swincli-export"
FORMAT_VERSION = 1


@dataclass
class ExportFacts:
    """Read back from an exported file: enough to preprocess, label and check its inputs."""

    config: SwinConfig
    class_names: list[str] | None
    preprocessing: Preprocessing
    precision: str = "fp32"
    batch: int | None = None  # None: any batch
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def describe(net, fmt: str, precision: str, batch: int | None, source: str) -> str:
    """The JSON text an export of ``net`` stores."""
    prep = net.preprocessing or Preprocessing.for_config(net.config)
    return json.dumps({
        "format": FORMAT, "format_version": FORMAT_VERSION, "written_by": f"swincli {__version__}", "export_format": fmt,
        "config": json.loads(net.config.to_json()), "class_names": list(net.class_names) if net.class_names else None,
        "preprocessing": prep.to_dict(), "precision": precision, "batch": batch, "source": source,
        "input": "images", "output": "logits",
    })  # fmt: skip


def parse(text: str | bytes | None, where: str | Path) -> ExportFacts:
    """The facts in ``text``; a file without them, or with a bad value, is a one-line error naming it."""
    if not text:
        raise CheckpointError(f"{where} carries no swincli metadata", hint="export it with `swin export`, which records "
                              "the model config, class names and preprocessing")  # fmt: skip
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a swincli export record")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(f"{where} was written by a newer swincli (format {version!r})",
                                  hint="upgrade swincli: python -m pip install -U swincli")  # fmt: skip
        config = SwinConfig.from_json(json.dumps(data["config"]))
        prep = Preprocessing.from_dict(data["preprocessing"])
        names = data.get("class_names")
        if names is not None and (not isinstance(names, list) or len(names) != config.num_classes):
            raise ValueError(f"class_names must list {config.num_classes} names")
        batch = data.get("batch")
        if batch is not None and (not isinstance(batch, int) or batch < 1):
            raise ValueError(f"batch must be a positive integer or null, got {batch!r}")
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{where}: its swincli metadata is unreadable ({exc})",
                              hint="export it again with `swin export`") from None  # fmt: skip
    return ExportFacts(config, names, prep, str(data.get("precision", "fp32")), batch, str(data.get("source", "")), data)


def sidecar(path: Path) -> Path:
    """Where formats without room for metadata keep it: ``model.pte`` -> ``model.pte.json``."""
    return path.with_name(path.name + ".json")


def read_sidecar(path: Path) -> ExportFacts:
    side = sidecar(path)
    if not side.is_file():
        raise CheckpointError(f"{path} has no {side.name} beside it (its config, class names and preprocessing)",
                              hint="keep the .json that `swin export` wrote next to the file")  # fmt: skip
    return parse(side.read_text(), side)
