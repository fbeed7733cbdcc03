"""The deployment formats ``swin export`` writes and ``swin predict`` runs: one row each, checked up front.

A row says what the format is called (and what users of other tools type for it), its file suffix, the
extra that installs its runtime, the modules that must import to write or to run it, and what it can
hold: a dynamic batch, fp16, int8, the devices it runs on. Every flag is checked against the row before
any work starts, the way ultralytics' exporter checks its flags per format.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from swincli.errors import SwinError, SwinUsageError


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    runtime: str  # what runs the file, in words
    extra: str  # pip install "swincli[EXTRA]"
    write_modules: tuple[str, ...]
    run_modules: tuple[str, ...]
    devices: tuple[str, ...] = ("cpu", "cuda")
    dynamic_batch: bool = True
    half: bool = True
    int8: bool = False
    aliases: tuple[str, ...] = ()
    metadata_inside: bool = True  # False: class names, preprocessing and config go to FILE.json
    max_batch: int | None = None  # the largest batch a dynamic-batch file takes (its memory is planned for it)

    def missing(self, to: str = "write") -> list[str]:
        """Modules that do not import here, for writing (``write``) or running (``run``) this format."""
        modules = self.write_modules if to == "write" else self.run_modules
        return [m for m in modules if importlib.util.find_spec(m) is None]

    def require(self, to: str = "write") -> None:
        missing = self.missing(to)
        if missing:
            raise SwinError(
                f"{'running' if to == 'run' else 'exporting to'} {self.name} needs {', '.join(missing)}, which is not installed",
                hint=f'python -m pip install "swincli[{self.extra}]"',
            )


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", ".onnx", "ONNX Runtime", "onnx", ("onnx", "onnxscript"), ("onnxruntime",), int8=True),
    Format("openvino", ".xml", "OpenVINO", "openvino", ("openvino",), ("openvino",), devices=("cpu",), int8=True,
           aliases=("ov",)),
    Format("pt2", ".pt2", "AOTInductor", "pt2", (), (), aliases=("torch-export", "aoti", "aot-inductor")),
    Format("tensorrt", ".engine", "TensorRT", "tensorrt", ("torch_tensorrt",), ("tensorrt",), devices=("cuda",),
           aliases=("engine", "trt"), metadata_inside=False, max_batch=256),
    Format("executorch", ".pte", "ExecuTorch (XNNPACK)", "executorch", ("executorch",), ("executorch",), devices=("cpu",),
           half=False, aliases=("pte", "et"), metadata_inside=False, max_batch=64),
)}  # fmt: skip
BY_SUFFIX = {f.suffix: f for f in FORMATS.values()}
ALIASES = {alias: f.name for f in FORMATS.values() for alias in (f.name, *f.aliases)}


def find_format(name: str) -> Format:
    """The format called ``name`` (or an alias); a typo gets the closest names."""
    key = name.strip().lower().replace("_", "-")
    if key in ALIASES:
        return FORMATS[ALIASES[key]]
    close = difflib.get_close_matches(key, list(ALIASES), n=1, cutoff=0.5)
    hint = f"did you mean {ALIASES[close[0]]}?" if close else f"choose one of {', '.join(FORMATS)}"
    raise SwinUsageError(f"unknown export format {name!r}", hint=hint)


def format_of_file(path: str | Path, runtime: str | None = None) -> Format | None:
    """The format that runs ``path``: ``runtime`` when given, else the file's suffix; None for a checkpoint."""
    if runtime is not None:
        return find_format(runtime)
    return BY_SUFFIX.get(Path(path).suffix.lower())


def is_exported(path: str | Path | None, runtime: str | None = None) -> bool:
    return path is not None and format_of_file(path, runtime) is not None


def default_output(source: str, fmt: Format) -> Path:
    """``model.safetensors`` -> ``model.onnx``; ``--model swin-t`` -> ``swin-t.onnx`` (in the current folder)."""
    return Path(source).with_suffix(fmt.suffix) if Path(source).suffix else Path(Path(source).name + fmt.suffix)


def side_files(path: Path, fmt: Format) -> list[Path]:
    """Every file an export writes beside ``path``: OpenVINO's weights, and the sidecar where the format has no room."""
    out = [path.with_suffix(".bin")] if fmt.name == "openvino" else []
    return out + ([] if fmt.metadata_inside else [path.with_name(path.name + ".json")])
