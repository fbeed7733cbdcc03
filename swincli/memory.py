"""Peak memory of a run: estimated from the config before it starts, refused when it cannot fit, measured.

A window larger than the map (``--window 1000``: global attention over 56x56 tokens) or a batch of a
million grows the attention matrices, ``batch x heads x windows x (window^2)^2`` numbers per block,
until the kernel kills the process without a word. The estimate counts what the model keeps alive
(:mod:`swincli.models.complexity` knows the layout): weights, gradients and AdamW state when training;
per block the token tensors, the MLP's hidden layer and the attention matrices (all blocks' saved for
backward, or one residual branch's at a time in inference and under ``--grad-checkpointing``;
``--attn-chunk`` bounds the windows attending at once, and in training saves none of them). It is
meant to err high, never by orders of magnitude: the tests hold it against measured peaks.

Available memory: ``MemAvailable`` of ``/proc/meminfo`` (and the cgroup's limit when lower) on CPU,
``torch.cuda.mem_get_info`` on a GPU. ``SWIN_MEMORY_LIMIT`` overrides it (``8G``, ``512M``, bytes),
or switches the check off (``off``).

One quantity is estimated, checked and measured: the memory the work *adds* at its peak, above what was
in use when it began (the loaded weights, with ``weights=False``). :class:`PeakMemory` measures it: on a
GPU the allocator's peak of live tensors less those live at the start; on the CPU the process's peak
resident set less its resident set at the start, so the Python runtime, the libraries and the weights
loaded before are not counted. Caveat on the CPU: glibc keeps freed memory for reuse, and reuse is not
perfect, so the figure can exceed the peak of live tensors (``MALLOC_MMAP_THRESHOLD_=65536`` returns
large tensors to the system when freed and brings it close); it also counts library code and caches
first touched by the work.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from swincli.errors import SwinError
from swincli.models.complexity import count_params
from swincli.models.config import SwinConfig
from swincli.models.sequential_attention import DEFAULT_STAGES

ENV = "SWIN_MEMORY_LIMIT"
MARGIN = 1.25  # allocator slack and the temporaries not modelled (measured peaks: docs/profile.md, "Peak memory")
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
             attn_chunk: int | None = None, chunk_stages: Sequence[int] | None = DEFAULT_STAGES, ema: bool = False,
             weights: bool = True, trainable: int | None = None) -> Estimate:  # fmt: skip
    """The peak of one inference batch or one training step; ``weights=False``: already in memory, not counted.
    ``trainable``: the parameters with gradients and AdamW state (LoRA, a frozen trunk); None: all of them.
    ``attn_chunk``/``chunk_stages``: sequential attention, as ``model.set_attention_chunk`` takes them."""
    params = count_params(config)
    learned = params if trainable is None else trainable
    fixed = (4 * params if weights else 0) + (12 * learned if train else 0) + (4 * params if ema else 0)
    act = 2 if amp else 4  # bytes per activation; attention probabilities stay fp32 under autocast
    h, w = config.image_hw
    image = batch * config.in_chans * h * w * 4
    saved, transient, attention = 0, 0, 0
    for st in config.layout():
        cost = _BlockCost.of(st, batch, act, config.mlp_ratio, attn_chunk, chunk_stages)
        if train:
            saved += st.depth * (cost.inputs if grad_checkpointing else cost.saved)
            transient = max(transient, cost.recomputed if grad_checkpointing else cost.backward)
            attention = max(attention, cost.attention_train)
        else:  # each block keeps its position bias (the inference path caches it); one block's temporaries
            saved += st.depth * cost.bias
            transient = max(transient, cost.inference)
            attention = max(attention, cost.attention_inference)
    activations = int(MARGIN * (image + saved + transient)) + OVERHEAD[train]
    return Estimate(fixed, activations, int(MARGIN * attention))


@dataclass(frozen=True)
class _BlockCost:
    """Bytes of one block of a stage (docs/training.md, "Memory"): what autograd saves of each residual branch,
    what the backward pass adds on top, and the attention matrices alive at once (one chunk's, if chunked)."""

    tokens: int  # one token tensor (B, H, W, C)
    hidden: int  # the MLP's hidden layer (B, H, W, 4C)
    attn_all: int  # logits of every window of the map
    attn_live: int  # logits of the windows attending together
    bias: int  # the position bias (heads, N, N)
    chunked: bool

    @classmethod
    def of(cls, st, batch: int, act: int, mlp_ratio: float, chunk: int | None, stages: Sequence[int] | None) -> "_BlockCost":
        tokens = batch * st.padded[0] * st.padded[1]
        n = st.window[0] * st.window[1]
        chunked = bool(chunk) and (stages is None or st.index in stages) and st.num_windows > chunk
        live = min(st.num_windows, chunk) if chunked else st.num_windows
        one = st.num_heads * n * n * 4  # one window's logits, fp32
        return cls(tokens * st.dim * act, tokens * int(st.dim * mlp_ratio) * act, batch * st.num_windows * one,
                   batch * live * one, one, chunked)  # fmt: skip

    @property
    def attention_branch(self) -> int:
        """Saved by the attention branch (norm, roll, partition, qkv, output, proj, reverse), then its backward:
        the probabilities and two gradients of them, or one chunk's recomputed and the bias and its gradient."""
        matrices = 3 * self.attn_live + 2 * self.bias if self.chunked else 3 * self.attn_all
        return 9 * self.tokens + matrices

    @property
    def mlp_branch(self) -> int:
        return 2 * self.tokens + 4 * self.hidden  # fc1 in and out, GELU out, norm; two gradients of the hidden

    @property
    def saved(self) -> int:
        return 11 * self.tokens + 2 * self.hidden + (2 * self.bias if self.chunked else self.attn_all)

    @property
    def backward(self) -> int:
        return max(2 * self.hidden, (3 * self.attn_live if self.chunked else 2 * self.attn_all))

    @property
    def inputs(self) -> int:
        return 2 * self.tokens  # under checkpointing: each branch's input

    @property
    def recomputed(self) -> int:
        return max(self.attention_branch, self.mlp_branch)

    @property
    def attention_train(self) -> int:
        return 3 * self.attn_live if self.chunked else 3 * self.attn_all

    @property
    def inference(self) -> int:
        return 6 * self.tokens + self.hidden + 3 * self.attn_live

    @property
    def attention_inference(self) -> int:
        return 3 * self.attn_live


def parse_size(text: str) -> int | None:
    """``8GiB``, ``8G``, ``512M``, ``1.5g``, or a number of bytes -> bytes (binary units); None if not a size."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)\s*([kmgt]?)(i?b)?", text.strip().lower())
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def available(device: str) -> tuple[int | None, str]:
    """Bytes this process may still allocate on ``device`` (None: unknown or switched off), and where."""
    limit = os.environ.get(ENV, "").strip().lower()
    if limit in ("off", "0", "none"):
        return None, "limit"
    if limit:
        size = parse_size(limit)
        if size is None:
            raise SwinError(f"{ENV}={limit!r} is not a size", hint="use e.g. 8G, 512M, a number of bytes, or off")
        return size, f"{ENV}"
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0]), "free GPU memory"
    return _ram_available(), "available RAM"


def ensure_fits(est: Estimate, device: str, what: str, flags: str) -> None:
    """Refuse, in one line naming the estimate, what is available and the ``flags`` that reduce it."""
    free, where = available(device)
    if free is None or est.total <= free:
        return
    share = f", attention matrices {gib(est.attention)}" if est.attention > est.total / 4 else ""
    raise SwinError(f"{what} needs about {gib(est.total)} at its peak (estimated{share}), but {gib(free)} is "
                    f"{'allowed by ' + where if where == ENV else where}",
                    hint=f"reduce it with {flags}; {ENV}=off skips this check")  # fmt: skip


class PeakMemory:
    """The peak memory some work adds above what was in use when it began, on ``device`` (module docstring).

    ``begin()`` and ``end()`` bracket the work, as often as needed (the trainer leaves checkpoint writing
    out); ``added`` is the highest use seen inside any bracket less the use at the first ``begin()``, or
    None where it cannot be measured: a CPU without ``/proc`` (macOS, Windows) or one whose peak cannot
    be reset, unless ``sample`` lets a thread read the resident set every 2 ms instead.
    """

    def __init__(self, device: "str | object", sample: bool = False, held: int = 0) -> None:
        """``held``: bytes of the work's own state allocated before the first ``begin()`` (a resumed run's
        AdamW state), counted as added, as they are where the work allocates them itself."""
        self.cuda = str(device).startswith("cuda")
        self.device, self.sample, self.held = device, sample, held
        self.start: int | None = None
        self.peak: int | None = None
        self.active = False
        self._sampler: _RssSampler | None = None
        self._hwm = False  # CPU: the kernel's peak was reset at begin()

    @property
    def how(self) -> str:
        """What the figure is, for every line that prints it."""
        return "CUDA max allocated" if self.cuda else "CPU resident set growth"

    @property
    def added(self) -> int | None:
        return None if self.start is None or self.peak is None else max(0, self.peak - self.start)

    def begin(self) -> None:
        now = self._now()
        if now is None:
            return
        self.start = now - self.held if self.start is None else self.start
        self.active = True
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._hwm = _reset_rss_peak()
            self._sampler = _RssSampler(now).begin() if self.sample and not self._hwm else None

    def end(self) -> None:
        if not self.active:
            return
        self.active = False
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self._sampler is not None:
            peak, self._sampler = self._sampler.end(), None
        else:
            hwm = _status_kib("VmHWM") if self._hwm else None
            peak = hwm * 1024 if hwm is not None else None
        if peak is not None:
            self.peak = peak if self.peak is None else max(self.peak, peak)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Leave what runs inside out of the figure (the trainer's checkpoint writing)."""
        active = self.active
        self.end()
        try:
            yield
        finally:
            if active:
                self.begin()

    def _now(self) -> int | None:
        """Memory in use now (CPU: after handing glibc's freed memory back, so the start is what is live)."""
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            return torch.cuda.memory_allocated(self.device)
        _trim()
        rss = _status_kib("VmRSS")
        return rss * 1024 if rss is not None else None


class _RssSampler:
    """Where the peak cannot be reset: the highest resident set a thread reads every 2 ms."""

    def __init__(self, start: int) -> None:
        self.peak, self._stop = start, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def begin(self) -> "_RssSampler":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, (_status_kib("VmRSS") or 0) * 1024)

    def end(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, (_status_kib("VmRSS") or 0) * 1024)


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (VmRSS: resident now, VmHWM: the peak since the last reset)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_rss_peak() -> bool:
    """Set VmHWM to the current resident set (Linux 4.0+: ``5`` into ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_freed_memory(threshold: int = 65536) -> bool:
    """glibc: serve allocations of ``threshold`` bytes and more by mmap from now on, so a freed tensor goes back
    to the system at once and the resident set follows the live tensors (``MALLOC_MMAP_THRESHOLD_``, at run
    time). Elsewhere nothing to do; returns whether it applied."""
    try:
        return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError, TypeError):
        return False


def _trim() -> None:
    """glibc: hand freed heap memory back to the system (elsewhere nothing to do)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


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


def gib(n: int) -> str:
    """Bytes as people read them: ``1.5 GiB`` or ``300 MiB``."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
