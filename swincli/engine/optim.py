"""AdamW with the official parameter groups, layer-wise lr decay, and the per-step cosine schedule.

No weight decay for norms, biases and other 1-D parameters, position tables, the V2 CPB MLP and logit
scales (the official ``no_weight_decay`` keywords). With layer decay (SimMIM fine-tuning), layer l of
L gets lr x decay^(L + 1 - l): the patch embedding learns least, the head most.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

_BLOCK = re.compile(r"^layers\.(\d+)\.(blocks\.(\d+)|downsample)\.")


def layer_id(name: str, depths: tuple[int, ...]) -> int:
    """0 for the stem, 1..L for blocks in order (patch merging with its stage's last block), L+1 after."""
    if name.startswith(("patch_embed.", "absolute_pos_embed")):
        return 0
    m = _BLOCK.match(name)
    if not m:
        return sum(depths) + 1  # final norm and head
    stage = int(m.group(1))
    before = sum(depths[:stage])
    return before + (int(m.group(3)) + 1 if m.group(3) is not None else depths[stage])


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float | None = None) -> list[dict]:
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    depths = tuple(model.config.depths)
    total = sum(depths) + 1
    groups: dict[tuple[float, float], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = 0.0 if p.ndim <= 1 or name.endswith(".bias") or name in skip else weight_decay
        scale = layer_decay ** (total - layer_id(name, depths)) if layer_decay else 1.0
        group = groups.setdefault((decay, scale), {"params": [], "names": [], "weight_decay": decay, "lr_scale": scale})
        group["params"].append(p)
        group["names"].append(name)
    return list(groups.values())


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, layer_decay: float | None = None, zero: bool = False
) -> torch.optim.Optimizer:
    """AdamW over the official groups; ``zero`` shards its state across ranks (ZeRO-1, under torchrun).

    Both keep ``lr_scale`` in every group, which :func:`set_lr` multiplies in at each step.
    """
    groups = param_groups(model, weight_decay, layer_decay)
    for g in groups:
        g.pop("names")
    if not zero:
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    from torch.distributed.optim import ZeroRedundancyOptimizer

    # ZeroRedundancyOptimizer takes one group's parameters up front; the other groups are added after
    first, rest = groups[0], groups[1:]
    optimizer = ZeroRedundancyOptimizer(first["params"], optimizer_class=torch.optim.AdamW, lr=lr,
                                        weight_decay=first["weight_decay"], betas=(0.9, 0.999), eps=1e-8)  # fmt: skip
    optimizer.param_groups[0]["lr_scale"] = first["lr_scale"]
    for g in rest:
        optimizer.add_param_group(g)
    return optimizer


def lr_at(step: int, total: int, warmup: int, lr: float, min_lr: float, warmup_lr: float) -> float:
    """Linear warm-up from warmup_lr to lr over ``warmup`` steps, then cosine down to min_lr."""
    if step < warmup:
        return warmup_lr + (lr - warmup_lr) * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def set_lr(optimizer: torch.optim.Optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value * group.get("lr_scale", 1.0)


def freeze_all_but_head(model: nn.Module) -> int:
    """Linear probing: only the classifier learns. Returns the number of trainable parameters."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("head."))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
