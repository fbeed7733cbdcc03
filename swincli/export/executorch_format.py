"""ExecuTorch (``.pte``) with the XNNPACK delegate: the format for phones and edge devices.

The program is lowered by ``to_edge_transform_and_lower`` with XNNPACK's partitioner, so every operator
XNNPACK supports runs in its kernels and the rest in ExecuTorch's portable ones. A ``.pte`` has no room
for our record, which goes to ``FILE.pte.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from swincli.export.formats import FORMATS
from swincli.export.spec import ExportSpec

MAX_BATCH = FORMATS["executorch"].max_batch  # ExecuTorch plans memory for the largest input: a small bound


def write(net: torch.nn.Module, path: Path, spec: ExportSpec, meta: str) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackPartitioner,
    )
    from executorch.exir import to_edge_transform_and_lower

    x = spec.example()
    dynamic = None if spec.batch else ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)
    program = torch.export.export(spec.model_for(net), (x,), dynamic_shapes=dynamic)
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(lowered.buffer)


class Runner:
    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None, precision: str = "fp32") -> None:
        from executorch.runtime import Runtime

        self.method = Runtime.get().load_program(str(path)).load_method("forward")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.execute([x.detach().to("cpu", torch.float32).contiguous()])[0].float()
