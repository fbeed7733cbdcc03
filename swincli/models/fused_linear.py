"""``FusedLinear``: an ``nn.Linear`` for CPU inference through oneDNN, the library PyTorch's CPU GEMMs use.

It computes exactly what ``nn.Linear`` computes, so :func:`swincli.models.fast_path.optimize_for_inference`
may put it in place of a plain, unhooked ``nn.Linear`` (same parameters, same state-dict keys). What
it adds:

- the bias is applied in the GEMM's write-back (``F.linear`` copies it into the output first);
- :meth:`FusedLinear.fused` can also apply GELU or a residual add there, which the cache-blocked block
  uses for ``fc1`` + GELU and (V1) ``proj``/``fc2`` + the residual when the block is plain
  (``F.linear`` + GELU or + add walk the output twice);
- under CPU bf16 autocast the bf16 weights are kept on the module between calls, refreshed when the
  parameter changes (its version counter), where autocast casts them on every call. The price is a
  bf16 copy of the weights for as long as the module lives.

The oneDNN ops have no backward, so with autograd on, off the CPU, while compiling, exporting or
tracing, in other dtypes, or where this PyTorch build lacks the ops, it runs ``F.linear``.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def graph_capture() -> bool:
    """Inside torch.compile, export or TorchScript, where only standard ops may appear in the graph."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return torch.compiler.is_compiling() or exporting() or torch.jit.is_tracing() or torch.jit.is_scripting()


@functools.cache
def available() -> bool:
    """Whether this PyTorch build has oneDNN's fused linear op."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@functools.cache
def _bf16_supported() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def compute_dtype(x: Tensor) -> torch.dtype | None:
    """The dtype the fused op runs ``x`` in, or None where the plain op must run."""
    if x.device.type != "cpu" or torch.is_grad_enabled() or graph_capture() or not available():
        return None
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    if dtype == torch.float32 or (dtype == torch.bfloat16 and _bf16_supported()):
        return dtype
    return None


class FusedLinear(nn.Linear):
    """``nn.Linear`` with oneDNN's fused bias (and GELU) for CPU inference; see the module docstring."""

    enabled = True  # per module: switched off (with a warning) if the op ever fails here

    def forward(self, x: Tensor) -> Tensor:
        return self.fused(x)

    def fused(self, x: Tensor, gelu: bool = False, extra_bias: Tensor | None = None, add: Tensor | None = None) -> Tensor:
        """``gelu?(x W^T + bias + extra_bias) + add``: one fused op where possible, else the plain ops."""
        dtype = compute_dtype(x) if self.enabled else None
        if dtype is not None:
            bias = self.bias if extra_bias is None else (extra_bias if self.bias is None else self.bias + extra_bias)
            weight, bias = self._weights(dtype, bias)
            try:
                return _pointwise(x.to(dtype), weight, bias, gelu, add)
            except RuntimeError as err:  # an op this build rejects: say so, then keep to the plain ops
                self.enabled = False
                warnings.warn(f"oneDNN fused linear failed, using F.linear: {err}", RuntimeWarning, stacklevel=2)
        return _plain(x, self.weight, self.bias, gelu, extra_bias, add)

    def _weights(self, dtype: torch.dtype, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if dtype == self.weight.dtype:
            return self.weight, bias
        key = (self.weight.data_ptr(), self.weight._version, dtype)
        cast = self.__dict__.get("_cast")
        if cast is None or cast[0] != key:
            cast = (key, self.weight.detach().to(dtype))
            self.__dict__["_cast"] = cast
        return cast[1], None if bias is None else bias.to(dtype)

    @classmethod
    def swap(cls, linear: nn.Linear) -> "FusedLinear":
        """Make ``linear`` a FusedLinear in place: the same object, parameters and hooks, a new forward."""
        linear.__class__ = cls
        return linear

    def unswap(self) -> nn.Linear:
        self.__dict__.pop("_cast", None)
        self.__dict__.pop("enabled", None)
        self.__class__ = nn.Linear
        return self


def linear(module: nn.Linear, x: Tensor, gelu: bool = False, extra_bias: Tensor | None = None,
           add: Tensor | None = None) -> Tensor:  # fmt: skip
    """``gelu?(module(x) + extra_bias) + add``, fused where ``module`` is a FusedLinear."""
    if isinstance(module, FusedLinear):
        return module.fused(x, gelu, extra_bias, add)
    return _plain(x, module.weight, module.bias, gelu, extra_bias, add)


def _pointwise(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool, add: Tensor | None) -> Tensor:
    op = torch.ops.mkldnn._linear_pointwise
    if add is not None and add.dtype == x.dtype and not gelu:  # the add in the write-back
        return op.binary(x, add.expand(*x.shape[:-1], weight.shape[0]), weight, bias, "add")
    y = op(x, weight, bias, "gelu", [], "none") if gelu else op(x, weight, bias, "none", [], "")
    return y if add is None else add + y


def _plain(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool, extra_bias: Tensor | None, add: Tensor | None) -> Tensor:
    y = F.linear(x, weight, bias)
    if extra_bias is not None:
        y = y + extra_bias
    y = F.gelu(y) if gelu else y
    return y if add is None else add + y
