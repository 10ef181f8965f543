"""Moving a model's parameters away from their initial values, so that equivalence checks can fail.

A fresh model hides mistakes: GroupNorm and LayerNorm start with weight 1 and bias 0, and many
biases start at 0, so a forgotten affine step or a bias loaded into the wrong place changes
nothing. `perturb_` adds seeded noise to the parameters first; after it, a swapped or missing
layer shows up as a difference in the outputs.
"""
from __future__ import annotations

import torch


def perturb_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1, only_1d: bool = False) -> torch.nn.Module:
    """Move every parameter away from its init (norm weights from 1, biases from 0), in place, so
    that a swapped or forgotten layer cannot hide behind an identity-like init.

    seed: the noise comes from its own generator (the global random state is left as it was).
    only_1d: touch only 1-D parameters (norm weights and biases) and leave the random weight
    matrices as they are (for big models, where noise on every matrix would blow up activations).
    Returns `module`, for chaining.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if only_1d and p.ndim != 1:
                continue
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype))
    return module
