"""Sequential self-attention (SwinV2 paper, section 3.4): attend a few windows at a time.

At 1024 px and window 32 one stage-1 block holds 64 windows x 3 heads x 1024^2 attention logits,
805 MB in fp32, and as much again for the probabilities and for the gradient. Window attention never
looks outside its window, so the windows can take turns: only one chunk's logits, probabilities and
shift masks are alive at a time. In training that alone would not help, because autograd keeps every
chunk's probabilities for the backward pass; so the chunks run as one autograd function that saves
only its inputs (the qkv projection and the per-head bias) and recomputes each chunk in the backward
pass, one at a time. The recompute costs one more attention forward.

Being an autograd function, its saved inputs go through saved-tensor hooks like any other, so under
``--grad-checkpointing`` (which discards what the first forward saves) nothing of it stays alive.

Results equal attending all windows at once: each window's arithmetic is the same. Dropout on the
attention probabilities draws per chunk, so with ``attn_drop > 0`` its random masks differ from the
unchunked ones; the recompute replays the forward's draws exactly (the RNG state is restored).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from swincli.errors import SwinUsageError
from swincli.models.shift_mask import WindowMasks

# ``attn`` below is a WindowAttention (which imports this module: typed as nn.Module to keep one direction)

DEFAULT_STAGES = (0, 1)  # the paper applies it to the first two stages, where the maps are large
STAGES_HINT = "e.g. --attn-chunk-stages 1,2 (the paper's choice) or all"


def parse_stages(text: str | None, num_stages: int | None) -> tuple[int, ...] | None:
    """``--attn-chunk-stages``: ``"1,2"`` (1-based, as ``swin profile`` numbers stages) -> 0-based ``(0, 1)``;
    ``"all"`` -> None (every stage); None -> :data:`DEFAULT_STAGES`. ``num_stages=None``: the form only.
    A bad value is the user's: one usage error, said the same way by train, finetune and profile."""
    if text is None:
        return tuple(s for s in DEFAULT_STAGES if num_stages is None or s < num_stages)
    if text.strip().lower() == "all":
        return None
    try:
        stages = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SwinUsageError(f"--attn-chunk-stages takes stage numbers like 1,2 or all, got {text!r}",
                             hint=STAGES_HINT) from None
    if not stages or stages[0] < 1 or (num_stages is not None and stages[-1] > num_stages):
        among = f"among 1..{num_stages}" if num_stages is not None else "numbered from 1"
        raise SwinUsageError(f"--attn-chunk-stages must name stages {among}, got {text!r}", hint=STAGES_HINT)
    return tuple(s - 1 for s in stages)


def format_stages(stages: tuple[int, ...] | None) -> str:
    """The inverse of :func:`parse_stages`: 0-based ``(0, 1)`` -> ``"1,2"``; None -> ``"all"``."""
    return "all" if stages is None else ",".join(str(s + 1) for s in stages)


def attend_in_chunks(attn: nn.Module, qkv: Tensor, bias: Tensor | None, masks: WindowMasks | None,
                     first: int = 0) -> Tensor:  # fmt: skip
    """``attn.attend`` over ``qkv`` ``(B, k, N, 3, heads, d)`` (windows ``first..`` of the map), ``attn.chunk``
    windows at a time -> ``(B, k, N, C)``."""
    grads = torch.is_grad_enabled() and (qkv.requires_grad or (bias is not None and bias.requires_grad))
    if grads:
        return _Sequential.apply(qkv, bias, attn, masks, first, *_read_inside(attn))
    return _forward(attn, qkv, bias, masks, first)


def _forward(attn: nn.Module, qkv: Tensor, bias: Tensor | None, masks: WindowMasks | None, first: int) -> Tensor:
    out = qkv.new_empty(qkv.shape[0], qkv.shape[1], qkv.shape[2], attn.dim)
    for i in range(0, qkv.shape[1], attn.chunk):  # written into place: no list of parts next to the result
        out[:, i : i + attn.chunk] = _chunk(attn, qkv[:, i : i + attn.chunk], bias, masks, first + i)
    return out


def _chunk(attn: nn.Module, qkv: Tensor, bias: Tensor | None, masks: WindowMasks | None, start: int) -> Tensor:
    """One chunk: its windows' shift masks are gathered here, so they are never saved, only recomputed."""
    return attn.attend_windows(qkv, bias, None if masks is None else masks.windows(start, start + qkv.shape[1]))


