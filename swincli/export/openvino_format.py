"""OpenVINO IR (``.xml`` + ``.bin``): converted from torch.export's program by ``openvino.convert_model``.

fp32 files run with the CPU plugin's ``INFERENCE_PRECISION_HINT`` set to f32: left alone, the plugin
computes in bf16 on CPUs that have it, which is a different model from the one that was verified.
``--half`` stores the weights in fp16 and lets the plugin pick its fastest precision (bf16 where the
CPU has it). ``--int8`` files come from :mod:`.quantize` (nncf).
"""

from __future__ import annotations

from pathlib import Path

import torch

from swincli.export.spec import ExportSpec

RT_KEY = ["swincli", "metadata"]


def convert(net: torch.nn.Module, spec: ExportSpec):
    """The in-memory OpenVINO model of ``net``, its input fixed at C x H x W and the batch as the spec says."""
    import openvino as ov

    x = spec.example(torch.float32)
    dim = spec.batch_dim()
    program = torch.export.export(net, (x,), dynamic_shapes=({0: dim},) if dim is not None else None)
    model = ov.convert_model(program)
    model.reshape([spec.batch or -1, spec.channels, spec.height, spec.width])
    return model


def write(net: torch.nn.Module, path: Path, spec: ExportSpec, meta: str, model=None) -> None:
    """``model``: an already converted (e.g. quantized) model to save instead of converting ``net``."""
    import openvino as ov

    model = convert(net, spec) if model is None else model
    model.set_rt_info(meta, RT_KEY)
    ov.save_model(model, str(path), compress_to_fp16=spec.half)


def read_metadata(path: Path) -> str | None:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    return model.get_rt_info(RT_KEY).astype(str) if model.has_rt_info(RT_KEY) else None


class Runner:
    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None, precision: str = "fp32") -> None:
        import openvino as ov

        config: dict = {} if precision == "fp16" else {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.request.infer({0: x.detach().to("cpu", torch.float32).contiguous().numpy()})
        return torch.from_numpy(next(iter(out.values())).copy()).float()
