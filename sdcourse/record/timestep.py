"""Reading the timestep t back from the time input of a course model.

The recorder sees what the model sees: `sinusoidal_embedding(t)` (N, dim), often cast to the
model's dtype. Reading t from one (cos, sin) pair with atan2 is not enough in half precision:
float16 keeps about 3 decimal digits, so the slowest frequency (0.000106 for dim 320) gives t
only to about +-1 (981 decodes as 980.72), and bfloat16 to about +-5. So the reading has two
steps:

1. rough: t ~ atan2(sin, cos) / f at the slowest frequency f, which turns less than half a
   circle for any t < pi / f (~29,000 for dim 320);
2. exact: the embeddings of the whole numbers near that guess are computed the way the caller
   did (`sinusoidal_embedding(n).to(dtype)`), and the one that matches is t. Neighbouring whole
   numbers differ by ~0.5 in the fast frequencies, far more than any rounding of the dtype.

The course's samplers use whole timesteps, which are read back exactly in float32, float16 and
bfloat16. A fractional t (e.g. some diffusers schedulers) comes back as the rough reading; tag
such calls yourself with `recorder.timestep = t`.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch

from ..time_embedding import sinusoidal_embedding

Timestep = Optional[Union[int, float]]
MATCH_TOLERANCE = 0.05  # max |difference| for "this is the embedding of n"; neighbours differ by ~0.5


def decode_timestep(time: torch.Tensor) -> Timestep:
    """The timestep of a sinusoidal embedding (N, dim) = [cos(t f_i) | sin(t f_i)] (first row), or None.

    Returns an int when the row is the embedding of a whole number in the row's dtype, else the
    rough float reading; None when the row is no sinusoidal embedding (or lives on `meta`).
    """
    if time.ndim != 2 or time.shape[-1] % 2 or time.shape[-1] < 4 or time.device.type == "meta":
        return None
    if not time.dtype.is_floating_point:
        return None
    dim, half = time.shape[-1], time.shape[-1] // 2
    row = time[0].detach().float().cpu()  # (dim,)
    eps = torch.finfo(time.dtype).eps
    c, s = row[half - 1].item(), row[-1].item()  # the slowest frequency's pair
    if abs(c * c + s * s - 1.0) > 4 * eps + 1e-6:
        return None  # not a point on the unit circle: not a sinusoidal embedding
    slowest = 10000.0 ** (-(half - 1) / half)
    rough = math.atan2(s, c) / slowest
    # how far the rough reading can be off: the dtype's rounding of the angle, over the frequency
    margin = math.ceil(2 * eps / slowest) + 1
    candidates = torch.arange(math.floor(rough) - margin, math.ceil(rough) + margin + 1)  # (K,)
    # (K,) -> (K, dim), rounded to the caller's dtype as the caller's embedding was
    table = sinusoidal_embedding(candidates, dim).to(time.dtype).float()
    error = (table - row).abs().amax(-1)  # (K, dim) -> (K,)
    best = int(error.argmin())
    if error[best].item() <= MATCH_TOLERANCE + 4 * eps:
        return int(candidates[best])
    return round(rough, 1)
