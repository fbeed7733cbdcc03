"""Cache-blocked inference of a Swin block: a few windows at a time (CPU, eval, no autograd).

Everything in a block but attention works token by token, and attention never leaves its window. So a
whole block, both residual branches included, can run over a chunk of windows: gather the chunk's
tokens (the cyclic shift and the window partition are one index), attend, run the MLP, and write the
result back to its places in the map. Each chunk's intermediates stay in the CPU cache, and the 4C-wide
MLP activations are never allocated for the whole map; on a CPU, those passes over memory and the page
faults of fresh large allocations are most of what the GEMMs don't already take.

The operators and their order are those of the layer-by-layer path, so the results agree with it to
float rounding of the GEMMs.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor

from swincli.models.config import Pair
from swincli.models.onednn import graph_capture
from swincli.models.window import window_partition

# Tokens (summed over the batch) per chunk. 4096 tokens of 96..768 channels keep a chunk's activations
# within a few MB (L2/L3) while the GEMMs stay large enough to run at full speed.
ROWS = int(os.environ.get("SWIN_BLOCK_ROWS", "4096"))


def window_order(size: Pair, window: Pair, shift: Pair, device: torch.device) -> Tensor:
    """Flat map position of every token in window order after the cyclic shift: roll + partition as one index."""
    hp, wp = size
    pos = torch.arange(hp * wp, device=device).view(1, hp, wp, 1)
    if shift[0] or shift[1]:
        pos = torch.roll(pos, (-shift[0], -shift[1]), dims=(1, 2))
    return window_partition(pos, window).reshape(-1)


def applies(block, x: Tensor) -> bool:
    """Eval without autograd on CPU, and no profiling scheme has replaced the block's attention."""
    return (
        ROWS > 0
        and not block.training
        and not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and "attend" not in block.__dict__
        and not graph_capture()
    )


def run_block(block, x: Tensor) -> Tensor:
    """The block's forward for ``x`` ``(B, H, W, C)``, computed chunk by chunk of windows."""
    b, h, w, c = x.shape
    (wh, ww), attn = block.window, block.attn
    pad_h, pad_w = (-h) % wh, (-w) % ww
    normed = None
    if pad_h or pad_w:  # pad first, then shift: the official order (as in SwinBlock.attend)
        if block.version == 1:  # V1 pads the *normalised* map: padded tokens enter attention as zeros
            normed = F.pad(block.norm1(x), (0, 0, 0, pad_w, 0, pad_h)).reshape(b, -1, c)
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    shift = (block.shift[0] if hp > wh else 0, block.shift[1] if wp > ww else 0)
    key = ((hp, wp), block.window, shift, x.device)
    order = attn.derived("order", key, lambda: window_order((hp, wp), block.window, shift, x.device))
    n = wh * ww
    mask = attn.mask_for(x, (hp, wp), shift)
    per = max(1, ROWS // (b * n))
    if attn.chunk:
        per = min(per, attn.chunk)
    flat = x.reshape(b, hp * wp, c)
    out = torch.empty_like(flat)
    for w0 in range(0, hp * wp // n, per):
        idx = order[w0 * n : (w0 + per) * n]
        windows = flat.index_select(1, idx).view(b, -1, n, c)
        part = mask[w0 : w0 + per] if mask is not None and mask.dim() == 4 else mask
        pre = None if normed is None else normed.index_select(1, idx).view_as(windows)
        y = _tokens(block, windows, part, pre)
        out.index_copy_(1, idx, y.reshape(b, -1, c).to(out.dtype))
    out = out.view(b, hp, wp, c)
    return out[:, :h, :w].contiguous() if pad_h or pad_w else out


def _tokens(block, x: Tensor, mask: Tensor | None, normed: Tensor | None = None) -> Tensor:
    """Both residual branches of the block for windows ``x`` ``(B, k, N, C)`` (``normed``: V1's norm1(x), if given)."""
    if block.version == 1:  # pre-norm
        x = block.attn._attend(block.norm1(x) if normed is None else normed, mask, residual=x)
        return block.mlp(block.norm2(x), residual=x)
    x = x + block.norm1(block.attn._attend(x, mask))  # V2: res-post-norm
    return x + block.norm2(block.mlp(x))
