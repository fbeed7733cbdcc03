"""``swin train`` and ``swin finetune`` from Python: options in, the run's outcome out as plain data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from swincli.errors import SwinUsageError

if TYPE_CHECKING:
    from swincli.engine.reporter import Reporter


def train(*, reporter: "Reporter | None" = None, explicit: Iterable[str] | None = None, **options: Any) -> dict[str, Any]:
    """Train from scratch. ``options`` are the flags of ``swin train`` by their Python names (``lr=1e-3``,
    ``size="64"``); ``explicit`` names those the user gave (default: every one passed), which a resumed
    run checks against its own; ``reporter`` receives progress (default: silent). Returns ``run_dir``,
    ``best_acc1``, the last epoch's metrics row, ``epochs``, the notes, and the LoRA summary."""
    return _run(options, False, reporter, explicit)


def finetune(*, reporter: "Reporter | None" = None, explicit: Iterable[str] | None = None, **options: Any) -> dict[str, Any]:
    """Fine-tune ``checkpoint=`` (any layout) or ``model=``'s published weights; the rest as :func:`train`."""
    return _run(options, True, reporter, explicit)


def read_options_file(path: str | Path) -> dict[str, Any]:
    """The options in a ``--config`` file (flat YAML or JSON), each checked like its flag."""
    from swincli.engine.recipes.config_file import read_config_file

    return read_config_file(path)


def describe_lora(summary: dict[str, Any]) -> str:
    """The closing line of a LoRA run: trainable parameters and memory (``TrainResult.lora``)."""
    from swincli.engine.lora import describe

    return describe(summary)


def _run(options: dict[str, Any], finetune: bool, reporter: "Reporter | None", explicit: Iterable[str] | None) -> dict:
    from swincli.engine.tracking.factory import parse_log
    from swincli.engine.train_config import TrainConfig
    from swincli.engine.trainer import train as run
    from swincli.sizes import size_value, window_value

    given = list(options) if explicit is None else list(explicit)
    options = dict(options)
    if "size" in options:
        options["size"] = size_value(options["size"])
    if "window" in options:
        options["window"] = window_value(options["window"])
    for key in ("amp", "device"):
        if options.get(key) == "auto":  # the default policy, spelled out
            options[key] = None
    if options.get("log") is not None:
        options["log"] = parse_log(options["log"])
    if not finetune and options.get("checkpoint") is not None:
        raise SwinUsageError("-c/--checkpoint starts from trained weights",
                             hint="use swin finetune -c CK; a config file is --config FILE")  # fmt: skip
    if finetune and not any(options.get(k) is not None for k in ("checkpoint", "model", "resume")):
        raise SwinUsageError("finetune needs --checkpoint CK (or --model NAME for published weights)")
    return run(TrainConfig.from_dict(options), finetune=finetune, reporter=reporter, explicit=given).to_dict()
