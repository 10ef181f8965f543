"""Checkers of notebook 01: the sinusoidal embedding and the TimeEmbedding MLP."""
from __future__ import annotations

from typing import Callable, Dict

import torch

from .core import CheckResult, _call, _named, compare, copy_weights, exercise, perturb_


# --- notebook 01: the time embedding --------------------------------------------------------------

_SINUSOIDAL_HINTS = {
    "sin and cos swapped": "SD v1 was trained with the cosines first: [cos | sin] (diffusers calls it "
                           "flip_sin_to_cos=True). The first Linear layer's weights expect that order.",
    "frequencies 10000^(-i/dim) instead of 10000^(-i/half)": "The exponent is divided by half = dim/2 = 160, "
                                                             "so that i = 0..159 spans frequencies 1 .. ~1/10000.",
    "frequencies 10000^(-i/(half-1)) instead of 10000^(-i/half)": "That is the other convention "
        "(downscale_freq_shift=1). SD v1 divides by half exactly (freq_shift=0).",
    "sin and cos interleaved": "Concatenate the blocks: first all 160 cosines, then all 160 sines "
                               "(torch.cat([cos, sin], dim=-1)), not cos0, sin0, cos1, sin1, ...",
    "positive exponent": "The frequencies fall: 10000 ** (-i / half), from 1 down to ~1/10000.",
}


def _sinusoidal_mistakes(t: torch.Tensor, dim: int) -> Dict[str, torch.Tensor]:
    """Reference (key 'reference') and typical mistakes, in float64. t: (N,) -> each (N, dim)."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float64)  # (half,)
    t = t.to(torch.float64)[:, None]  # (N,) -> (N, 1)

    def cos_sin(freqs):  # (half,) -> (N, dim)
        angles = t * freqs[None, :]  # (N, 1) * (1, half) -> (N, half)
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)

    freqs = 10000.0 ** (-i / half)
    angles = t * freqs[None, :]  # (N, half)
    return {
        "reference": cos_sin(freqs),
        "sin and cos swapped": torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1),
        "frequencies 10000^(-i/dim) instead of 10000^(-i/half)": cos_sin(10000.0 ** (-i / dim)),
        "frequencies 10000^(-i/(half-1)) instead of 10000^(-i/half)": cos_sin(10000.0 ** (-i / (half - 1))),
        # (N, half, 2) -> (N, dim): cos0, sin0, cos1, sin1, ...
        "sin and cos interleaved": torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1).flatten(1),
        "positive exponent": cos_sin(10000.0 ** (i / half)),
    }


def _reference_sinusoidal():
    from ..time_embedding import sinusoidal_embedding
    return sinusoidal_embedding


def _reference_time_embedding():
    from ..time_embedding import TimeEmbedding
    return TimeEmbedding


@exercise("sinusoidal_embedding", todo="t (N,) -> (N, dim): the sinusoidal embedding in SD v1's convention",
          reference=_reference_sinusoidal)
def check_sinusoidal_embedding(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 01): fn(t, dim) with t a (N,) tensor of timesteps -> (N, dim) float
    embedding [cos(t f_0..t f_{half-1}) | sin(...)], f_i = 10000^(-i/half).

    Checked at dim=320 and dim=64, timesteps 0..999. Tolerance 1e-3: in float32 an angle of
    ~999 radians carries an error of ~1e-4, and every mistake above differs by far more.
    """
    t = torch.tensor([0, 1, 7, 50, 261, 500, 999])
    result = None
    for dim in (320, 64):
        name = f"sinusoidal_embedding(t, dim={dim})"
        got = _call(name, fn, t, dim, hint="fn(t, dim) takes a (N,) tensor of timesteps and an even dim.")
        variants = _sinusoidal_mistakes(t, dim)
        expected = variants.pop("reference")
        result = compare(name, got, expected, variants, _named(_SINUSOIDAL_HINTS), atol=1e-3,
                         general_hint="Build it as in the cells above: freqs (half,), angles (N, half), cat([cos, sin]).",
                         raise_on_failure=raise_on_failure)
        if not result.passed:
            return result
    return result


_TIME_EMBEDDING_HINTS = {
    "SiLU missing": "Put F.silu between linear_1 and linear_2: Linear -> SiLU -> Linear.",
    "ReLU instead of SiLU": "SD uses SiLU (x * sigmoid(x)), smooth and non-zero for negative inputs: F.silu.",
    "GELU instead of SiLU": "SD's time MLP uses SiLU (F.silu), not GELU.",
    "an extra SiLU after linear_2": "The MLP ends with linear_2; each residual block applies its own SiLU "
                                    "to the time embedding before its linear_time.",
    "SiLU on the input instead of between the layers": "The SiLU goes between linear_1 and linear_2.",
}


@exercise("TimeEmbedding", todo="build linear_1 and linear_2 with the notes' names; forward (N, n_embd) -> "
          "(N, 4 n_embd)", reference=_reference_time_embedding)
def check_time_embedding(module_cls: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 01): module_cls(n_embd) -> a module with linear_1 (n_embd -> 4 n_embd)
    and linear_2 (4 n_embd -> 4 n_embd); forward (N, n_embd) -> (N, 4 n_embd).

    The learner's module gets the reference's (perturbed) weights, then both see the same
    sinusoidal embeddings of four timesteps.
    """
    from torch.nn import functional as F

    from ..time_embedding import TimeEmbedding, sinusoidal_embedding

    name = "TimeEmbedding"
    reference = perturb_(TimeEmbedding(320), seed=1)
    learner = _call(name, module_cls, 320, hint="module_cls(320) should build the module.")
    copy_weights(learner, reference)
    x = sinusoidal_embedding(torch.tensor([0, 10, 500, 999]), 320)  # (4, 320)
    with torch.no_grad():
        got = _call(name, learner, x, hint="forward takes a (N, 320) embedding.")
        l1, l2 = reference.linear_1, reference.linear_2
        mistakes = {
            "SiLU missing": l2(l1(x)),
            "ReLU instead of SiLU": l2(F.relu(l1(x))),
            "GELU instead of SiLU": l2(F.gelu(l1(x))),
            "an extra SiLU after linear_2": F.silu(l2(F.silu(l1(x)))),
            "SiLU on the input instead of between the layers": l2(l1(F.silu(x))),
        }
        expected = reference(x)
    return compare(name, got, expected, mistakes, _named(_TIME_EMBEDDING_HINTS),
                   general_hint="Linear(320, 1280) -> SiLU -> Linear(1280, 1280), as in the cells above.",
                   raise_on_failure=raise_on_failure)




# --- hints: where to look, not the answer ------------------------------------------------------
from .hints import register  # noqa: E402

register("sinusoidal_embedding",
         "Sections 2.1, 2.2 and 2.3 are the three lines you need; replace 320 and 160 by dim and dim // 2.",
         "t arrives as a (N,) tensor of ints: make it a float column before multiplying by the row of frequencies.",
         "Which half comes first decides whether SD's weights read the right time: section 4.")
register("TimeEmbedding",
         "__init__ builds two nn.Linear layers, named exactly as in the notes (the check copies weights by name).",
         "forward is the three lines of the step-by-step cell above, with self. in front of the layers.")
