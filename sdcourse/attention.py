"""Multi-head attention as the SD v1 UNet uses it: `SelfAttention` (queries, keys and values
all from the image tokens) and `CrossAttention` (queries from the image, keys and values from
the text context).

Two paths compute the same thing:
- fast: `F.scaled_dot_product_attention` (fused, never materialises the L x L weights);
- explicit: softmax(Q K^T / sqrt(d_head)) V, used when the weights are wanted: when the module
  has an `observer` (see `sdcourse.record`) or when `explicit = True` is set for teaching.

Facts that matter for loading real weights: the q/k/v projections have NO bias in the UNet
(`in_proj_bias=False`), the output projection has one; every block uses 8 heads in SD v1.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn
from torch.nn import functional as F
from .i18n import tr


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, L, n_heads * d_head) -> (B, n_heads, L, d_head)."""
    b, length, d = x.shape
    # (B, L, H * Dh) -> (B, L, H, Dh) -> (B, H, L, Dh)
    return x.view(b, length, n_heads, d // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, n_heads, L, d_head) -> (B, L, n_heads * d_head)."""
    b, h, length, dh = x.shape
    # (B, H, L, Dh) -> (B, L, H, Dh) -> (B, L, H * Dh)
    return x.transpose(1, 2).reshape(b, length, h * dh)


def attention_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_head)) over the keys. (B, H, Lq, Dh), (B, H, Lk, Dh) -> (B, H, Lq, Lk)."""
    # (B, H, Lq, Dh) @ (B, H, Dh, Lk) -> (B, H, Lq, Lk)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1)


class _Attention(nn.Module):
    """What both attention kinds share: head bookkeeping and the choice of path."""

    def __init__(self, n_heads: int, d_embed: int):
        super().__init__()
        if d_embed % n_heads != 0:
            raise ValueError(tr(f"{type(self).__name__}: d_embed={d_embed} is not divisible by n_heads={n_heads}."))
        self.n_heads = n_heads
        self.d_head = d_embed // n_heads
        self.d_embed = d_embed
        # observer(module, weights) receives (B, H, Lq, Lk) attention weights when set.
        self.observer: Optional[Callable[[nn.Module, torch.Tensor], None]] = None
        self.explicit = False  # True: always take the explicit path (for teaching and tests)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(B, H, Lq, Dh), (B, H, Lk, Dh), (B, H, Lk, Dh) -> (B, H, Lq, Dh)."""
        if self.observer is None and not self.explicit:
            return F.scaled_dot_product_attention(q, k, v)
        weights = attention_weights(q, k)  # (B, H, Lq, Lk)
        if self.observer is not None:
            self.observer(self, weights)
        # (B, H, Lq, Lk) @ (B, H, Lk, Dh) -> (B, H, Lq, Dh)
        return weights @ v

    def _check_tokens(self, x: torch.Tensor, width: int, what: str) -> None:
        if x.ndim != 3 or x.shape[-1] != width:
            raise ValueError(
                tr(f"{type(self).__name__}: {what} must be (batch, sequence, {width}), got shape {tuple(x.shape)}. "
                "An image feature map (B, C, H, W) becomes a sequence with x.view(B, C, H*W).transpose(1, 2).")
            )


class SelfAttention(_Attention):
    """Every image token attends to every image token. One fused projection makes Q, K and V."""

    def __init__(self, n_heads: int, d_embed: int, in_proj_bias: bool = False, out_proj_bias: bool = True):
        super().__init__(n_heads, d_embed)
        # W_q, W_k, W_v stacked: in_proj.weight = cat([W_q, W_k, W_v], dim=0)
        self.in_proj = nn.Linear(d_embed, 3 * d_embed, bias=in_proj_bias)
        self.out_proj = nn.Linear(d_embed, d_embed, bias=out_proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, d_embed) -> (B, L, d_embed)."""
        self._check_tokens(x, self.d_embed, "x")
        # (B, L, C) -> (B, L, 3C) -> 3 x (B, L, C)
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        # (B, L, C) -> (B, H, L, Dh)
        q, k, v = (split_heads(t, self.n_heads) for t in (q, k, v))
        # (B, H, L, Dh) -> (B, H, L, Dh)
        out = self._attend(q, k, v)
        # (B, H, L, Dh) -> (B, L, C)
        out = merge_heads(out)
        # (B, L, C) -> (B, L, C)
        return self.out_proj(out)


class CrossAttention(_Attention):
    """Image tokens (queries) attend to context tokens (keys and values), e.g. 77 CLIP tokens of width 768."""

    def __init__(self, n_heads: int, d_embed: int, d_cross: int, in_proj_bias: bool = False, out_proj_bias: bool = True):
        super().__init__(n_heads, d_embed)
        self.d_cross = d_cross
        self.q_proj = nn.Linear(d_embed, d_embed, bias=in_proj_bias)
        self.k_proj = nn.Linear(d_cross, d_embed, bias=in_proj_bias)
        self.v_proj = nn.Linear(d_cross, d_embed, bias=in_proj_bias)
        self.out_proj = nn.Linear(d_embed, d_embed, bias=out_proj_bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x: (B, Lq, d_embed) image tokens; y: (B or 1, Lk, d_cross) context -> (B, Lq, d_embed)."""
        self._check_tokens(x, self.d_embed, tr("x (the image tokens)"))
        self._check_tokens(y, self.d_cross, tr("y (the context)"))
        if y.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                tr(f"CrossAttention: context batch {y.shape[0]} cannot broadcast to image batch {x.shape[0]}. "
                "Give one context per image, or a single context (batch 1) shared by all.")
            )
        # (B, Lq, C) -> (B, H, Lq, Dh)
        q = split_heads(self.q_proj(x), self.n_heads)
        # (B|1, Lk, Dc) -> (B|1, Lk, C) -> (B|1, H, Lk, Dh)
        k = split_heads(self.k_proj(y), self.n_heads)
        v = split_heads(self.v_proj(y), self.n_heads)
        if k.shape[0] != q.shape[0]:
            # (1, H, Lk, Dh) -> (B, H, Lk, Dh), a view: no copy
            k, v = k.expand(q.shape[0], -1, -1, -1), v.expand(q.shape[0], -1, -1, -1)
        # (B, H, Lq, Dh) -> (B, H, Lq, Dh)
        out = self._attend(q, k, v)
        # (B, H, Lq, Dh) -> (B, Lq, C)
        out = merge_heads(out)
        # (B, Lq, C) -> (B, Lq, C)
        return self.out_proj(out)
