"""The time embedding: a timestep t becomes a 320-vector of sines and cosines, then an MLP
turns it into the 1280-vector that every residual block receives.

Convention (the one SD v1 was trained with, diffusers' `flip_sin_to_cos=True, freq_shift=0`):
    freq_i = 10000 ** (-i / half),  i = 0 .. half-1   (half = dim / 2 = 160)
    embedding(t) = [cos(t * freq_0 .. t * freq_159) | sin(t * freq_0 .. t * freq_159)]
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from .i18n import tr


def sinusoidal_embedding(t, dim: int = 320) -> torch.Tensor:
    """Timesteps -> (N, dim) embedding, cosines first then sines.

    t: an int, a float, or a tensor of shape () or (N,). Returns float32 (N, dim).
    """
    if dim % 2 != 0 or dim <= 0:
        raise ValueError(tr(f"sinusoidal_embedding: dim must be a positive even number (half cos, half sin), got {dim}."))
    t = torch.as_tensor(t)
    if t.ndim == 0:
        t = t[None]  # () -> (1,)
    if t.ndim != 1:
        raise ValueError(
            tr(f"sinusoidal_embedding: t must be a number or a 1-D tensor of timesteps, got shape {tuple(t.shape)}. "
            "Pass e.g. torch.tensor([981]) or torch.tensor([981, 500]).")
        )
    half = dim // 2
    # (half,): 1, 10000^(-1/half), ..., 10000^(-(half-1)/half)
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    # (N, 1) * (1, half) -> (N, half)
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    # (N, half) + (N, half) -> (N, dim)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimeEmbedding(nn.Module):
    """(N, n_time_embd) sinusoidal embedding -> (N, 4 * n_time_embd): Linear, SiLU, Linear.

    n_time_embd is the full width of the sinusoidal embedding (320 in SD v1; the notes call it
    `n_embd`, a name they also give the width of one attention head).
    """

    def __init__(self, n_time_embd: int = 320):
        super().__init__()
        self.n_time_embd = n_time_embd
        self.linear_1 = nn.Linear(n_time_embd, 4 * n_time_embd)
        self.linear_2 = nn.Linear(4 * n_time_embd, 4 * n_time_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[-1] != self.n_time_embd:
            raise ValueError(
                tr(f"TimeEmbedding: expected a (N, {self.n_time_embd}) sinusoidal embedding, got shape {tuple(x.shape)}. "
                f"Make it with sinusoidal_embedding(t, dim={self.n_time_embd}).")
            )
        # (N, 320) -> (N, 1280)
        x = self.linear_1(x)
        # (N, 1280) -> (N, 1280)
        x = F.silu(x)
        # (N, 1280) -> (N, 1280)
        x = self.linear_2(x)
        return x
