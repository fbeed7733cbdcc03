"""Fused linear layers for CPU inference through oneDNN, the library PyTorch's CPU GEMMs already use.

``F.linear`` followed by GELU or a residual add walks the output three times: the bias is copied in
before the GEMM, then the activation and the add each read and write it again. oneDNN applies bias,
GELU (erf, as ``nn.GELU``) or the residual add inside the GEMM's write-back. In fp32 the GEMM is the
kernel ``F.linear`` uses (equal to the last bit in our checks). Under CPU autocast the weights are cast to
bfloat16 once and kept (keyed on the parameter's version), where autocast casts them on every call.

Only without autograd (these ops have no backward), on CPU, outside compilation, tracing and export,
and only where this PyTorch build has the ops; everything else takes ``F.linear``.
"""

from __future__ import annotations

import functools
import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import Tensor

_OPS = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
_state = {"enabled": _OPS is not None}
_casts: dict[int, tuple] = {}  # id(parameter) -> (weak reference, version key, cast copy)


def graph_capture() -> bool:
    """Inside torch.compile, export or TorchScript, where only standard ops may appear in the graph."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return torch.compiler.is_compiling() or exporting() or torch.jit.is_tracing() or torch.jit.is_scripting()


def _compute_dtype(x: Tensor) -> torch.dtype | None:
    """The dtype the fused op would run in, or None when this input must take the plain path."""
    if not _state["enabled"] or x.device.type != "cpu" or torch.is_grad_enabled() or graph_capture():
        return None
    dtype = x.dtype
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
    if dtype == torch.float32:
        return dtype
    if dtype == torch.bfloat16 and _bf16_supported():
        return dtype
    return None


@functools.cache
def _bf16_supported() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _as(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """``t`` in ``dtype``; parameters are cast once and the cast reused until they change."""
    if t is None or t.dtype == dtype:
        return t
    if not isinstance(t, torch.nn.Parameter):
        return t.to(dtype)
    key = (t._version, t.data_ptr(), dtype)
    hit = _casts.get(id(t))
    if hit is None or hit[0]() is not t or hit[1] != key:
        ref = weakref.ref(t, lambda _, i=id(t): _casts.pop(i, None))  # forget the copy with the parameter
        hit = (ref, key, t.detach().to(dtype))
        _casts[id(t)] = hit
    return hit[2]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool = False, residual: Tensor | None = None) -> Tensor:
    """``residual + gelu?(x @ weight.T + bias)``, fused where possible, else the plain ops."""
    dtype = _compute_dtype(x)
    if dtype is not None:
        try:
            return _fused(x.to(dtype), _as(weight, dtype), _as(bias, dtype), gelu, residual)
        except RuntimeError as err:  # an op this build rejects: say so once, then keep to the plain ops
            _state["enabled"] = False
            warnings.warn(f"oneDNN fused linear failed, using F.linear from now on: {err}", RuntimeWarning, stacklevel=2)
    y = F.linear(x, weight, bias)
    if gelu:
        y = F.gelu(y)
    return y if residual is None else residual + y


def _fused(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool, residual: Tensor | None) -> Tensor:
    if residual is not None and residual.dtype == x.dtype and not gelu:
        return _OPS.binary(x, residual.expand(*x.shape[:-1], weight.shape[0]), weight, bias, "add")
    y = _OPS(x, weight, bias, "gelu", [], "none") if gelu else _OPS(x, weight, bias, "none", [], "")
    return y if residual is None else residual + y


def set_enabled(enabled: bool) -> None:
    """Switch the fused path off (e.g. to compare against the plain ops); on again only where available."""
    _state["enabled"] = bool(enabled) and _OPS is not None


def enabled() -> bool:
    return _state["enabled"]
