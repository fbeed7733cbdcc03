"""The CPU inference fast path, as an explicit substitution: ``optimize_for_inference(model)``.

It swaps in place (same objects, parameters, state-dict keys and hooks) two subclasses that compute
what the modules they replace compute:

- every plain ``nn.Linear`` (exactly that type, no forward hooks) becomes a
  :class:`~swincli.models.fused_linear.FusedLinear`: oneDNN GEMMs with the bias (and, inside a
  blocked block, GELU) fused, and bf16 weights kept on the module under CPU autocast;
- every plain :class:`~swincli.models.block.SwinBlock` becomes a
  :class:`~swincli.models.blocked_block.BlockedSwinBlock`: the block runs a few windows at a time.

Both check at every call that the fast path cannot be observed (CPU, no autograd, eval, no graph
capture, no hooks or wrappers on the block's modules) and otherwise run exactly as the modules they
replace. ``swin predict``, ``swin eval`` and ``swin profile`` call this after loading; training never
does. ``restore(model)`` swaps back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from swincli.models.block import SwinBlock
from swincli.models.blocked_block import DEFAULT_BLOCK_TOKENS, BlockedSwinBlock
from swincli.models.fused_linear import FusedLinear, available
from swincli.models.observed import hooked


@dataclass
class InferencePlan:
    """What :func:`optimize_for_inference` swapped, and what it left as it was (with the reason)."""

    fused_linears: int = 0
    blocked_blocks: int = 0
    block_tokens: int = DEFAULT_BLOCK_TOKENS
    kept: list[str] = field(default_factory=list)  # "name: reason"


def optimize_for_inference(model: nn.Module, block_tokens: int = DEFAULT_BLOCK_TOKENS, fused_linear: bool = True) -> InferencePlan:
    """Swap plain linears and Swin blocks of ``model`` for their CPU-inference twins (module docstring).

    ``block_tokens``: tokens per chunk of a blocked block (0: no blocking); ``fused_linear=False`` keeps
    ``nn.Linear``. Safe to call twice; a module that is hooked or of another type is kept and listed.
    """
    plan = InferencePlan(block_tokens=block_tokens)
    for name, module in model.named_modules():
        if type(module) is nn.Linear:
            if not fused_linear or not available():
                continue
            if hooked(module):
                plan.kept.append(f"{name}: has forward hooks")
                continue
            FusedLinear.swap(module)
        elif isinstance(module, SwinBlock) and block_tokens > 0:
            if type(module) not in (SwinBlock, BlockedSwinBlock):
                plan.kept.append(f"{name}: {type(module).__name__} is not a plain SwinBlock")
                continue
            BlockedSwinBlock.swap(module, block_tokens)
    plan.fused_linears = sum(1 for m in model.modules() if type(m) is FusedLinear)
    plan.blocked_blocks = sum(1 for m in model.modules() if type(m) is BlockedSwinBlock)
    return plan


def restore(model: nn.Module) -> nn.Module:
    """Undo :func:`optimize_for_inference`: plain ``nn.Linear`` and ``SwinBlock`` again."""
    for module in model.modules():
        if type(module) in (FusedLinear, BlockedSwinBlock):
            module.unswap()
    return model


def status() -> dict[str, object]:
    """What ``swin env`` reports about the fast path on this machine."""
    return {
        "fused_linear": available(),
        "applies": "CPU inference (eval, no autograd, no graph capture) of plain, unhooked modules, "
        "after optimize_for_inference(); swin predict, eval and profile apply it",
        "block_tokens": DEFAULT_BLOCK_TOKENS,
    }
