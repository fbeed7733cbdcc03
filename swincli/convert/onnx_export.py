"""ONNX export with a dynamic batch axis, verified with onnxruntime at other batch sizes.

The official code bakes the batch size into its window reverse and silently gives wrong logits at
any batch size other than the traced one once exported. Our reshapes never compute the batch, and
this module proves it on every export: the file is traced at batch 2 and must match eager at
batches 1 and 3, or it is not written.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from swincli.errors import SwinError
from swincli.fileio import atomic_file

TRACE_BATCH = 2
CHECK_BATCHES = (1, 3)
TOLERANCE = 1e-4  # max |onnx - eager| / max |eager|


@dataclass
class OnnxCheck:
    batch: int
    max_abs_diff: float
    max_rel_diff: float


def require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise SwinError(
            f"ONNX export needs {', '.join(missing)}, which is not installed",
            hint='python -m pip install "swincli[onnx]"',
        )


def export_onnx(model: torch.nn.Module, path: Path, check: bool = True, opset: int = 18) -> list[OnnxCheck]:
    """Write ``path`` (atomically); with ``check``, refuse to keep a file whose logits are off."""
    require("onnx", "onnxscript", *(["onnxruntime"] if check else []))
    model = model.eval()
    config = model.config
    x = torch.randn(TRACE_BATCH, config.in_chans, *config.image_hw, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1, max=4096)
    with atomic_file(path) as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            str(tmp),
            input_names=["images"],
            output_names=["logits" if config.num_classes else "features"],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        results = verify(model, tmp) if check else []
        bad = [r for r in results if r.max_rel_diff > TOLERANCE]
        if bad:
            worst = max(bad, key=lambda r: r.max_rel_diff)
            raise SwinError(
                f"the exported ONNX model is off at batch {worst.batch} (max relative difference "
                f"{worst.max_rel_diff:.2e} > {TOLERANCE:.0e}); no file was written",
                hint="please report this with `swin env`",
            )
    return results


def verify(model: torch.nn.Module, path: Path) -> list[OnnxCheck]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    config = model.config
    out = []
    for b in CHECK_BATCHES:
        x = torch.randn(b, config.in_chans, *config.image_hw, generator=torch.Generator().manual_seed(b))
        with torch.no_grad():
            want = model(x)
        got = torch.from_numpy(session.run(None, {name: x.numpy()})[0])
        diff = (got - want).abs().max().item()
        out.append(OnnxCheck(b, diff, diff / max(want.abs().max().item(), 1e-12)))
    return out
