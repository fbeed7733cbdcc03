"""Window multi-head self-attention (W-MSA / SW-MSA) for Swin V1 and V2.

:meth:`WindowAttention.reference` is the paper's formula written out, and the definition of what this
module computes:

- V1: ``softmax(q k^T / sqrt(d) + B + M) v``, B gathered from a learned relative position table;
- V2: ``softmax(tau * cos(q, k) + 16 sigmoid(CPB) + M) v``: cosine similarity times a learned
  per-head temperature tau (at most 100), the continuous position bias, and no bias on k;

where M is the shift mask of the block (-100 between tokens that the cyclic shift brought together
from different image regions). :meth:`WindowAttention.forward` computes the same thing with four
optimisations, each tested equal to the reference:

1. B is kept per head ``(heads, N, N)``, computed on every call (V2: through ``self.cpb_mlp``), and M
   per window pattern (:class:`~swincli.models.shift_mask.WindowMasks`), so neither exists for the
   whole map; both are added to the logits in place (SDPA gets them folded for the windows attending
   together). Only the CPU inference substitution keeps B between calls, where nobody can observe
   that (:class:`~swincli.models.blocked_block.BlockedSwinBlock`);
2. V2 normalises q and k in the token-major layout in one pass (the head-major views are strided,
   and broadcasting over them measured ten times slower on CPU);
3. ``F.scaled_dot_product_attention`` on GPUs ("auto"); on CPU bmm + softmax measured faster at
   Swin's window sizes, and SDPA has no fused CPU backward with a float mask;
4. ``chunk``: at most that many windows attend at once (the V2 paper's sequential attention), so the
   attention matrices and masks of only one chunk are alive; in training each chunk is recomputed in
   the backward pass (:mod:`swincli.models.sequential_attention`).

Every submodule (``qkv``, ``attn_drop``, ``proj``, ``proj_drop``, the CPB MLP) is called through its
own ``__call__`` on every forward, in every mode, so hooks and wrappers (peft LoRA, quantisation
observers, FLOP counters) see what they expect. V2's qkv is ``self.qkv(x)`` plus the
``(q_bias, 0, v_bias)`` vector, so wrapping ``qkv`` works for V2 too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swincli.models.config import Pair
from swincli.models.continuous_position_bias import continuous_bias, cpb_mlp, log_spaced_coords
from swincli.models.observed import global_hooks, hooked
from swincli.models.relative_position_bias import gather_bias, relative_position_index, resize_table, table_size
from swincli.models.sequential_attention import attend_in_chunks
from swincli.models.shift_mask import WindowMasks

LOGIT_SCALE_MAX = math.log(100.0)  # V2: tau = exp(logit scale) is clamped at 100
ATTENTION_IMPLS = ("auto", "sdpa", "eager")


class WindowAttention(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Pair,
        *,
        version: int = 1,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        pretrained_window: Pair = (0, 0),
        rel_pos: bool = True,
    ) -> None:
        super().__init__()
        self.dim, self.num_heads, self.version, self.rel_pos = dim, num_heads, version, rel_pos
        self.head_dim = dim // num_heads
        self.impl = "auto"  # see set_attention() on the model
        self.chunk: int | None = None  # windows per attention call; None = all at once
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias and version == 1)
        if version == 2:
            self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
            self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
            self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.window, self.pretrained_window = tuple(window), tuple(pretrained_window)
        if rel_pos and version == 1:
            self.relative_position_bias_table = nn.Parameter(torch.zeros(table_size(self.window), num_heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        elif rel_pos:
            self.cpb_mlp = cpb_mlp(num_heads)
        self._build_buffers()

    # ------------------------------------------------------------------ the paper's formula
    def reference(self, x: Tensor, masks: WindowMasks | None = None) -> Tensor:
        """Windows ``x`` ``(B, nW, N, C)`` -> ``(B, nW, N, C)``, the formula computed as written."""
        nw, n, c = x.shape[1:]
        q, k, v = self.project_qkv(x).permute(3, 0, 1, 4, 2, 5)  # 3 x (B, nW, heads, N, d)
        if self.version == 1:
            logits = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, nW, heads, N, N)
        else:
            cosine = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            logits = self.temperature() * cosine  # tau: (heads, 1, 1)
        bias = self.position_bias()  # (heads, N, N): B, or 16 sigmoid(CPB)
        if bias is not None:
            logits = logits + bias
        if masks is not None:
            logits = logits + masks.dense()[:, None]  # (nW, 1, N, N): M, the same for every head
        attn = self.attn_drop(logits.softmax(dim=-1))
        out = (attn @ v).transpose(2, 3).reshape(-1, nw, n, c)  # heads back into channels
        return self.proj_drop(self.proj(out))

    # ------------------------------------------------------------------ its parts
    def qkv_bias(self) -> Tensor | None:
        """V2's bias of the 3C qkv outputs, ``(q_bias, 0, v_bias)``: k has none. None for V1 (qkv has its own)."""
        if self.version == 1 or self.q_bias is None:
            return None
        return torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))

    def project_qkv(self, x: Tensor) -> Tensor:
        """``(..., C)`` -> ``(..., 3, heads, d)``: q, k and v of every head, token-major."""
        qkv = self.qkv(x)
        bias = self.qkv_bias()
        if bias is not None:
            qkv = qkv + bias
        return qkv.unflatten(-1, (3, self.num_heads, self.head_dim))

    def temperature(self) -> Tensor:
        """V2's tau per head, ``(heads, 1, 1)``: exp of the learned logit scale, at most 100."""
        return torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()

    def position_bias(self) -> Tensor | None:
        """``(heads, N, N)`` position bias of this window, or None for the "no pos." ablation."""
        if not self.rel_pos:
            return None
        if self.version == 1:
            return gather_bias(self.relative_position_bias_table, self.relative_position_index)
        return continuous_bias(self.cpb_mlp, self.relative_coords_table, self.relative_position_index)

    # ------------------------------------------------------------------ optimised
    def forward(self, x: Tensor, masks: WindowMasks | None = None) -> Tensor:
        """:meth:`reference`, computed faster (see the module docstring)."""
        qkv = self.project_qkv(x)
        return self.proj_drop(self.proj(self.attend(qkv, self.bias(), masks)))

    def bias(self) -> Tensor | None:
        """The position bias ``(heads, N, N)``, contiguous (gathered head-last, it is made so while small)."""
        bias = self.position_bias()
        return None if bias is None else bias.contiguous()

    def attend(self, qkv: Tensor, bias: Tensor | None, masks: WindowMasks | None, first: int = 0) -> Tensor:
        """``softmax(logits + B + M) v`` for ``qkv`` ``(B, k, N, 3, heads, d)``, windows ``first..first+k-1`` of
        the map, -> ``(B, k, N, C)``. With :attr:`chunk` set, windows attend ``chunk`` at a time
        (:mod:`swincli.models.sequential_attention`); otherwise all at once."""
        nw = qkv.shape[1]
        if not self.chunk or nw <= self.chunk:
            return self.attend_windows(qkv, bias, None if masks is None else masks.windows(first, first + nw))
        return attend_in_chunks(self, qkv, bias, masks, first)

    def logit_mask(self, bias: Tensor | None, shifted: Tensor | None, dtype: torch.dtype) -> Tensor | None:
        """B + M folded into one additive mask, for SDPA: None, ``(heads, N, N)``, or ``(k, heads, N, N)`` for the
        ``k`` windows of ``shifted`` ``(k, N, N)``, which attend together (never more than their logits)."""
        if shifted is None:
            mask = bias
        elif bias is None:  # the "no pos." ablation: one mask per window and head, for the SDPA layout
            mask = shifted[:, None].expand(-1, self.num_heads, -1, -1)
        else:
            mask = bias[None] + shifted[:, None]
        return None if mask is None else mask.to(dtype).contiguous()  # a strided mask makes every add slow

    def mask_sources(self) -> list[Tensor]:
        """The parameters and buffers :meth:`bias` derives from, for the keys of a cache of it."""
        if not self.rel_pos:
            return []
        if self.version == 1:
            return [self.relative_position_bias_table, self.relative_position_index]
        return [*self.cpb_mlp.parameters(), self.relative_coords_table, self.relative_position_index]

    def attend_windows(self, qkv: Tensor, bias: Tensor | None, shifted: Tensor | None) -> Tensor:
        """:meth:`reference`'s attention step on ``qkv`` ``(B, k, N, 3, heads, d)`` (token-major, as the qkv
        Linear writes it), with the position bias ``(heads, N, N)`` and these windows' shift masks
        ``(k, N, N)`` (None: none of them mixes regions) -> ``(B, k, N, C)``."""
        nw, n = qkv.shape[1], qkv.shape[2]
        heads, hd = self.num_heads, self.head_dim
        q, k, v, scale = self.split_heads(qkv)
        # softmax(q k^T * scale + B + M) v, by SDPA or written out (see _sdpa for which)
        if self._sdpa(q):
            mask = self.logit_mask(bias, shifted, q.dtype)
            if mask is None or mask.dim() == 3:  # one mask for every window: windows into the batch axis
                flat = [t.reshape(-1, heads, n, hd) for t in (q, k, v)]
            else:  # one mask per window: windows into the head axis, so the mask broadcasts over B
                flat = [t.reshape(-1, nw * heads, n, hd) for t in (q, k, v)]
                mask = mask.reshape(1, nw * heads, n, n)
            out = F.scaled_dot_product_attention(*flat, attn_mask=mask, scale=scale)
        else:
            out = self.probabilities(q, k, scale, bias, shifted) @ v
        # back to token-major (B, nW, N, heads * d): the heads of a token side by side, as proj expects
        return out.view(-1, nw, heads, n, hd).transpose(2, 3).reshape(-1, nw, n, heads * hd)

    def split_heads(self, qkv: Tensor) -> tuple[Tensor, Tensor, Tensor, float]:
        """q, k, v as ``(B, k, heads, N, d)`` views of ``qkv`` (V2: q and k normalised, tau in q) and the logit
        scale. permute moves the q/k/v axis (3) to the front and the heads axis (4) before the tokens (2)."""
        if self.version == 2:  # cosine attention: tau * q/|q| and k/|k|, normalised before the permute (fast,
            # contiguous); the logits are then tau * cos(q, k) and need no 1/sqrt(d) scale
            q, k = self._unit_qk(qkv[..., :2, :, :]).permute(3, 0, 1, 4, 2, 5).unbind(0)
            return q, k, qkv[..., 2, :, :].transpose(2, 3), 1.0
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)
        return q, k, v, self.head_dim**-0.5

    def probabilities(self, q: Tensor, k: Tensor, scale: float, bias: Tensor | None, shifted: Tensor | None) -> Tensor:
        """``attn_drop(softmax(q k^T * scale + B + M))``, ``(B, k, heads, N, N)``. B and M are added in place:
        the matmul's output is saved by nobody, and no mask as big as the logits exists."""
        logits = (q * scale) @ k.transpose(-2, -1)
        if bias is not None and shifted is not None and q.shape[0] > 1:  # a batch: fold first, one pass over it
            logits.add_(self.logit_mask(bias, shifted, q.dtype))  # (k, heads, N, N): 1/B of the logits
        else:
            if bias is not None:
                logits.add_(bias.to(q.dtype))
            if shifted is not None:
                logits.add_(shifted.to(q.dtype)[:, None])  # (k, 1, N, N): the same for every head
        probs = logits.softmax(dim=-1)
        del logits  # freed before the caller's product: softmax keeps its output, not its input
        return self.attn_drop(probs)

    def _sdpa(self, q: Tensor) -> bool:
        """SDPA where it is faster, and only where skipping ``attn_drop`` cannot matter: a plain dropout that
        is off (eval or p = 0), not hooked, and no global module hooks. Otherwise the explicit softmax calls it."""
        if self.impl == "eager" or (self.impl == "auto" and q.device.type == "cpu"):
            return False
        drop = self.attn_drop
        idle = type(drop) is nn.Dropout and (drop.p == 0.0 or not drop.training)
        return idle and not hooked(drop) and not global_hooks()

    def _unit_qk(self, qk: Tensor) -> Tensor:
        """``(..., 2, heads, d)`` -> ``tau * q / |q|`` and ``k / |k|`` in one pass (F.normalize's eps)."""
        tau = self.temperature().view(-1, 1)  # (heads, 1): the per-head temperature, clamped at 100
        factor = torch.stack((tau, torch.ones_like(tau)))  # (2, heads, 1): q's rows get tau, k's rows get 1
        norm = torch.linalg.vector_norm(qk, dim=-1, keepdim=True).clamp_min(1e-12)  # |q| and |k| per head
        return qk * (factor / norm).to(qk.dtype)  # one multiply scales q and k together

    # ------------------------------------------------------------------ window size
    def set_window_size(self, window: Pair, pretrained_window: Pair | None = None) -> None:
        """Attend over ``window`` from now on, by the official transfer rules: V1 resizes its bias table
        bicubically; V2 rebuilds its coordinates, normalised by the pretrained window."""
        window = tuple(window)
        if self.rel_pos and self.version == 1 and window != self.window:
            table = self.relative_position_bias_table
            resized = resize_table(table, self.window, window)
            self.relative_position_bias_table = nn.Parameter(resized, requires_grad=table.requires_grad)
        self.window = window
        if pretrained_window is not None:
            self.pretrained_window = tuple(pretrained_window)
        self._build_buffers(self.proj.weight.device)

    def _build_buffers(self, device: torch.device | str | None = None) -> None:
        """Derived tensors: never in checkpoints, rebuilt from the window whenever it changes."""
        if not self.rel_pos:
            return
        self.register_buffer("relative_position_index", relative_position_index(self.window).to(device), persistent=False)
        if self.version == 2:
            coords = log_spaced_coords(self.window, self.pretrained_window).to(device)
            self.register_buffer("relative_coords_table", coords, persistent=False)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window={self.window}, heads={self.num_heads}, version={self.version}"
