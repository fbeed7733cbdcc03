"""``BlockedSwinBlock``: a Swin block for CPU inference that runs a few windows at a time (cache blocking).

Everything in a block but attention works token by token, and attention never leaves its window. So a
whole block, both residual branches included, can run over a chunk of windows: gather the chunk's
tokens (the cyclic shift and the window partition are one precomputed index), attend, run the MLP, and
write the result back to its places in the map. Each chunk's intermediates stay in the CPU cache, and
the 4C-wide MLP activations are never allocated for the whole map; on a CPU, those passes over memory
and the page faults of fresh large allocations are most of what the GEMMs don't already take.

It computes the operators of :class:`SwinBlock` in the same order (the same ``residual`` formula, the
attention's own ``project``/``attend`` steps), so results agree to float rounding. It also keeps the
attention's position bias between calls, where the plain model recomputes it (V2: runs the CPB MLP) on
every forward; that skipped call is as unobservable as the rest. The bias is kept per head and the shift
mask per window pattern, so no mask exists for the whole map. It does so only where nobody can tell
the difference: CPU, no autograd, eval mode, no graph capture, and every module
of the block of exactly the type the block was built with and without hooks (module or global). A
hooked, wrapped (peft LoRA), parametrized or quantised submodule makes the block run as
:class:`SwinBlock`, where every submodule is called through its own ``__call__``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from swincli.models.attention import WindowAttention
from swincli.models.block import DropPath, Mlp, SwinBlock
from swincli.models.config import Pair
from swincli.models.derived import version_key
from swincli.models.fused_linear import FusedLinear, graph_capture, linear
from swincli.models.observed import global_hooks, hooked
from swincli.models.shift_mask import WindowMasks
from swincli.models.window import WindowGeometry, pad_to_windows, window_partition

# Tokens (summed over the batch) per chunk. 4096 tokens of 96..768 channels keep a chunk's activations
# within a few MB (L2/L3) while the GEMMs stay large enough to run at full speed.
DEFAULT_BLOCK_TOKENS = 4096

PLAIN_TYPES = (nn.LayerNorm, WindowAttention, nn.Linear, FusedLinear, nn.Dropout, nn.GELU, DropPath, Mlp, nn.Sequential,
               nn.ReLU, nn.Identity)  # fmt: skip


def plain_children(block: nn.Module) -> bool:
    """Every module below ``block`` is one of the types a Swin block is built from, unhooked, in eval mode,
    and GELU is the exact one: then skipping their ``__call__`` (and the dropouts) changes nothing."""
    for m in block.modules():
        if m is not block and (type(m) not in PLAIN_TYPES or hooked(m) or m.training):
            return False
        if type(m) is nn.GELU and m.approximate != "none":
            return False
    return True


def window_order(size: Pair, window: Pair, shift: Pair, device: torch.device) -> Tensor:
    """Flat map position of every token in window order after the cyclic shift: roll + partition as one index."""
    hp, wp = size
    pos = torch.arange(hp * wp, device=device).view(1, hp, wp, 1)
    if shift[0] or shift[1]:
        pos = torch.roll(pos, (-shift[0], -shift[1]), dims=(1, 2))
    return window_partition(pos, window).reshape(-1)


class BlockedSwinBlock(SwinBlock):
    """:class:`SwinBlock` computed chunk by chunk of windows where that cannot be observed (module docstring)."""

    block_tokens = DEFAULT_BLOCK_TOKENS

    def forward(self, x: Tensor) -> Tensor:
        if not self.applies(x):
            return super().forward(x)
        b, h, w, c = x.shape
        geo = self.geometry(h, w)
        normed = None
        if any(geo.pad):  # pad first, then shift: the official order (as in SwinBlock.attend)
            if self.version == 1:  # V1 pads the *normalised* map: padded tokens enter attention as zeros
                normed = pad_to_windows(self.norm1(x), geo).reshape(b, -1, c)
            x = pad_to_windows(x, geo)
        flat = x.reshape(b, -1, c)
        out = torch.empty_like(flat)
        bias, masks = self._bias(_logit_dtype(x), x.device), self.shift_mask(geo, x.device)
        for idx, first in self._chunks(geo, b, x.device):
            windows = flat.index_select(1, idx).view(b, -1, self.window[0] * self.window[1], c)
            pre = None if normed is None else normed.index_select(1, idx).view_as(windows)
            y = self._tokens(windows, bias, masks, first, pre)
            out.index_copy_(1, idx, y.reshape(b, -1, c).to(out.dtype))
        out = out.view(b, *geo.size, c)
        return out[:, :h, :w].contiguous() if any(geo.pad) else out

    def applies(self, x: Tensor) -> bool:
        return (
            not graph_capture()
            and x.device.type == "cpu"
            and not torch.is_grad_enabled()
            and not self.training
            and self.block_tokens > 0
            and not global_hooks()
            and plain_children(self)
        )

    def _chunks(self, geo: WindowGeometry, batch: int, device: torch.device):
        """(token index, first window) of each chunk of whole windows: about ``block_tokens`` tokens over the batch."""
        key = (geo.size, self.window, geo.shift, device)
        order = self._derived.get("order", key, lambda: window_order(geo.size, self.window, geo.shift, device))
        n = self.window[0] * self.window[1]
        per = max(1, self.block_tokens // (batch * n))
        if self.attn.chunk:
            per = min(per, self.attn.chunk)
        for w0 in range(0, order.numel() // n, per):
            yield order[w0 * n : (w0 + per) * n], w0

    def _bias(self, dtype: torch.dtype, device: torch.device) -> Tensor | None:
        """The attention's position bias ``(heads, N, N)``, kept between calls (the plain model recomputes it;
        V2 runs its CPB MLP). Keyed on the version counters of the parameters and buffers it derives from, so
        an in-place weight update, ``.to()`` or a resize is never served a stale bias."""
        attn = self.attn
        key = (attn.window, attn.pretrained_window, dtype, device, version_key(attn.mask_sources()))
        return self._derived.get("bias", key, lambda: _as(attn.bias(), dtype))

    def _tokens(self, x: Tensor, bias: Tensor | None, masks: WindowMasks | None, first: int, normed: Tensor | None) -> Tensor:
        """Both residual branches for windows ``x`` ``(B, k, N, C)``, windows ``first..`` of the map (``normed``:
        V1's padded norm1(x), if given)."""
        attn, mlp = self.attn, self.mlp

        def attention(t: Tensor, add: Tensor | None = None) -> Tensor:  # WindowAttention.forward (dropouts are off)
            qkv = linear(attn.qkv, t, extra_bias=attn.qkv_bias()).unflatten(-1, (3, attn.num_heads, attn.head_dim))
            return linear(attn.proj, attn.attend(qkv, bias, masks, first), add=add)

        def feed_forward(t: Tensor, add: Tensor | None = None) -> Tensor:  # Mlp.forward, GELU fused into fc1
            return linear(mlp.fc2, linear(mlp.fc1, t, gelu=True), add=add)

        fuse = self.version == 1  # pre-norm: the residual add rides in the last GEMM's write-back
        x = self.residual(x, attention, self.norm1 if normed is None else (lambda _: normed), fuse_add=fuse)
        return self.residual(x, feed_forward, self.norm2, fuse_add=fuse)

    @classmethod
    def swap(cls, block: SwinBlock, block_tokens: int = DEFAULT_BLOCK_TOKENS) -> "BlockedSwinBlock":
        """Make ``block`` a BlockedSwinBlock in place (as ``torch.nn.utils.parametrize`` swaps classes):
        the same object, submodules, parameters and hooks."""
        block.__class__ = cls
        block.block_tokens = block_tokens
        return block

    def unswap(self) -> SwinBlock:
        self.__dict__.pop("block_tokens", None)
        self._derived.clear()  # the kept bias is this class's; a SwinBlock recomputes it
        self.__class__ = SwinBlock
        return self


def _logit_dtype(x: Tensor) -> torch.dtype:
    """The dtype the attention logits of ``x`` will have (autocast aware)."""
    return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype


def _as(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype)
