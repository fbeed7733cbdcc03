"""The Python API: one function per ``swin`` command, each taking and returning plain data.

Every CLI command parses its flags, calls one function here and renders what it returns; nothing in
``swincli/cli/`` reaches the core any other way. Functions here never print (progress goes to the
``reporter``/callbacks a caller passes), and ``swin X --format json`` prints exactly what they return.
Importing this package is cheap: torch loads inside the functions that need it.

========================  ===================================================================
``models_table``          ``swin models list``
``model_info``            ``swin models info``
``train``, ``finetune``   ``swin train``, ``swin finetune`` (options as the flags' Python names)
``evaluate``              ``swin eval``
``predict``               ``swin predict`` (a stream of results); ``explain``: heatmaps alone
``profile``               ``swin profile``
``convert``               ``swin convert``
``export``                ``swin export``; ``export_formats``: ``swin export --check``
``environment``           ``swin env``
========================  ===================================================================
"""

from __future__ import annotations

from swincli import limits
from swincli._version import __version__
from swincli.api.catalog import model_info, models_table
from swincli.api.conversion import convert
from swincli.api.environment import command_plugins, environment
from swincli.api.evaluation import evaluate
from swincli.api.exporting import export, export_formats
from swincli.api.prediction import (
    embeddings_names_file,
    explain,
    load_for_inference,
    predict,
    write_embeddings,
)
from swincli.api.profiling import profile
from swincli.api.training import describe_lora, finetune, read_options_file, train
from swincli.engine.reporter import Reporter, TrainResult
from swincli.errors import CheckpointError, SwinError, SwinUsageError
from swincli.fileio import atomic_file, check_writable_target
from swincli.sizes import pair_text
from swincli.wording import giga, plural

__all__ = [
    "CheckpointError", "Reporter", "SwinError", "SwinUsageError", "TrainResult", "__version__", "atomic_file",
    "check_writable_target", "command_plugins", "convert", "describe_lora", "embeddings_names_file", "environment",
    "evaluate", "explain", "export", "export_formats", "finetune", "giga", "limits", "load_for_inference", "model_info", "models_table", "pair_text", "plural", "predict",
    "profile", "read_options_file", "train", "write_embeddings",
]  # fmt: skip
