"""Checkers of notebook 00: the shapes of the UNet's three inputs."""
from __future__ import annotations

from typing import Callable

import torch

from .core import CheckResult, ShapeCheckResult, _call, _check_shapes, _finish, _named, exercise


# --- notebook 00: shapes of the UNet's inputs ---------------------------------------------------

_LATENT_HINTS = {
    "not divided by 8": "The VAE shrinks each side of the image 8x: a 512x512 image is a 64x64 latent.",
    "3 channels (RGB) instead of 4": "The UNet never sees RGB pixels: the VAE latent has 4 channels.",
    "height and width swapped": "Shapes are (batch, channels, height, width): height comes first.",
    "divided by 64 instead of 8": "64 is how much the deepest UNet level shrinks the image (8 from the VAE "
                                  "x 8 from three stride-2 convs); the latent itself is 1/8 of the image.",
    "no batch dimension": "PyTorch modules take a batch: (batch, 4, height/8, width/8).",
    "320 channels (the first feature map) instead of 4": "320 is the width right after the UNet's first conv; "
                                                          "its input, the latent, has 4 channels.",
}


def _latent_mistakes(b, h, w):
    return {
        "not divided by 8": (b, 4, h, w),
        "3 channels (RGB) instead of 4": (b, 3, h // 8, w // 8),
        "height and width swapped": (b, 4, w // 8, h // 8),
        "divided by 64 instead of 8": (b, 4, h // 64, w // 64),
        "no batch dimension": (4, h // 8, w // 8),
        "320 channels (the first feature map) instead of 4": (b, 320, h // 8, w // 8),
    }


_LATENT_CASES = ((1, 512, 512), (2, 512, 768), (3, 768, 640))


def latent_shape_reference(batch: int, height: int, width: int) -> tuple:
    """The reference answer of exercise 1 of notebook 00."""
    return (batch, 4, height // 8, width // 8)


@exercise("latent_shape", todo="return the latent's shape for that image size, a tuple of 4 ints",
          reference=lambda: latent_shape_reference)
def check_latent_shape(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 00): fn(batch, height, width) -> shape of the latent for images of
    height x width pixels, i.e. (batch, 4, height // 8, width // 8)."""
    name = "latent_shape"
    cases = []
    for b, h, w in _LATENT_CASES:
        got = _call(name, fn, b, h, w, hint="fn(batch, height, width) should return a tuple of 4 ints.")
        if isinstance(got, (torch.Size, tuple, list)) and any(isinstance(n, float) for n in got):
            return _finish(ShapeCheckResult(name, False, float("inf"), "float sizes from / instead of //",
                                            "It looks like: float sizes from / instead of //. Shapes are ints: "
                                            "height // 8 (integer division), not height / 8.",
                                            f"latent_shape({b}, {h}, {w}) returned {tuple(got)}."), raise_on_failure)
        if isinstance(got, (torch.Size, tuple, list)) and all(isinstance(n, int) for n in got):
            got = tuple(got)
        else:
            return _finish(ShapeCheckResult(name, False, float("inf"), None,
                                            "Return a tuple such as (1, 4, 64, 64).",
                                            f"latent_shape({b}, {h}, {w}) returned a {type(got).__name__}."),
                           raise_on_failure)
        cases.append((f"latent_shape({b}, {h}, {w})", got, [(b, 4, h // 8, w // 8)], _latent_mistakes(b, h, w), _LATENT_HINTS))
    return _check_shapes(name, cases, raise_on_failure)


_CONTEXT_HINTS = {
    "one pooled vector per prompt instead of 77 token vectors": "SD v1 cross-attends to every token: CLIP's "
        "last hidden state, 77 vectors of 768 numbers, not one pooled sentence vector.",
    "token ids instead of token embeddings": "The tokenizer's 77 ids go through CLIP's text encoder first; the "
        "UNet receives 768 numbers per token.",
    "tokens and features transposed": "Sequences are (batch, tokens, features): (B, 77, 768).",
}
_TIME_HINTS = {
    "raw timesteps instead of the sinusoidal embedding": "Diffusion.forward takes sinusoidal_embedding(t), "
        "shape (1 or B, 320), not the integer t itself (notebook 01 builds it).",
    "the 1280-wide MLP output instead of the 320-wide sinusoidal embedding": "Diffusion applies its own "
        "TimeEmbedding MLP (320 -> 1280); give it the 320-wide sinusoidal embedding.",
    "only half of the embedding (160 instead of 320)": "The embedding is 160 cosines AND 160 sines: 320 numbers.",
}


def unet_inputs_reference(batch: int, height: int, width: int) -> tuple:
    """The reference answer of exercise 2 of notebook 00."""
    from ..time_embedding import sinusoidal_embedding

    latent = torch.randn(batch, 4, height // 8, width // 8)  # (B, 4, H/8, W/8)
    context = torch.randn(batch, 77, 768)  # (B, 77, 768)
    return latent, context, sinusoidal_embedding(500)  # time: (1, 320), shared by the batch


_TIME_VALUE_HINTS = {
    "a random tensor instead of the embedding of t = 500": "The shape is right but the numbers are noise: "
        "the UNet reads the timestep from these 320 numbers. Use sdcourse.sinusoidal_embedding(500).",
    "the embedding of another timestep": "The exercise asks for t = 500: sdcourse.sinusoidal_embedding(500).",
    "sin and cos swapped": "sdcourse.sinusoidal_embedding puts the 160 cosines first, as SD v1 was trained.",
}


def _check_time_values(name: str, time: torch.Tensor, raise_on_failure: bool):
    """The time input must be the embedding of t = 500 in every row, not only the right shape."""
    from ..time_embedding import sinusoidal_embedding

    want = sinusoidal_embedding(500).double()  # (1, 320)
    rows = time.detach().double().reshape(-1, 320)
    mistakes = {
        "sin and cos swapped": want.roll(160, dims=-1),
        "the embedding of another timestep": None,
        "a random tensor instead of the embedding of t = 500": None,
    }
    diff = (rows - want).abs().max().item()
    if diff <= 1e-4:
        return None
    if (rows - mistakes["sin and cos swapped"]).abs().max().item() <= 1e-4:
        mistake = "sin and cos swapped"
    elif bool(((rows.abs() <= 1 + 1e-6).all() and (rows[:, :160] ** 2 + rows[:, 160:] ** 2 - 1).abs().max() < 1e-4)):
        mistake = "the embedding of another timestep"  # a valid embedding: every (cos, sin) pair on the unit circle
    else:
        mistake = "a random tensor instead of the embedding of t = 500"
    return _finish(ShapeCheckResult(name, False, diff, mistake, _named(_TIME_VALUE_HINTS)[mistake],
                                    f"time has the right shape but differs from sinusoidal_embedding(500) by {diff:.3g}."),
                   raise_on_failure)


@exercise("unet_inputs", todo="return (latent, context, time): three tensors Diffusion accepts, the time "
          "being the embedding of t = 500", reference=lambda: unet_inputs_reference)
def check_unet_inputs(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 00): fn(batch, height, width) -> (latent, context, time), three tensors
    that `Diffusion` accepts for images of height x width pixels: latent (B, 4, H/8, W/8),
    context (B or 1, 77, 768), time (B or 1, 320) holding the embedding of t = 500.
    Shapes are checked, and the time's values (a random tensor of the right shape is not a time)."""
    name = "unet_inputs"
    cases = []
    for b, h, w in _LATENT_CASES[:2]:
        out = _call(name, fn, b, h, w, hint="fn(batch, height, width) should return (latent, context, time).")
        if not (isinstance(out, (tuple, list)) and len(out) == 3 and all(isinstance(x, torch.Tensor) for x in out)):
            return _finish(ShapeCheckResult(name, False, float("inf"), None,
                                            "Return three tensors: latent, context, time.",
                                            f"unet_inputs({b}, {h}, {w}) did not return a tuple of 3 tensors."),
                           raise_on_failure)
        latent, context, time = out
        call = f"unet_inputs({b}, {h}, {w})"
        cases += [
            (f"{call}: latent", latent.shape, [(b, 4, h // 8, w // 8)], _latent_mistakes(b, h, w), _LATENT_HINTS),  # i18n: no
            (f"{call}: context", context.shape, [(b, 77, 768), (1, 77, 768)], {  # i18n: no
                "one pooled vector per prompt instead of 77 token vectors": (b, 768),
                "token ids instead of token embeddings": (b, 77),
                "tokens and features transposed": (b, 768, 77),
            }, _CONTEXT_HINTS),
            (f"{call}: time", time.shape, [(b, 320), (1, 320)], {  # i18n: no
                "raw timesteps instead of the sinusoidal embedding": [(b,), ()],
                "the 1280-wide MLP output instead of the 320-wide sinusoidal embedding": (b, 1280),
                "only half of the embedding (160 instead of 320)": (b, 160),
            }, _TIME_HINTS),
        ]
    shapes = _check_shapes(name, cases, finish=False)
    if not shapes.passed:
        return _finish(shapes, raise_on_failure)
    wrong_time = _check_time_values(name, time, raise_on_failure)
    return wrong_time or _finish(shapes, raise_on_failure)




# --- hints: where to look, not the answer ------------------------------------------------------
from .hints import register  # noqa: E402

register("latent_shape",
         "Two facts from the table of the three inputs: how many channels the VAE latent has, and how much "
         "smaller than the image each of its sides is.",
         "Shapes are ints: which Python operator divides and keeps an int?")
register("unet_inputs",
         "Three tensors, in the table's order: the latent (your latent_shape), CLIP's context (tokens x "
         "features), and the time.",
         "The time is not the integer 500: it is 320 numbers. Which sdcourse function of section 4 makes them?")
