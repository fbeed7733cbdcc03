"""TensorRT (``.engine``): a serialized engine built by Torch-TensorRT from torch.export's program.

CUDA only. The engine has an optimisation profile over the batch (1 to ``MAX_BATCH``, tuned at the
traced batch) and fixed H x W. fp16 with ``--half``. Its record goes to ``FILE.engine.json``; running it
needs the ``tensorrt`` Python runtime alone, and torch for the CUDA buffers.
"""

from __future__ import annotations

from pathlib import Path

import torch

from swincli.export.formats import FORMATS
from swincli.export.spec import ExportSpec

MAX_BATCH = FORMATS["tensorrt"].max_batch  # the optimisation profile's largest batch


def write(net: torch.nn.Module, path: Path, spec: ExportSpec, meta: str) -> None:
    import torch_tensorrt

    x = spec.example(torch.float32)
    net = spec.model_for(net).float()  # fp16 comes from enabled_precisions: TensorRT picks the layers
    shape = (spec.channels, spec.height, spec.width)
    if spec.batch:
        inputs = [torch_tensorrt.Input((spec.batch, *shape), dtype=torch.float32)]
        program = torch.export.export(net, (x,))
    else:
        inputs = [torch_tensorrt.Input(min_shape=(1, *shape), opt_shape=(spec.trace_batch, *shape),
                                       max_shape=(MAX_BATCH, *shape), dtype=torch.float32)]  # fmt: skip
        dim = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        program = torch.export.export(net, (x,), dynamic_shapes=({0: dim},))
    precisions = {torch.float16, torch.float32} if spec.half else {torch.float32}
    engine = torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine(
        program, inputs=inputs, enabled_precisions=precisions)
    path.write_bytes(bytes(engine))


class Runner:
    """Deserialises the engine and runs it on torch's current CUDA stream, input and output as torch tensors."""

    def __init__(self, path: Path, device: str = "cuda", threads: int | None = None, precision: str = "fp32") -> None:
        import tensorrt as trt

        self.device = torch.device(device)
        logger = trt.Logger(trt.Logger.ERROR)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().to(self.device, torch.float32).contiguous()
        self.context.set_input_shape(self.input, tuple(x.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output)), device=self.device, dtype=torch.float32)
        self.context.set_tensor_address(self.input, x.data_ptr())
        self.context.set_tensor_address(self.output, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        self.context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return out
