"""ONNX through torch's dynamo exporter, run by ONNX Runtime.

The official code bakes the batch size into its window reverse and silently gives wrong logits at any
other batch once exported. Our reshapes never compute the batch; :mod:`.verify` proves it on every
export by running the file at batch sizes other than the traced one.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch

from swincli.export.spec import ExportSpec

OPSET = 18


def write(net: torch.nn.Module, path: Path, spec: ExportSpec, meta: str) -> None:
    x = spec.example()
    dim = spec.batch_dim()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(spec.model_for(net), (x,), str(path), input_names=["images"], output_names=["logits"],
                          dynamic_shapes=({0: dim},) if dim is not None else None, opset_version=OPSET, dynamo=True,
                          external_data=False, verbose=False)  # fmt: skip
    set_metadata(path, meta)


def set_metadata(path: Path, meta: str) -> None:
    """Store the swincli record in the file's ``metadata_props`` (what ``onnx.load`` shows as metadata)."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "swincli", meta
    onnx.save(proto, str(path))


def read_metadata(path: Path) -> str | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((p.value for p in proto.metadata_props if p.key == "swincli"), None)


class Runner:
    """An ONNX Runtime session: float32 (or float16) NCHW in, logits out, as torch tensors."""

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None, precision: str = "fp32") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        first = self.session.get_inputs()[0]
        self.name = first.name
        self.dtype = torch.float16 if "float16" in first.type else torch.float32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.name: x.detach().to("cpu", self.dtype).contiguous().numpy()})[0]
        return torch.from_numpy(out).float()
