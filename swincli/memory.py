"""Peak memory of a run, estimated from the config before it starts, and refused when it cannot fit.

A window larger than the map (``--window 1000``: global attention over 56x56 tokens) or a batch of a
million grows the attention matrices, ``batch x heads x windows x (window^2)^2`` numbers per block,
until the kernel kills the process without a word. The estimate counts what the model keeps alive
(:mod:`swincli.models.complexity` knows the layout): weights, gradients and AdamW state when training;
per block the token tensors, the MLP's hidden layer and the attention matrices (all blocks' saved for
backward, or one block's at a time in inference and under ``--grad-checkpointing``; ``--attn-chunk``
bounds the windows attending at once). It is meant to err high, never by orders of magnitude: the
tests hold it against measured peaks.

Available memory: ``MemAvailable`` of ``/proc/meminfo`` (and the cgroup's limit when lower) on CPU,
``torch.cuda.mem_get_info`` on a GPU. ``SWIN_MEMORY_LIMIT`` overrides it (``8G``, ``512M``, bytes),
or switches the check off (``off``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from swincli.errors import SwinError
from swincli.models.complexity import count_params
from swincli.models.config import SwinConfig

ENV = "SWIN_MEMORY_LIMIT"
MARGIN = 1.25  # allocator slack and the temporaries not modelled; measured peaks sit at 0.4-0.95 of the estimate
OVERHEAD = {False: 64 * 2**20, True: 256 * 2**20}  # by ``train``: workspaces, autograd's buffers, allocator arenas
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


@dataclass(frozen=True)
class Estimate:
    """Bytes a run needs at its peak: ``fixed`` (weights, optimizer state) plus ``activations``."""

    fixed: int
    activations: int
    attention: int  # the attention matrices' share of ``activations``

    @property
    def total(self) -> int:
        return self.fixed + self.activations


def estimate(config: SwinConfig, batch: int, *, train: bool, amp: bool = False, grad_checkpointing: bool = False,
             attn_chunk: int | None = None, ema: bool = False, weights: bool = True,
             trainable: int | None = None) -> Estimate:  # fmt: skip
    """The peak of one inference batch or one training step; ``weights=False``: already in memory, not counted.
    ``trainable``: the parameters with gradients and AdamW state (LoRA, a frozen trunk); None: all of them."""
    params = count_params(config)
    learned = params if trainable is None else trainable
    fixed = (4 * params if weights else 0) + (12 * learned if train else 0) + (4 * params if ema else 0)
    act = 2 if amp else 4  # bytes per activation; attention probabilities stay fp32 under autocast
    h, w = config.image_hw
    image = batch * config.in_chans * h * w * 4
    saved, transient, attention = 0, 0, 0
    for st in config.layout():
        tokens = batch * st.padded[0] * st.padded[1]
        n = st.window[0] * st.window[1]
        hidden = int(st.dim * config.mlp_ratio)
        chunk = st.num_windows if not attn_chunk else min(st.num_windows, attn_chunk)
        attn_all = batch * st.num_windows * st.num_heads * n * n * 4  # one block's logits, for every window
        attn_live = batch * chunk * st.num_heads * n * n * 4
        mask = st.num_windows * st.num_heads * n * n * 4  # position bias + shift mask, per block
        if train:  # saved for backward: norms, qkv, partitions, proj, residuals, the MLP; softmax in and out
            per_block = tokens * (12 * st.dim + 2 * hidden) * act + 2 * attn_all + mask
            saved += st.depth * (2 * tokens * st.dim * act if grad_checkpointing else per_block)
            transient = max(transient, (3 if grad_checkpointing else 2) * per_block)  # recompute, gradients
            attention = max(attention, 2 * attn_all)
        else:  # nothing is kept but each block's folded mask; the largest block's temporaries at once
            saved += st.depth * mask
            transient = max(transient, tokens * (6 * st.dim + hidden) * act + 4 * attn_live)
            attention = max(attention, 4 * attn_live)
    activations = int(MARGIN * (image + saved + transient)) + OVERHEAD[train]
    return Estimate(fixed, activations, int(MARGIN * attention))


def available(device: str) -> tuple[int | None, str]:
    """Bytes this process may still allocate on ``device`` (None: unknown or switched off), and where."""
    limit = os.environ.get(ENV, "").strip().lower()
    if limit in ("off", "0", "none"):
        return None, "limit"
    if limit:
        match = re.fullmatch(r"([0-9.]+)\s*([kmgt]?)(i?b)?", limit)
        if not match:
            raise SwinError(f"{ENV}={limit!r} is not a size", hint="use e.g. 8G, 512M, a number of bytes, or off")
        return int(float(match.group(1)) * _UNITS[match.group(2)]), f"{ENV}"
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0]), "free GPU memory"
    return _ram_available(), "available RAM"


def ensure_fits(est: Estimate, device: str, what: str, flags: str) -> None:
    """Refuse, in one line naming the estimate, what is available and the ``flags`` that reduce it."""
    free, where = available(device)
    if free is None or est.total <= free:
        return
    share = f", attention matrices {_gib(est.attention)}" if est.attention > est.total / 4 else ""
    raise SwinError(f"{what} needs about {_gib(est.total)} at its peak (estimated{share}), but {_gib(free)} is "
                    f"{'allowed by ' + where if where == ENV else where}",
                    hint=f"reduce it with {flags}; {ENV}=off skips this check")  # fmt: skip


def _ram_available() -> int | None:
    values = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    values.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:  # a container's own limit (cgroup v2) may be far below the machine's
        with open("/sys/fs/cgroup/memory.max") as fh:
            cap = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current") as fh:
            used = int(fh.read().strip())
        if cap != "max":
            values.append(int(cap) - used)
    except (OSError, ValueError):
        pass
    return min(values) if values else None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