class _Sequential(torch.autograd.Function):
    """The chunks as one autograd node that saves only ``qkv`` and ``bias`` (module docstring)."""

    @staticmethod
    def forward(ctx, qkv, bias, attn, masks, first, *params):  # runs without autograd
        ctx.attn, ctx.masks, ctx.first, ctx.step = attn, masks, first, attn.chunk  # the forward's chunks, kept
        ctx.autocast = _autocast_state(qkv.device.type)
        ctx.rng = _rng_state(qkv.device) if _draws(attn) else None
        ctx.save_for_backward(qkv, bias)
        return _forward(attn, qkv, bias, masks, first)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        qkv, bias = ctx.saved_tensors
        attn, step = ctx.attn, ctx.step
        want_qkv, want_bias = ctx.needs_input_grad[0], bias is not None and ctx.needs_input_grad[1]
        grad_qkv = torch.zeros_like(qkv) if want_qkv else None
        grad_bias = torch.zeros_like(bias) if want_bias else None
        params = [p for p, want in zip(_read_inside(attn), ctx.needs_input_grad[5:]) if want]
        grad_params = [torch.zeros_like(p) for p in params]
        enabled, dtype = ctx.autocast
        with torch.random.fork_rng(devices=_rng_devices(qkv.device), enabled=ctx.rng is not None), torch.enable_grad(), \
                torch.autocast(qkv.device.type, dtype=dtype, enabled=enabled):  # fmt: skip
            if ctx.rng is not None:
                _set_rng_state(qkv.device, ctx.rng)
            b = None if bias is None else bias.detach().requires_grad_(want_bias)
            for i in range(0, qkv.shape[1], step):  # in the forward's order, so dropout replays its draws
                part = qkv[:, i : i + step].detach().requires_grad_(want_qkv)
                got, grad_v = _chunk_backward(attn, part, b, ctx.masks, ctx.first + i, grad_out[:, i : i + step], params)
                if want_qkv:
                    grad_qkv[:, i : i + step] = got[0]
                    grad_qkv[:, i : i + step, :, 2] += grad_v
                if want_bias:
                    grad_bias += got[int(want_qkv)]
                for acc, g in zip(grad_params, got[int(want_qkv) + int(want_bias) :]):
                    acc += g
        wanted = iter(grad_params)
        rest = [next(wanted) if want else None for want in ctx.needs_input_grad[5:]]
        return grad_qkv, grad_bias, None, None, None, *rest


def _chunk_backward(attn: nn.Module, part: Tensor, bias: Tensor | None, masks: WindowMasks | None,
                    start: int, grad_out: Tensor, params: list[Tensor]) -> tuple[tuple[Tensor, ...], Tensor]:  # fmt: skip
    """Gradients of one chunk from its recomputed probabilities P. ``dv = P^T dO`` and ``dP = dO v^T`` are written
    out, so the recompute stops at P (``P v`` is not needed again); where the attention dropout is idle the
    softmax backward is too, in place in ``dP`` (two chunk-sized matrices alive, not three), else autograd
    takes ``dP`` back through the dropout. Returns the gradients of the leaves that want one (part, bias,
    ``params``, in that order) and the gradient of v, token-major ``(B, k, N, heads, d)``."""
    shifted = None if masks is None else masks.windows(start, start + part.shape[1])
    q, k, v, scale = attn.split_heads(part)
    b, nw, n = grad_out.shape[:3]
    g = grad_out.view(b, nw, n, attn.num_heads, attn.head_dim).transpose(2, 3)  # (B, k, heads, N, d)
    leaves = [t for t in (part, bias) if t is not None and t.requires_grad] + params
    if not _idle_dropout(attn):
        probs = attn.probabilities(q, k, scale, bias, shifted)
        g = g.to(probs.dtype)
        grad_v = (probs.detach().transpose(-2, -1) @ g).transpose(2, 3)
        grad_probs = g @ v.detach().transpose(-2, -1).to(g.dtype)
        got = torch.autograd.grad(probs, leaves, grad_probs.to(probs.dtype), allow_unused=True)
        return tuple(torch.zeros_like(t) if d is None else d for t, d in zip(leaves, got)), grad_v
    with torch.no_grad():
        qs, kd = q.detach() * scale, k.detach()
        probs = attn.probabilities(qs, kd, 1.0, None if bias is None else bias.detach(), shifted)
        g = g.to(probs.dtype)
        grad_v = (probs.transpose(-2, -1) @ g).transpose(2, 3)
        grad_logits = g @ v.detach().transpose(-2, -1).to(g.dtype)  # dP, turned into dS in place:
        row = (grad_logits.unsqueeze(-2) @ probs.unsqueeze(-1)).squeeze(-1)  # sum_j dP_ij P_ij, (..., N, 1)
        grad_logits.sub_(row).mul_(probs)  # dS = P * (dP - row)
        del probs
        grad_q, grad_k = (grad_logits @ kd) * scale, grad_logits.transpose(-2, -1) @ qs
        grad_bias = grad_logits.sum(dim=(0, 1)) if bias is not None and bias.requires_grad else None
    del grad_logits
    tensor_leaves = [t for t in leaves if t is not bias]
    got = iter(torch.autograd.grad((q, k), tensor_leaves, (grad_q.to(q.dtype), grad_k.to(k.dtype)), allow_unused=True)
               if tensor_leaves else ())  # fmt: skip
    out = [grad_bias if t is bias else next(got) for t in leaves]
    return tuple(torch.zeros_like(t) if d is None else d for t, d in zip(leaves, out)), grad_v


def _idle_dropout(attn: nn.Module) -> bool:
    """The attention dropout is the identity and nobody watches it: its backward may be skipped."""
    from swincli.models.observed import global_hooks, hooked

    drop = attn.attn_drop
    return type(drop) is torch.nn.Dropout and (drop.p == 0.0 or not drop.training) and not hooked(drop) and not global_hooks()


def _read_inside(attn: nn.Module) -> list[Tensor]:
    """Parameters the attention step reads itself (V2's temperature): inputs of the node, so they get gradients."""
    return [attn.logit_scale] if attn.version == 2 else []


def _draws(attn: nn.Module) -> bool:
    """Whether the attention dropout draws random numbers (then the recompute must replay them)."""
    drop = attn.attn_drop
    return drop.training and getattr(drop, "p", 1.0) > 0.0


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)


def _rng_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


def _rng_state(device: torch.device) -> tuple:
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _set_rng_state(device: torch.device, state: tuple) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)
