"""What one export asks for, after every flag has been checked against the format (:mod:`.formats`)."""

from __future__ import annotations

from dataclasses import dataclass

TRACE_BATCH = 2  # a dynamic batch is traced at 2: 1 would let an exporter specialise the batch axis away
MAX_BATCH = 4096


@dataclass(frozen=True)
class ExportSpec:
    format: str
    batch: int | None  # None: dynamic
    half: bool
    int8: bool
    device: str  # cpu or cuda[:N]
    height: int
    width: int
    channels: int = 3

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else "fp16" if self.half else "fp32"

    @property
    def trace_batch(self) -> int:
        return self.batch or TRACE_BATCH

    def example(self, dtype=None):
        """The input the exporters trace with: zeros would let a runtime fold away work, so seeded noise."""
        import torch

        gen = torch.Generator().manual_seed(0)
        x = torch.randn(self.trace_batch, self.channels, self.height, self.width, generator=gen)
        return x.to(self.device, dtype or (torch.float16 if self.half else torch.float32))

    def model_for(self, net):
        """``net`` on the export device in the file's dtype: a copy when that changes it (the original stays the fp32
        reference the file is checked against)."""
        import copy

        import torch

        dtype = torch.float16 if self.half else torch.float32
        if next(net.parameters()).dtype == dtype and next(net.parameters()).device == torch.device(self.device):
            return net
        return copy.deepcopy(net).to(self.device, dtype)

    def batch_dim(self):
        """torch.export's batch dimension, or None for a fixed batch."""
        import torch

        return None if self.batch else torch.export.Dim("batch", min=1, max=MAX_BATCH)
