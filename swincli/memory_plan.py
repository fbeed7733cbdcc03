"""``--memory-budget``: the cheapest combination of the V2 paper's memory tricks whose estimated peak fits.

The tricks, from cheapest in time to dearest: none; sequential attention in the first two stages, then
in every stage (one more attention forward per step); activation checkpointing (one more forward of
every block); both. Sequential attention takes the largest chunk that fits, because fewer, larger
chunks run faster. The estimate is :func:`swincli.memory.estimate`, the same accounting that refuses a
run that cannot fit before its first step, so a plan that fits here is not refused there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from swincli.memory import Estimate, estimate, gib
from swincli.models.config import SwinConfig
from swincli.models.sequential_attention import DEFAULT_STAGES, format_stages


@dataclass(frozen=True)
class MemoryPlan:
    grad_checkpointing: bool
    attn_chunk: int | None
    chunk_stages: tuple[int, ...] | None  # 0-based; None: every stage
    estimate: Estimate

    @property
    def name(self) -> str:
        parts = (["activation checkpointing"] if self.grad_checkpointing else []) + (
            ["sequential attention"] if self.attn_chunk else [])  # fmt: skip
        return " + ".join(parts) or "no memory trick"

    @property
    def flags(self) -> str:
        """The command-line flags that give this plan."""
        out = ["--grad-checkpointing"] if self.grad_checkpointing else []
        if self.attn_chunk:
            out.append(f"--attn-chunk {self.attn_chunk}")
            if self.chunk_stages != DEFAULT_STAGES:
                out.append(f"--attn-chunk-stages {format_stages(self.chunk_stages)}")
        return " ".join(out) or "(none)"


def most_windows(config: SwinConfig, stages: tuple[int, ...] | None) -> int:
    """The most windows any of ``stages`` (0-based; None: all) has: what sizes a chunk."""
    return max((st.num_windows for st in config.layout() if stages is None or st.index in stages), default=1)


def chunk_sizes(config: SwinConfig, stages: tuple[int, ...] | None) -> list[int]:
    """Chunks worth trying, largest first: halving the most windows any chosen stage has, down to 1."""
    sizes, n = [], most_windows(config, stages) // 2
    while n >= 1:
        sizes.append(n)
        n //= 2
    return sizes


def candidates(config: SwinConfig, grad_checkpointing: bool | None, attn_chunk: int | None,
               stages: tuple[int, ...] | None | str) -> Iterator[tuple[bool, int | None, tuple[int, ...] | None]]:  # fmt: skip
    """(checkpointing, chunk, stages), cheapest first. ``grad_checkpointing``/``attn_chunk`` given (not None):
    kept as the user set them; ``stages="default"``: the first two stages, then every stage."""
    stage_sets = [DEFAULT_STAGES, None] if stages == "default" else [stages]
    for ckpt in ([False, True] if grad_checkpointing is None else [grad_checkpointing]):
        if attn_chunk is None:
            yield ckpt, None, None
        for chosen in stage_sets:
            for chunk in ([attn_chunk] if attn_chunk else chunk_sizes(config, chosen)):
                yield ckpt, chunk, chosen


def choose(config: SwinConfig, batch: int, budget: int, *, grad_checkpointing: bool | None = None,
           attn_chunk: int | None = None, stages: tuple[int, ...] | None | str = "default",
           **estimate_kw: Any) -> tuple[MemoryPlan | None, MemoryPlan]:  # fmt: skip
    """The first plan whose estimated total (weights included) fits ``budget`` bytes, or None; and the plan that
    needs least, for the message when nothing fits. ``estimate_kw``: amp, ema, trainable as the run has them."""
    smallest = None
    for ckpt, chunk, chosen in candidates(config, grad_checkpointing, attn_chunk, stages):
        need = estimate(config, batch, train=True, grad_checkpointing=ckpt, attn_chunk=chunk, chunk_stages=chosen,
                        weights=True, **estimate_kw)  # fmt: skip
        plan = MemoryPlan(ckpt, chunk, chosen, need)
        if need.total <= budget:
            return plan, plan
        if smallest is None or need.total < smallest.estimate.total:
            smallest = plan
    return None, smallest


def describe(plan: MemoryPlan, budget: int) -> str:
    """The note a run prints: what was picked, with the flags that pick it by hand, and its estimate."""
    head = f"--memory-budget {gib(budget)}: "
    peak = f"an estimated {gib(plan.estimate.total)} at the peak of a step"
    if not plan.grad_checkpointing and not plan.attn_chunk:
        return head + f"no memory trick needed, {peak}"
    return head + f"{plan.name} ({plan.flags}), {peak}"
