"""Exercise checkers: compare a learner's function or module with the reference, report the
largest difference, and when it is wrong, say which typical mistake it looks like.

How a hint is found: each checker also computes what the reference would give with a known
mistake (sin and cos swapped, 1/sqrt(d_head) forgotten, ...). If the learner's output matches
one of those, the hint names that mistake. If it matches none, the hint is general.

Every checker prints one line when the answer is right and raises `ExerciseError` when not,
so a wrong answer stops a notebook run (and fails CI).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch


class ExerciseError(AssertionError):
    """A learner's answer differs from the reference. The message says how and gives a hint."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    max_abs_diff: float
    mistake: Optional[str] = None  # the name of the typical mistake the answer matches, if any
    hint: str = ""

    def __str__(self) -> str:
        if self.passed:
            return f"[ok] {self.name}: matches the reference (max |difference| {self.max_abs_diff:.1e})"
        return f"[wrong] {self.name}: max |difference| {self.max_abs_diff:.3g} from the reference. {self.hint}"


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().double() - b.detach().double()).abs().max().item()


def compare(
    name: str,
    got: torch.Tensor,
    expected: torch.Tensor,
    mistakes: Optional[Dict[str, torch.Tensor]] = None,
    hints: Optional[Dict[str, str]] = None,
    general_hint: str = "Compare your code line by line with the cells above.",
    atol: float = 1e-5,
    raise_on_failure: bool = True,
) -> CheckResult:
    """Compare `got` with `expected`; on a mismatch look `got` up among known `mistakes`.

    mistakes: mistake name -> the output that mistake produces. hints: mistake name -> advice.
    """
    if not isinstance(got, torch.Tensor):
        result = CheckResult(name, False, float("inf"), hint=f"Expected a torch.Tensor, got {type(got).__name__}.")
    elif tuple(got.shape) != tuple(expected.shape):
        result = CheckResult(
            name, False, float("inf"),
            hint=f"Shape {tuple(got.shape)}, expected {tuple(expected.shape)}. " + general_hint,
        )
    else:
        diff = _max_diff(got, expected)
        if diff <= atol:
            result = CheckResult(name, True, diff)
        else:
            mistake = None
            for mistake_name, candidate in (mistakes or {}).items():
                if tuple(candidate.shape) == tuple(got.shape) and _max_diff(got, candidate) <= atol:
                    mistake = mistake_name
                    break
            hint = (hints or {}).get(mistake, f"It looks like: {mistake}.") if mistake else general_hint
            result = CheckResult(name, False, diff, mistake=mistake, hint=hint)
    if raise_on_failure and not result.passed:
        raise ExerciseError(str(result))
    if result.passed:
        print(result)
    return result


def copy_weights(learner: torch.nn.Module, reference: torch.nn.Module) -> None:
    """Give `learner` the reference's weights (same parameter names and shapes), with a clear error if not."""
    ours, theirs = learner.state_dict(), reference.state_dict()
    missing = [k for k in theirs if k not in ours]
    extra = [k for k in ours if k not in theirs]
    if missing or extra:
        raise ExerciseError(
            f"Your module's parameter names differ from the reference. Missing: {missing[:5]}; unexpected: {extra[:5]}. "
            "Use the notes' attribute names (e.g. groupnorm_feature, conv_feature, linear_time)."
        )
    shapes = [(k, tuple(ours[k].shape), tuple(v.shape)) for k, v in theirs.items() if ours[k].shape != v.shape]
    if shapes:
        raise ExerciseError(f"Parameter shapes differ (name, yours, reference): {shapes[:5]}")
    learner.load_state_dict(theirs)


def perturb_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1, only_1d: bool = False) -> torch.nn.Module:
    """Move every parameter away from its init (norm weights from 1, biases from 0), in place, so
    that a swapped or forgotten layer cannot hide behind an identity-like init.
    only_1d: touch only 1-D parameters (norm weights and biases) and leave the random weight
    matrices as they are (for big models, where noise on every matrix would blow up activations)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if only_1d and p.ndim != 1:
                continue
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype))
    return module


# ---------------------------------------------------------------------------------------------
# Notebooks 00-02: the UNet's inputs, the time embedding, GroupNorm and the residual block.
# Each checker below builds the reference AND the outputs of typical mistakes, so that a wrong
# answer is named ("sin and cos swapped"), not only measured.
# ---------------------------------------------------------------------------------------------


@dataclass
class ShapeCheckResult(CheckResult):
    """A CheckResult for answers that are shapes: says which case went wrong, not a max difference."""

    detail: str = ""

    def __str__(self) -> str:
        if self.passed:
            return f"[ok] {self.name}: every shape is right"
        return f"[wrong] {self.name}: {self.detail} {self.hint}"


def _named(hints: Dict[str, str]) -> Dict[str, str]:
    """Start each hint with the mistake's name, so the learner reads what went wrong, then the fix."""
    return {mistake: f"It looks like: {mistake}. {advice}" for mistake, advice in hints.items()}


def _finish(result: CheckResult, raise_on_failure: bool) -> CheckResult:
    """Print a passing result, raise (or return) a failing one: what `compare` does at its end."""
    if raise_on_failure and not result.passed:
        raise ExerciseError(str(result))
    if result.passed:
        print(result)
    return result


def _call(name: str, fn: Callable, *args, hint: str = ""):
    """Run the learner's code; turn an exception into an ExerciseError that says where and why."""
    try:
        return fn(*args)
    except ExerciseError:
        raise
    except Exception as error:  # the learner's code can fail in any way: report it, with a hint
        raise ExerciseError(f"[wrong] {name}: your code raised {type(error).__name__}: {error}. {hint}") from error


def _check_shapes(name, cases, raise_on_failure=True) -> ShapeCheckResult:
    """cases: (label, got shape, accepted shapes, {mistake name: shape or [shapes]}, {mistake name: hint}).

    The first case whose shape is not accepted decides the result; its shape is looked up
    among the mistakes to name it.
    """
    for label, got, accepted, mistakes, hints in cases:
        got = tuple(got)
        if got in [tuple(a) for a in accepted]:
            continue
        mistake = next((m for m, shapes in mistakes.items()
                        if got in ([tuple(s) for s in shapes] if isinstance(shapes, list) else [tuple(shapes)])), None)
        hint = _named(hints).get(mistake, f"It looks like: {mistake}.") if mistake else (
            f"Expected {tuple(accepted[0])}. Go back to the table of the three inputs above.")
        detail = f"{label} has shape {got}, expected {tuple(accepted[0])}."
        return _finish(ShapeCheckResult(name, False, float("inf"), mistake, hint, detail), raise_on_failure)
    return _finish(ShapeCheckResult(name, True, 0.0), raise_on_failure)


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


def check_latent_shape(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 00): fn(batch, height, width) -> shape of the latent for images of
    height x width pixels, i.e. (batch, 4, height // 8, width // 8)."""
    name = "latent_shape"
    cases = []
    for b, h, w in _LATENT_CASES:
        got = _call(name, fn, b, h, w, hint="fn(batch, height, width) should return a tuple of 4 ints.")
        if isinstance(got, torch.Size) or isinstance(got, (tuple, list)):
            got = tuple(int(n) for n in got)
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


def check_unet_inputs(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 00): fn(batch, height, width) -> (latent, context, time), three tensors
    that `Diffusion` accepts for images of height x width pixels: latent (B, 4, H/8, W/8),
    context (B or 1, 77, 768), time (B or 1, 320). Only the shapes are checked."""
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
            (f"{call}: latent", latent.shape, [(b, 4, h // 8, w // 8)], _latent_mistakes(b, h, w), _LATENT_HINTS),
            (f"{call}: context", context.shape, [(b, 77, 768), (1, 77, 768)], {
                "one pooled vector per prompt instead of 77 token vectors": (b, 768),
                "token ids instead of token embeddings": (b, 77),
                "tokens and features transposed": (b, 768, 77),
            }, _CONTEXT_HINTS),
            (f"{call}: time", time.shape, [(b, 320), (1, 320)], {
                "raw timesteps instead of the sinusoidal embedding": [(b,), ()],
                "the 1280-wide MLP output instead of the 320-wide sinusoidal embedding": (b, 1280),
                "only half of the embedding (160 instead of 320)": (b, 160),
            }, _TIME_HINTS),
        ]
    return _check_shapes(name, cases, raise_on_failure)


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


def check_time_embedding(module_cls: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 01): module_cls(n_embd) -> a module with linear_1 (n_embd -> 4 n_embd)
    and linear_2 (4 n_embd -> 4 n_embd); forward (N, n_embd) -> (N, 4 n_embd).

    The learner's module gets the reference's (perturbed) weights, then both see the same
    sinusoidal embeddings of four timesteps.
    """
    from torch.nn import functional as F

    from .time_embedding import TimeEmbedding, sinusoidal_embedding

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


# --- notebook 02: GroupNorm, the time broadcast, the residual block -------------------------------

_GROUPNORM_HINTS = {
    "one group per channel (that is InstanceNorm)": "Split the C channels into num_groups groups of C // num_groups "
                                                    "consecutive channels, and normalise each group as a whole.",
    "a single group for all channels (like LayerNorm)": "Use num_groups groups, not one: x.view(B, G, C // G, H, W).",
    "groups made of every G-th channel": "Groups are consecutive channels: reshape to (B, G, C // G, H, W), not "
                                         "(B, C // G, G, H, W). With the wrong order, channels 0, G, 2G, ... share statistics.",
    "statistics shared across the batch": "GroupNorm never mixes samples: compute the mean and variance per sample "
                                          "and group (dims 2, 3, 4 of the (B, G, C//G, H, W) view), not over dim 0.",
    "unbiased variance (divides by n - 1)": "torch.var divides by n - 1 by default; normalisation uses the plain "
                                            "mean of squares: var(..., unbiased=False) (or correction=0).",
    "eps added outside the square root": "Divide by sqrt(var + eps), not sqrt(var) + eps.",
    "weight and bias not applied": "After normalising, scale and shift each channel: "
                                   "x * weight.view(1, C, 1, 1) + bias.view(1, C, 1, 1).",
}


def _group_norm_manual(x, groups, weight, bias, eps, *, interleaved=False, over_batch=False,
                       unbiased=False, eps_outside=False, affine=True):
    """A group norm with switches for each typical mistake. x: (B, C, H, W) -> (B, C, H, W)."""
    b, c, h, w = x.shape
    if interleaved:  # channel k goes to group k % G: (B, C//G, G, H, W) -> (B, G, C//G, H, W)
        xg = x.view(b, c // groups, groups, h, w).transpose(1, 2)
    else:  # (B, C, H, W) -> (B, G, C//G, H, W)
        xg = x.view(b, groups, c // groups, h, w)
    dims = (0, 2, 3, 4) if over_batch else (2, 3, 4)
    mean = xg.mean(dim=dims, keepdim=True)
    var = xg.var(dim=dims, keepdim=True, unbiased=unbiased)
    xg = (xg - mean) / (var.sqrt() + eps if eps_outside else (var + eps).sqrt())
    if interleaved:  # back to channel order: (B, G, C//G, H, W) -> (B, C//G, G, H, W) -> (B, C, H, W)
        x = xg.transpose(1, 2).reshape(b, c, h, w)
    else:
        x = xg.reshape(b, c, h, w)
    return x * weight.view(1, c, 1, 1) + bias.view(1, c, 1, 1) if affine else x


def check_groupnorm(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 02): fn(x, num_groups, weight, bias, eps) -> GroupNorm of x.

    x: (B, C, H, W); weight, bias: (C,). Checked on channels with very different means and
    scales (so that wrong groups show), a large eps = 0.1 (so that eps in the wrong place shows)
    and weights away from 1 and biases away from 0 (so that a forgotten affine step shows).
    """
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(2)
    b, c, h, w, groups, eps = 2, 12, 5, 7, 4, 0.1
    scale = torch.linspace(0.5, 3.0, c).view(1, c, 1, 1)
    offset = torch.linspace(-2.0, 2.0, c)[torch.randperm(c, generator=g)].view(1, c, 1, 1)
    x = torch.randn(b, c, h, w, generator=g) * scale + offset  # (B, C, H, W)
    x[1] = 3 * x[1] + 1  # the two samples have different statistics too
    weight = 1 + 0.5 * torch.randn(c, generator=g)
    bias = 0.5 * torch.randn(c, generator=g)
    name = "group_norm"
    got = _call(name, fn, x.clone(), groups, weight.clone(), bias.clone(), eps,
                hint="fn(x, num_groups, weight, bias, eps) should return a tensor shaped like x.")
    xd, wd, bd = x.double(), weight.double(), bias.double()
    expected = F.group_norm(xd, groups, wd, bd, eps)
    mistakes = {
        "one group per channel (that is InstanceNorm)": F.group_norm(xd, c, wd, bd, eps),
        "a single group for all channels (like LayerNorm)": F.group_norm(xd, 1, wd, bd, eps),
        "groups made of every G-th channel": _group_norm_manual(xd, groups, wd, bd, eps, interleaved=True),
        "statistics shared across the batch": _group_norm_manual(xd, groups, wd, bd, eps, over_batch=True),
        "unbiased variance (divides by n - 1)": _group_norm_manual(xd, groups, wd, bd, eps, unbiased=True),
        "eps added outside the square root": _group_norm_manual(xd, groups, wd, bd, eps, eps_outside=True),
        "weight and bias not applied": _group_norm_manual(xd, groups, wd, bd, eps, affine=False),
    }
    return compare(name, got, expected, mistakes, _named(_GROUPNORM_HINTS),
                   general_hint="Reshape (B, C, H, W) -> (B, G, C//G, H, W), normalise over the last three "
                                "dims, reshape back, then apply weight and bias per channel.",
                   raise_on_failure=raise_on_failure)


_BROADCAST_HINTS = {
    "time added without unsqueeze": "PyTorch aligns shapes from the RIGHT: a (B, C) tensor lines up with the "
        "feature's last two axes (H, W), not with (B, C). Here H == B and W == C, so it even ran without an error. "
        "Make the time (B, C, 1, 1) first: time[:, :, None, None] or time.unsqueeze(-1).unsqueeze(-1).",
    "time reshaped to (B, 1, 1, C)": "The channel axis of the feature is axis 1: make the time (B, C, 1, 1), "
                                     "not (B, 1, 1, C).",
    "only the first sample's time used": "Keep the batch axis: each sample gets its own time vector, time[:, :, None, None].",
    "time multiplied instead of added": "The residual block ADDS the time vector to every pixel.",
}


def check_time_broadcast(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 02): fn(feature (B, C, H, W), time (B, C)) -> feature + time at every pixel.

    Checked with B = H = 2 and C = W = 3 on purpose: then the two classic broadcast mistakes run
    WITHOUT an error and silently add the wrong numbers, which is what makes them dangerous.
    """
    g = torch.Generator().manual_seed(3)
    feature = torch.randn(2, 3, 2, 3, generator=g)  # (B, C, H, W) with H == B, W == C
    time = torch.randn(2, 3, generator=g)  # (B, C)
    name = "add_time"
    got = _call(name, fn, feature.clone(), time.clone(),
                hint="Shapes: feature (B, C, H, W), time (B, C); make the time (B, C, 1, 1) before adding.")
    expected = feature + time[:, :, None, None]  # (B, C, H, W) + (B, C, 1, 1)
    mistakes = {
        "time added without unsqueeze": feature + time,  # (B, C, H, W) + (H, W): wrong but legal here
        "time reshaped to (B, 1, 1, C)": feature + time[:, None, None, :],
        "only the first sample's time used": feature + time[:1, :, None, None],
        "time multiplied instead of added": feature * time[:, :, None, None],
    }
    return compare(name, got, expected, mistakes, _named(_BROADCAST_HINTS),
                   general_hint="feature + time[:, :, None, None]: (B, C, H, W) + (B, C, 1, 1).",
                   raise_on_failure=raise_on_failure)


_RESIDUAL_HINTS = {
    "residual forgotten": "Return merged + self.residual_layer(residue): the block adds its input back.",
    "residual saved after the first GroupNorm": "Save residue = feature BEFORE anything touches it.",
    "no SiLU on the time embedding": "Apply F.silu to the time embedding before linear_time.",
    "no SiLU after the GroupNorms": "Each GroupNorm is followed by F.silu, before its conv.",
    "time added after the second conv": "Add the time vector between the two convs: to the output of "
                                        "conv_feature, before groupnorm_merged.",
    "groupnorm_feature and groupnorm_merged swapped": "groupnorm_feature normalises the input, "
                                                      "groupnorm_merged the sum of features and time.",
    "no 1x1 conv on the residual when the channels change": "When in_channels != out_channels the input cannot "
        "be added to the output: residual_layer = nn.Conv2d(in_channels, out_channels, kernel_size=1).",
    "a 1x1 conv on the residual although the channels are equal": "When in_channels == out_channels, "
        "residual_layer = nn.Identity() (SD v1 has no weights there; real checkpoints would not load).",
}


def _residual_mistakes(block, x, time) -> Dict[str, torch.Tensor]:
    """Outputs of typical wrong residual blocks built from `block`'s own layers."""
    from torch.nn import functional as F

    gn1, conv1, lin, gn2, conv2, res = (block.groupnorm_feature, block.conv_feature, block.linear_time,
                                        block.groupnorm_merged, block.conv_merged, block.residual_layer)
    t = lin(F.silu(time))[:, :, None, None]  # (B, n_time) -> (B, out, 1, 1)
    h = conv1(F.silu(gn1(x)))  # (B, in, H, W) -> (B, out, H, W)
    tail = conv2(F.silu(gn2(h + t)))
    out = {
        "residual forgotten": tail,
        "residual saved after the first GroupNorm": tail + res(gn1(x)),
        "no SiLU on the time embedding": conv2(F.silu(gn2(h + lin(time)[:, :, None, None]))) + res(x),
        "no SiLU after the GroupNorms": conv2(gn2(conv1(gn1(x)) + t)) + res(x),
        "time added after the second conv": conv2(F.silu(gn2(h))) + t + res(x),
    }
    if block.in_channels == block.out_channels:
        out["groupnorm_feature and groupnorm_merged swapped"] = conv2(F.silu(gn1(conv1(F.silu(gn2(x))) + t))) + x
    return out


def check_residual_block(module_cls: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Check a learner's UNET_ResidualBlock class: module_cls(in_channels, out_channels) with the
    notes' attribute names; forward(feature (B, in, H, W), time (B, 1280)) -> (B, out, H, W).

    Two blocks are checked: 64 -> 96 channels (needs the 1x1 conv on the residual) and 64 -> 64
    (needs an Identity). Weights come from `sdcourse.UNET_ResidualBlock`, perturbed so that no
    norm or bias hides behind its 1/0 init.
    """
    from .unet import UNET_ResidualBlock

    result = None
    for cin, cout in ((64, 96), (64, 64)):
        name = f"UNET_ResidualBlock({cin}, {cout})"
        reference = perturb_(UNET_ResidualBlock(cin, cout), seed=4)
        learner = _call(name, module_cls, cin, cout, hint="module_cls(in_channels, out_channels) should build it.")
        ours, theirs = set(learner.state_dict()), set(reference.state_dict())
        if cin != cout and "residual_layer.weight" in theirs - ours:
            mistake = "no 1x1 conv on the residual when the channels change"
        elif cin == cout and "residual_layer.weight" in ours - theirs:
            mistake = "a 1x1 conv on the residual although the channels are equal"
        else:
            mistake = None
        if mistake:
            result = CheckResult(name, False, float("inf"), mistake, _named(_RESIDUAL_HINTS)[mistake])
            return _finish(result, raise_on_failure)
        copy_weights(learner, reference)
        g = torch.Generator().manual_seed(5)
        x = torch.randn(2, cin, 6, 5, generator=g)  # (B, in, H, W), H != W
        time = torch.randn(2, 1280, generator=g)  # (B, n_time): one time vector per sample
        with torch.no_grad():
            got = _call(name, learner, x, time,
                        hint="If it is a shape error: is the time (B, out, 1, 1) before the addition, and does "
                             "the residual go through residual_layer?")
            expected = reference(x, time)
            mistakes = _residual_mistakes(reference, x, time)
        result = compare(name, got, expected, mistakes, _named(_RESIDUAL_HINTS),
                         general_hint="Compare your forward line by line with the cells above.",
                         raise_on_failure=raise_on_failure)
        if not result.passed:
            return result
    return result


def check_residual_block_parameters(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 02): fn(in_channels, out_channels, n_time) -> number of parameters of a
    UNET_ResidualBlock, from a formula. Checked on SD v1's blocks (320->320, 320->640, 2560->1280,
    960->320) against a count of the real module built on the meta device."""
    from .unet import UNET_ResidualBlock

    pairs = ((320, 320), (320, 640), (2560, 1280), (960, 320))
    n_time = 1280
    got, expected = [], []
    mistakes = {k: [] for k in ("1x1 residual conv forgotten", "biases forgotten", "GroupNorm weights and biases forgotten",
                                "1x1 residual conv counted also when the channels are equal",
                                "3x3 kernels counted as 3 weights instead of 9")}
    for cin, cout in pairs:
        with torch.device("meta"):
            block = UNET_ResidualBlock(cin, cout, n_time=n_time)
        count = sum(p.numel() for p in block.parameters())
        expected.append(count)
        one_by_one = cin * cout + cout if cin != cout else 0
        biases = sum(p.numel() for n, p in block.named_parameters() if n.endswith("bias") and "groupnorm" not in n)
        mistakes["1x1 residual conv forgotten"].append(count - one_by_one)
        mistakes["biases forgotten"].append(count - biases)
        mistakes["GroupNorm weights and biases forgotten"].append(count - 2 * cin - 2 * cout)
        mistakes["1x1 residual conv counted also when the channels are equal"].append(
            count + (cin * cout + cout if cin == cout else 0))
        mistakes["3x3 kernels counted as 3 weights instead of 9"].append(count - 6 * (cin * cout + cout * cout))
        value = _call("residual_block_parameters", fn, cin, cout, n_time, hint="fn(in_channels, out_channels, n_time) -> int.")
        got.append(float(value))
    # every case differs from every mistake in at least one pair (320->320 has no 1x1 conv, the others have)
    mistakes = {k: torch.tensor(v, dtype=torch.float64) for k, v in mistakes.items()}
    hints = {
        "1x1 residual conv forgotten": "When the channels change, residual_layer is a 1x1 conv: in*out weights + out biases.",
        "biases forgotten": "Every Conv2d and Linear here has a bias: one per output channel.",
        "GroupNorm weights and biases forgotten": "Each GroupNorm has a weight and a bias per channel: 2*in + 2*out in all.",
        "1x1 residual conv counted also when the channels are equal": "With equal channels the residual is an Identity: no weights.",
        "3x3 kernels counted as 3 weights instead of 9": "A 3x3 conv has in*out*3*3 weights.",
    }
    # the 320->320 pair makes the two 1x1-conv mistakes differ from each other and from the reference
    return compare("residual_block_parameters", torch.tensor(got, dtype=torch.float64),
                   torch.tensor(expected, dtype=torch.float64), mistakes, _named(hints), atol=0.5,
                   general_hint="Count layer by layer: GroupNorm 2*C, Conv3x3 in*out*9 + out, Linear n_time*out + out.",
                   raise_on_failure=raise_on_failure)


# ---------------------------------------------------------------------------------------------
# Notebooks 03-05: attention, the image as a sequence, the UNet.
# Each checker runs the reference on fixed inputs, computes what typical mistakes would give
# (written out below, one `mistake` switch each), and hands both to `compare`.
# ---------------------------------------------------------------------------------------------

# Typical mistakes, by name (the names appear in the hints and in CheckResult.mistake).
MISSING_SCALE = "missing 1/sqrt(d_head)"
SCALE_BY_D_HEAD = "divided by d_head instead of sqrt(d_head)"
SOFTMAX_OVER_QUERIES = "softmax over the queries instead of the keys"
HEADS_BY_VIEW = "heads split with a bare view/reshape to (B, H, L, d_head), no transpose"
HEADS_MERGED_BY_VIEW = "heads merged with a bare view/reshape, no transpose back"
HEADS_INTERLEAVED = "heads taken from interleaved channels"
KEYS_VALUES_SWAPPED = "keys and values swapped"
RESHAPE_WITHOUT_TRANSPOSE = "reshape without transpose (channels and pixels mixed)"
COLUMN_MAJOR = "pixels in column-major order (width before height)"
GEGLU_SWAPPED = "GeGLU halves swapped (gate first, value second)"
TANH_GELU = "tanh-approximate GELU instead of the exact one"
RELU_GATE = "ReLU instead of GELU (that is ReGLU)"
SILU_GATE = "SiLU instead of GELU (that is SwiGLU)"
NO_LONG_RESIDUAL = "forgot the long residual"
NO_SELF_RESIDUAL = "forgot the short residual around self-attention"
NO_CROSS_RESIDUAL = "forgot the short residual around cross-attention"
NO_FF_RESIDUAL = "forgot the short residual around the feed-forward"
GROUPNORM_EPS = "GroupNorm eps 1e-5 (attention blocks use 1e-6)"
CROSS_BEFORE_SELF = "cross-attention before self-attention"
SKIP_FIRST = "skips concatenated in the wrong order: cat(skip, x)"
NO_BOTTLENECK = "bottleneck skipped"
SKIP_NOT_ADDED = "forgot to add the skip's channels"
SKIPS_AS_QUEUE = "skips taken first-in-first-out (a queue, not a stack)"
TILED = "repeat instead of repeat_interleave (the image tiled, not each pixel doubled)"
BILINEAR = "bilinear instead of nearest interpolation"

_ATTENTION_ADVICE = {
    MISSING_SCALE: "Divide Q K^T by sqrt(d_head) before the softmax; without it the scores grow with d_head "
                   "and the softmax saturates.",
    SCALE_BY_D_HEAD: "The scale is 1/sqrt(d_head): it brings the scores' variance (about d_head) back to 1.",
    SOFTMAX_OVER_QUERIES: "Use softmax(dim=-1): for each query, the weights over the keys sum to 1.",
    HEADS_BY_VIEW: "Split with .view(B, L, H, d_head).transpose(1, 2). A direct .view(B, H, L, d_head) cuts the "
                   "sequence, not the channels, into heads.",
    HEADS_MERGED_BY_VIEW: "Merge with .transpose(1, 2).reshape(B, L, H * d_head); reshaping (B, H, L, d_head) "
                          "directly mixes the tokens of different heads.",
    HEADS_INTERLEAVED: "Head h owns the contiguous channels h*d_head .. (h+1)*d_head - 1: view as (B, L, H, d_head), "
                       "not (B, L, d_head, H).",
    KEYS_VALUES_SWAPPED: "k_proj(context) gives the keys (compared with the queries), v_proj(context) the values "
                         "(mixed by the weights).",
    RESHAPE_WITHOUT_TRANSPOSE: "Go (B, C, H, W) -> view(B, C, H*W) -> transpose(1, 2). A bare reshape(B, H*W, C) "
                               "keeps the shape right but fills each token with one channel's neighbouring pixels.",
    COLUMN_MAJOR: "Token index = row * W + column (row-major): flatten H and W as they are stored, without "
                  "swapping them first.",
    GEGLU_SWAPPED: "x, gate = h.chunk(2, dim=-1): the FIRST half is the value, the SECOND half goes through GELU.",
    TANH_GELU: "SD uses the exact GELU: F.gelu(gate), not F.gelu(gate, approximate='tanh').",
    RELU_GATE: "The gate goes through GELU, not ReLU.",
    SILU_GATE: "The gate goes through GELU, not SiLU.",
    NO_LONG_RESIDUAL: "Return self.conv_output(x) + residue_long, where residue_long is the block's input.",
    NO_SELF_RESIDUAL: "After self-attention add residue_short (the tokens before layernorm_1).",
    NO_CROSS_RESIDUAL: "After cross-attention add residue_short (the tokens before layernorm_2).",
    NO_FF_RESIDUAL: "After linear_geglu_2 add residue_short (the tokens before layernorm_3).",
    GROUPNORM_EPS: "nn.GroupNorm(n_groups, channels, eps=1e-6) in the attention block (SD's checkpoint was trained so).",
    CROSS_BEFORE_SELF: "Self-attention (layernorm_1, attention_1) comes first, then cross-attention with the context.",
    SKIP_FIRST: "Concatenate the current features first: torch.cat((x, skip_connections.pop()), dim=1).",
    NO_BOTTLENECK: "Run x = self.bottleneck(x, context, time) between the encoders and the decoders.",
    SKIP_NOT_ADDED: "A decoder's input is the current features AND the skip it pops: add both channel counts.",
    SKIPS_AS_QUEUE: "The skips form a stack: the decoder pops the LAST encoder output first (list.pop()).",
    TILED: "Double each pixel: repeat_interleave(2, dim=-1) and repeat_interleave(2, dim=-2), not .repeat(...).",
    BILINEAR: "SD's Upsample uses mode='nearest': every pixel becomes a 2x2 block of copies.",
}


def _named_hints(*names: str) -> Dict[str, str]:
    """mistake name -> 'It looks like: <name>. <advice>', so a wrong answer names its mistake."""
    return _named({name: _ATTENTION_ADVICE[name] for name in names})


class _seeded:
    """Fixed inputs and weights for a checker without touching the learner's random stream."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


def _build(cls, name: str, *args, **kwargs) -> torch.nn.Module:
    """Instantiate the learner's class with the reference's arguments, or explain why it failed."""
    try:
        return cls(*args, **kwargs).float().cpu()
    except Exception as error:  # noqa: BLE001 - we report every kind of failure to the learner
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        raise ExerciseError(f"[wrong] {name}: {cls.__name__}({shown}) failed with {type(error).__name__}: {error}") from error


def _run(fn: Callable, name: str, hint: str = "") -> torch.Tensor:
    """Call the learner's code; turn a crash into an ExerciseError that says what failed."""
    try:
        with torch.no_grad():
            return fn()
    except ExerciseError:
        raise
    except Exception as error:  # noqa: BLE001
        raise ExerciseError(f"[wrong] {name}: your code raised {type(error).__name__}: {error}. {hint}".rstrip()) from error


# --- attention, written out with a switch for each typical mistake -----------------------------

def _split_heads(x: torch.Tensor, n_heads: int, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, L, H * Dh) -> (B, H, L, Dh), or what a typical mistake makes of it."""
    b, length, d = x.shape
    if mistake == HEADS_BY_VIEW:
        # (B, L, H * Dh) -> (B, H, L, Dh) by reinterpreting memory: tokens cut into heads
        return x.reshape(b, n_heads, length, d // n_heads)
    if mistake == HEADS_INTERLEAVED:
        # (B, L, H * Dh) -> (B, L, Dh, H) -> (B, H, L, Dh): head h gets channels h, h + H, ...
        return x.reshape(b, length, d // n_heads, n_heads).permute(0, 3, 1, 2)
    # (B, L, H * Dh) -> (B, L, H, Dh) -> (B, H, L, Dh)
    return x.reshape(b, length, n_heads, d // n_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, H, L, Dh) -> (B, L, H * Dh), or what a typical mistake makes of it."""
    b, h, length, dh = x.shape
    if mistake in (HEADS_BY_VIEW, HEADS_MERGED_BY_VIEW):
        # (B, H, L, Dh) -> (B, L, H * Dh) without the transpose
        return x.reshape(b, length, h * dh)
    if mistake == HEADS_INTERLEAVED:
        # (B, H, L, Dh) -> (B, L, Dh, H) -> (B, L, H * Dh)
        return x.permute(0, 2, 3, 1).reshape(b, length, h * dh)
    # (B, H, L, Dh) -> (B, L, H, Dh) -> (B, L, H * Dh)
    return x.transpose(1, 2).reshape(b, length, h * dh)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """softmax(Q K^T / sqrt(Dh)) V, or a typical mistake. (B, H, Lq, Dh), (B, H, Lk, Dh) x2 -> (B, H, Lq, Dh)."""
    d_head = q.shape[-1]
    scale = {MISSING_SCALE: 1.0, SCALE_BY_D_HEAD: 1.0 / d_head}.get(mistake, d_head ** -0.5)
    # (B, H, Lq, Dh) @ (B, H, Dh, Lk) -> (B, H, Lq, Lk)
    scores = (q @ k.transpose(-1, -2)) * scale
    weights = scores.softmax(dim=-2 if mistake == SOFTMAX_OVER_QUERIES else -1)
    # (B, H, Lq, Lk) @ (B, H, Lk, Dh) -> (B, H, Lq, Dh)
    return weights @ v


def _multi_head(q, k, v, n_heads: int, out_proj, mistake: Optional[str] = None) -> torch.Tensor:
    """Projected (B, Lq, C), (B, Lk, C), (B, Lk, C) -> (B, Lq, C) through heads, attention, out_proj."""
    q, k, v = (_split_heads(t, n_heads, mistake) for t in (q, k, v))
    return out_proj(_merge_heads(_attend(q, k, v, mistake), mistake))


def check_split_heads(split_heads: Callable, merge_heads: Optional[Callable] = None, raise_on_failure: bool = True):
    """split_heads(x (B, L, H*Dh), n_heads) -> (B, H, L, Dh); merge_heads((B, H, L, Dh)) -> (B, L, H*Dh).

    Returns the CheckResult of the last check made (merge_heads when it is given).
    """
    with _seeded(0):
        x = torch.randn(2, 5, 24)  # B=2, L=5, 4 heads x 6
    mistakes = (HEADS_BY_VIEW, HEADS_INTERLEAVED)
    expected = _split_heads(x, 4)
    got = _run(lambda: split_heads(x.clone(), 4), "split_heads")
    result = compare(
        "split_heads", got, expected, {m: _split_heads(x, 4, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected x.view(B, L, n_heads, d_head).transpose(1, 2).", raise_on_failure=raise_on_failure,
    )
    if merge_heads is None:
        return result
    mistakes = (HEADS_MERGED_BY_VIEW, HEADS_INTERLEAVED)
    got = _run(lambda: merge_heads(expected.clone()), "merge_heads")
    return compare(
        "merge_heads", got, x, {m: _merge_heads(expected, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected x.transpose(1, 2).reshape(B, L, n_heads * d_head).", raise_on_failure=raise_on_failure,
    )


def check_scaled_dot_product(attention: Callable, raise_on_failure: bool = True) -> CheckResult:
    """attention(q, k, v) with (B, H, Lq, Dh), (B, H, Lk, Dh), (B, H, Lk, Dh) -> (B, H, Lq, Dh).

    If it returns a tuple (output, weights), the output is checked.
    """
    with _seeded(0):
        q, k, v = 2 * torch.randn(2, 3, 6, 8), 2 * torch.randn(2, 3, 4, 8), torch.randn(2, 3, 4, 8)
    got = _run(lambda: attention(q.clone(), k.clone(), v.clone()), "scaled dot-product attention")
    if isinstance(got, (tuple, list)):
        got = got[0]
    mistakes = (MISSING_SCALE, SCALE_BY_D_HEAD, SOFTMAX_OVER_QUERIES)
    return compare(
        "scaled dot-product attention", got, _attend(q, k, v), {m: _attend(q, k, v, m) for m in mistakes},
        _named_hints(*mistakes), general_hint="Expected softmax(q @ k.transpose(-1, -2) / sqrt(d_head), dim=-1) @ v.",
        raise_on_failure=raise_on_failure,
    )


def _load_reference_weights(learner: torch.nn.Module, reference: torch.nn.Module, name: str) -> None:
    extra = [k for k in learner.state_dict() if k not in reference.state_dict()]
    if any(k.endswith(("in_proj.bias", "q_proj.bias", "k_proj.bias", "v_proj.bias")) for k in extra):
        raise ExerciseError(
            f"[wrong] {name}: your q/k/v projection has a bias ({extra}). SD's UNet has none: use "
            "nn.Linear(..., bias=False) for q, k, v (the output projection keeps its bias)."
        )
    copy_weights(learner, reference)


def check_self_attention(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(n_heads, d_embed) with `in_proj` (fused q/k/v, no bias) and `out_proj`, forward(x (B, L, d_embed))."""
    from .attention import SelfAttention

    with _seeded(0):
        reference = perturb_(SelfAttention(4, 32), seed=1)
        x = 2 * torch.randn(2, 6, 32)
    learner = _build(cls, "SelfAttention", 4, 32)
    _load_reference_weights(learner, reference, "SelfAttention")
    got = _run(lambda: learner(x.clone()), "SelfAttention")
    with torch.no_grad():
        expected = reference(x)
        # (B, L, C) -> (B, L, 3C) -> 3 x (B, L, C): the fused projection
        q, k, v = reference.in_proj(x).chunk(3, dim=-1)
        mistakes = (MISSING_SCALE, SOFTMAX_OVER_QUERIES, HEADS_BY_VIEW, HEADS_MERGED_BY_VIEW, HEADS_INTERLEAVED)
        outputs = {m: _multi_head(q, k, v, 4, reference.out_proj, m) for m in mistakes}
    return compare("SelfAttention", got, expected, outputs, _named_hints(*mistakes), raise_on_failure=raise_on_failure)


def check_cross_attention(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(n_heads, d_embed, d_cross) with q_proj, k_proj, v_proj (no bias), out_proj; forward(x, context)."""
    from .attention import CrossAttention

    with _seeded(0):
        reference = perturb_(CrossAttention(4, 32, 24), seed=2)
        x, context = 2 * torch.randn(2, 6, 32), 2 * torch.randn(2, 5, 24)
    learner = _build(cls, "CrossAttention", 4, 32, 24)
    _load_reference_weights(learner, reference, "CrossAttention")
    got = _run(lambda: learner(x.clone(), context.clone()), "CrossAttention")
    with torch.no_grad():
        expected = reference(x, context)
        q, k, v = reference.q_proj(x), reference.k_proj(context), reference.v_proj(context)
        mistakes = (MISSING_SCALE, SOFTMAX_OVER_QUERIES, HEADS_BY_VIEW, HEADS_MERGED_BY_VIEW, KEYS_VALUES_SWAPPED)
        outputs = {m: _multi_head(q, k, v, 4, reference.out_proj, m) for m in mistakes[:-1]}
        outputs[KEYS_VALUES_SWAPPED] = _multi_head(q, v, k, 4, reference.out_proj)
    return compare("CrossAttention", got, expected, outputs, _named_hints(*mistakes), raise_on_failure=raise_on_failure)


# --- the image as a sequence, GeGLU, the attention block ---------------------------------------

def _to_sequence(x: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C), or a typical mistake."""
    b, c, h, w = x.shape
    if mistake == RESHAPE_WITHOUT_TRANSPOSE:
        return x.reshape(b, h * w, c)
    if mistake == COLUMN_MAJOR:
        # (B, C, H, W) -> (B, C, W, H) -> (B, C, W*H) -> (B, W*H, C)
        return x.transpose(2, 3).reshape(b, c, w * h).transpose(1, 2)
    # (B, C, H, W) -> (B, C, H*W) -> (B, H*W, C)
    return x.reshape(b, c, h * w).transpose(1, 2)


def _to_image(x: torch.Tensor, h: int, w: int, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W), or a typical mistake."""
    b, _, c = x.shape
    if mistake == RESHAPE_WITHOUT_TRANSPOSE:
        return x.reshape(b, c, h, w)
    if mistake == COLUMN_MAJOR:
        # (B, W*H, C) -> (B, C, W*H) -> (B, C, W, H) -> (B, C, H, W)
        return x.transpose(1, 2).reshape(b, c, w, h).transpose(2, 3)
    # (B, H*W, C) -> (B, C, H*W) -> (B, C, H, W)
    return x.transpose(1, 2).reshape(b, c, h, w)


def check_image_to_sequence(to_sequence: Callable, to_image: Optional[Callable] = None, raise_on_failure: bool = True):
    """to_sequence(x (B, C, H, W)) -> (B, H*W, C); to_image(seq (B, H*W, C), height, width) -> (B, C, H, W)."""
    with _seeded(0):
        x = torch.randn(2, 3, 4, 5)  # C, H, W all different, so a mix-up cannot hide
    mistakes = (RESHAPE_WITHOUT_TRANSPOSE, COLUMN_MAJOR)
    sequence = _to_sequence(x)
    got = _run(lambda: to_sequence(x.clone()), "image -> sequence")
    result = compare(
        "image -> sequence", got, sequence, {m: _to_sequence(x, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected x.view(B, C, H * W).transpose(1, 2).", raise_on_failure=raise_on_failure,
    )
    if to_image is None:
        return result
    got = _run(lambda: to_image(sequence.clone(), 4, 5), "sequence -> image")
    return compare(
        "sequence -> image", got, x, {m: _to_image(sequence, 4, 5, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected seq.transpose(1, 2).reshape(B, C, H, W).", raise_on_failure=raise_on_failure,
    )


def _geglu(h: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """(..., 2D) -> (..., D): value * GELU(gate), value the first half; or a typical mistake."""
    from torch.nn import functional as F

    # (..., 2D) -> 2 x (..., D)
    value, gate = h.chunk(2, dim=-1)
    if mistake == GEGLU_SWAPPED:
        value, gate = gate, value
    activation = {
        TANH_GELU: lambda g: F.gelu(g, approximate="tanh"), RELU_GATE: F.relu, SILU_GATE: F.silu,
    }.get(mistake, F.gelu)
    return value * activation(gate)


def check_geglu(geglu: Callable, raise_on_failure: bool = True) -> CheckResult:
    """geglu(h (..., 2D)) -> (..., D), where h is the output of linear_geglu_1."""
    with _seeded(0):
        h = 2 * torch.randn(2, 5, 16)
    mistakes = (GEGLU_SWAPPED, TANH_GELU, RELU_GATE, SILU_GATE)
    got = _run(lambda: geglu(h.clone()), "GeGLU")
    return compare(
        "GeGLU", got, _geglu(h), {m: _geglu(h, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected x, gate = h.chunk(2, dim=-1); x * F.gelu(gate).", raise_on_failure=raise_on_failure,
    )


def _attention_block(block, x: torch.Tensor, context: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """UNET_AttentionBlock.forward written out with the reference block's layers, or a typical mistake."""
    from torch.nn import functional as F

    norm = block.groupnorm
    eps = 1e-5 if mistake == GROUPNORM_EPS else norm.eps
    # (B, C, H, W) -> (B, C, H, W)
    h = block.conv_input(F.group_norm(x, norm.num_groups, norm.weight, norm.bias, eps))
    _, _, height, width = h.shape
    # (B, C, H, W) -> (B, H*W, C)
    tokens = _to_sequence(h, mistake)

    def self_attention(t):
        return block.attention_1(block.layernorm_1(t)) + (0 if mistake == NO_SELF_RESIDUAL else t)

    def cross_attention(t):
        return block.attention_2(block.layernorm_2(t), context) + (0 if mistake == NO_CROSS_RESIDUAL else t)

    for step in ((cross_attention, self_attention) if mistake == CROSS_BEFORE_SELF else (self_attention, cross_attention)):
        tokens = step(tokens)
    # (B, H*W, C) -> (B, H*W, 8C) -> (B, H*W, 4C) -> (B, H*W, C)
    feed_forward = block.linear_geglu_2(_geglu(block.linear_geglu_1(block.layernorm_3(tokens)), mistake))
    tokens = feed_forward + (0 if mistake == NO_FF_RESIDUAL else tokens)
    # (B, H*W, C) -> (B, C, H, W)
    out = block.conv_output(_to_image(tokens, height, width, mistake))
    return out if mistake == NO_LONG_RESIDUAL else out + x


def check_attention_block(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(n_head, n_embd, d_context=...) with the notes' attribute names (groupnorm, conv_input,
    layernorm_1..3, attention_1, attention_2, linear_geglu_1/2, conv_output); forward(x, context).
    Built as cls(8, 8, d_context=24): 64 channels, GroupNorm's default 32 groups."""
    from .unet import UNET_AttentionBlock

    with _seeded(0):
        reference = perturb_(UNET_AttentionBlock(8, 8, d_context=24), seed=3)
        # small inputs: GroupNorm's eps then matters, so a wrong eps shows
        x, context = 0.01 * torch.randn(2, 64, 4, 3), 2 * torch.randn(2, 5, 24)
    learner = _build(cls, "UNET_AttentionBlock", 8, 8, d_context=24)
    _load_reference_weights(learner, reference, "UNET_AttentionBlock")
    got = _run(lambda: learner(x.clone(), context.clone()), "UNET_AttentionBlock")
    mistakes = (NO_LONG_RESIDUAL, NO_SELF_RESIDUAL, NO_CROSS_RESIDUAL, NO_FF_RESIDUAL, RESHAPE_WITHOUT_TRANSPOSE,
                GEGLU_SWAPPED, TANH_GELU, GROUPNORM_EPS, CROSS_BEFORE_SELF)
    with torch.no_grad():
        expected = reference(x, context)
        outputs = {m: _attention_block(reference, x, context, m) for m in mistakes}
    return compare("UNET_AttentionBlock", got, expected, outputs, _named_hints(*mistakes),
                   atol=1e-4, raise_on_failure=raise_on_failure)


# --- the UNet ------------------------------------------------------------------------------------

def _decoder_in_channels(config, mistake: Optional[str] = None) -> torch.Tensor:
    """Channels entering each of the 12 decoders: current + popped skip (or a typical mistake)."""
    c1, c2, c3 = config.channels
    pushed = [c1, c1, c1, c1, c2, c2, c2, c3, c3, c3, c3, c3]  # what encoders 0..11 push
    outputs = [c3] * 6 + [c2] * 3 + [c1] * 3  # what decoders 0..11 give
    current, channels = c3, []  # the bottleneck gives c3
    for i in range(12):
        skip = pushed[i] if mistake == SKIPS_AS_QUEUE else pushed[11 - i]
        channels.append(current + (0 if mistake == SKIP_NOT_ADDED else skip))
        current = outputs[i]
    return torch.tensor(channels)


def check_decoder_channels(decoder_in_channels: Callable, raise_on_failure: bool = True) -> CheckResult:
    """decoder_in_channels(config) -> the 12 input channel counts of the decoders, for any UNetConfig.

    Checked on SD v1 and on a config with three different widths; the reference is read from the
    decoders' first layers of a UNET built on the meta device (no memory).
    """
    from .unet import UNET, UNetConfig

    result = None
    for config in (UNetConfig(), UNetConfig(channels=(24, 40, 56), n_head=4, n_groups=8)):
        with torch.device("meta"):
            unet = UNET(config)
        expected = torch.tensor([decoder[0].in_channels for decoder in unet.decoders])
        got = _run(lambda: torch.as_tensor(list(decoder_in_channels(config))), "decoder channels")
        mistakes = (SKIP_NOT_ADDED, SKIPS_AS_QUEUE)
        result = compare(
            f"decoder channels for channels={config.channels}", got, expected,
            {m: _decoder_in_channels(config, m) for m in mistakes}, _named_hints(*mistakes),
            general_hint="Decoder i receives what decoder i-1 gave (the bottleneck for i=0) plus the output of "
                         "encoder 11-i.", atol=0, raise_on_failure=raise_on_failure,
        )
        if not result.passed:
            return result
    return result


def check_upsample(upsample: Callable, raise_on_failure: bool = True) -> CheckResult:
    """upsample(x (B, C, H, W)) -> (B, C, 2H, 2W) by nearest neighbour, written without F.interpolate."""
    from torch.nn import functional as F

    with _seeded(0):
        x = torch.randn(2, 3, 4, 5)
    mistakes = {TILED: x.repeat(1, 1, 2, 2), BILINEAR: F.interpolate(x, scale_factor=2, mode="bilinear")}
    got = _run(lambda: upsample(x.clone()), "nearest upsampling")
    return compare(
        "nearest upsampling", got, F.interpolate(x, scale_factor=2, mode="nearest"), mistakes, _named_hints(*mistakes),
        general_hint="Every pixel becomes a 2x2 block of copies.", raise_on_failure=raise_on_failure,
    )


def _unet(unet, x: torch.Tensor, context: torch.Tensor, time: torch.Tensor, mistake: Optional[str] = None):
    """UNET.forward written out with the reference's layers, or a typical mistake."""
    skip_connections = []
    for layers in unet.encoders:
        x = layers(x, context, time)
        skip_connections.append(x)
    if mistake != NO_BOTTLENECK:
        x = unet.bottleneck(x, context, time)
    for layers in unet.decoders:
        skip = skip_connections.pop()
        # (B, C, h, w) + (B, C_skip, h, w) -> (B, C + C_skip, h, w)
        x = torch.cat((skip, x) if mistake == SKIP_FIRST else (x, skip), dim=1)
        x = layers(x, context, time)
    return x


def check_unet(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(config) with the notes' names (encoders, bottleneck, decoders); forward(x, context, time).
    Checked on an 8x8 latent in a config with half the tiny widths (16/32/64 channels): the same
    layout, a quarter of the parameters, so the check is quick."""
    from .unet import UNET, UNetConfig

    config = UNetConfig.tiny(channels=(16, 32, 64), d_context=32)
    with _seeded(0):
        reference = perturb_(UNET(config), seed=4, scale=0.02)
        x = torch.randn(1, config.in_channels, 8, 8)
        context, time = torch.randn(1, 3, config.d_context), torch.randn(1, config.n_time)
    learner = _build(cls, "UNET", config)
    copy_weights(learner, reference)
    got = _run(lambda: learner(x.clone(), context.clone(), time.clone()), "UNET",
               hint="If torch.cat failed on sizes: the decoders pop the LAST skip pushed (skip_connections.pop()).")
    mistakes = (SKIP_FIRST, NO_BOTTLENECK)
    with torch.no_grad():
        expected = reference(x, context, time)
        outputs = {m: _unet(reference, x, context, time, m) for m in mistakes}
    return compare("UNET", got, expected, outputs, _named_hints(*mistakes), atol=1e-4, raise_on_failure=raise_on_failure)


# ---------------------------------------------------------------------------------------------
# Notebook 06: forward noising, a DDIM step, classifier-free guidance (capstone helper).
# The references are written out here from the formulas, independently of sdcourse.sampling.
# ---------------------------------------------------------------------------------------------


def _noising_inputs():
    g = torch.Generator().manual_seed(6)
    x0, noise = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    return x0.double(), noise.double()


def check_add_noise(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 06): fn(x0, noise, alpha_bar) -> x_t = sqrt(abar) x0 + sqrt(1 - abar) noise.
    x0, noise: (B, C, H, W); alpha_bar: a float in (0, 1)."""
    x0, noise = _noising_inputs()
    abar = 0.3
    name = "add_noise(x0, noise, alpha_bar=0.3)"
    got = _call(name, fn, x0, noise, abar, hint="fn(x0, noise, alpha_bar) with a float alpha_bar.")
    mistakes = {
        "alpha_bar without the square roots": abar * x0 + (1 - abar) * noise,
        "sqrt(alpha_bar) on both terms": abar ** 0.5 * x0 + abar ** 0.5 * noise,
        "the two coefficients swapped": (1 - abar) ** 0.5 * x0 + abar ** 0.5 * noise,
        "no square root on the noise coefficient": abar ** 0.5 * x0 + (1 - abar) * noise,
    }
    hints = _named({k: "x_t = sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * noise: the squares of the two "
                       "coefficients add up to 1, so the variance stays 1." for k in mistakes})
    got = got.double() if isinstance(got, torch.Tensor) else got
    return compare(name, got, abar ** 0.5 * x0 + (1 - abar) ** 0.5 * noise, mistakes, hints, atol=1e-6,
                   raise_on_failure=raise_on_failure)


def check_ddim_step(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 06): fn(x_t, eps, alpha_bar_t, alpha_bar_prev) -> x_prev of a deterministic
    DDIM step (eta = 0): x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), then
    x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps."""
    x_t, eps = _noising_inputs()
    a_t, a_prev = 0.2, 0.6
    name = "ddim_step(x_t, eps, alpha_bar_t=0.2, alpha_bar_prev=0.6)"
    got = _call(name, fn, x_t, eps, a_t, a_prev, hint="fn(x_t, eps, alpha_bar_t, alpha_bar_prev) with floats.")
    x0 = (x_t - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
    mistakes = {
        "x_t used where x0_hat belongs": a_prev ** 0.5 * x_t + (1 - a_prev) ** 0.5 * eps,
        "x0_hat without dividing by sqrt(alpha_bar_t)": a_prev ** 0.5 * (x_t - (1 - a_t) ** 0.5 * eps) + (1 - a_prev) ** 0.5 * eps,
        "alpha_bar_t and alpha_bar_prev swapped": a_t ** 0.5 * ((x_t - (1 - a_prev) ** 0.5 * eps) / a_prev ** 0.5) + (1 - a_t) ** 0.5 * eps,
        "the noise not put back (x0_hat only)": x0,
        "alpha_bar without the square roots": a_prev * ((x_t - (1 - a_t) * eps) / a_t) + (1 - a_prev) * eps,
    }
    hints = _named({
        "x_t used where x0_hat belongs": "First estimate the clean image x0_hat from x_t and eps, then re-noise it to the level of prev.",
        "x0_hat without dividing by sqrt(alpha_bar_t)": "x0_hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t).",
        "alpha_bar_t and alpha_bar_prev swapped": "abar_t (noisier, smaller) is for x0_hat; abar_prev (larger) for the result.",
        "the noise not put back (x0_hat only)": "DDIM puts the predicted noise back at the lower level: + sqrt(1 - abar_prev) * eps.",
        "alpha_bar without the square roots": "Every coefficient is a square root: sqrt(abar), sqrt(1 - abar).",
    })
    got = got.double() if isinstance(got, torch.Tensor) else got
    return compare(name, got, a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps, mistakes, hints, atol=1e-6,
                   raise_on_failure=raise_on_failure)


def check_guidance(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 06): fn(eps_both, scale) with eps_both (2B, C, H, W) in the course's order
    [uncond, cond] -> eps_uncond + scale * (eps_cond - eps_uncond), (B, C, H, W)."""
    g = torch.Generator().manual_seed(7)
    eps_both = torch.randn(4, 4, 8, 8, generator=g).double()
    scale = 7.5
    name = "guidance(eps_both, scale=7.5)"
    got = _call(name, fn, eps_both, scale, hint="fn(eps_both, scale); eps_both holds [uncond, cond] along the batch.")
    uncond, cond = eps_both.chunk(2)
    mistakes = {
        "halves read as [cond, uncond]": cond + scale * (uncond - cond),
        "cond + scale * (cond - uncond)": cond + scale * (cond - uncond),
        "scale * cond only": scale * cond,
        "the scale ignored (cond only)": cond,
    }
    hints = _named({
        "halves read as [cond, uncond]": "This course (like diffusers) puts the unconditional half FIRST: "
                                         "eps_uncond, eps_cond = eps_both.chunk(2).",
        "cond + scale * (cond - uncond)": "Start from the unconditional prediction: uncond + scale * (cond - uncond).",
        "scale * cond only": "Guidance extrapolates from uncond towards cond: uncond + scale * (cond - uncond).",
        "the scale ignored (cond only)": "Multiply the difference (cond - uncond) by the scale and add it to uncond.",
    })
    got = got.double() if isinstance(got, torch.Tensor) else got
    return compare(name, got, uncond + scale * (cond - uncond), mistakes, hints, atol=1e-6,
                   raise_on_failure=raise_on_failure)


# ---------------------------------------------------------------------------------------------
# Notebook 07: the space-to-depth "VAE" and the localisation score (capstone helper).
# ---------------------------------------------------------------------------------------------


def check_space_to_depth(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 07): fn(images, p) -> F.pixel_unshuffle(images, p): (B, C, S, S) -> (B, C p^2, S/p, S/p),
    channel c * p^2 + dy * p + dx of cell (i, j) = pixel (i p + dy, j p + dx) of channel c."""
    g = torch.Generator().manual_seed(8)
    images = torch.randn(2, 3, 8, 12, generator=g)  # not square, so that swapped axes show
    name = "fold(images (2, 3, 8, 12), p=4)"
    got = _call(name, fn, images, 4, hint="fn(images, p) with images (B, C, H, W).")
    b, c, h, w = images.shape
    x = images.view(b, c, h // 4, 4, w // 4, 4)
    mistakes = {
        "offsets (dy, dx) swapped": x.permute(0, 1, 5, 3, 2, 4).reshape(b, c * 16, h // 4, w // 4),
        "channel last in the channel order": x.permute(0, 3, 5, 1, 2, 4).reshape(b, c * 16, h // 4, w // 4),
        "a plain reshape without permute": images.reshape(b, c * 16, h // 4, w // 4),
    }
    hints = _named({
        "offsets (dy, dx) swapped": "Within a cell, the row offset dy comes before the column offset dx: permute(0, 1, 3, 5, 2, 4).",
        "channel last in the channel order": "The colour channel is the slowest index: c * p^2 + dy * p + dx.",
        "a plain reshape without permute": "A reshape alone mixes pixels of different cells: first view (B, C, H/p, p, W/p, p), "
                                           "then move the two offsets next to the channel with permute.",
    })
    return compare(name, got, torch.nn.functional.pixel_unshuffle(images, 4), mistakes, hints, atol=0,
                   raise_on_failure=raise_on_failure)


def check_localisation_score(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 07): fn(token_map (g, g), mask (S, S) bool) -> float:
    (share of the map's mass in the mask, the mask average-pooled to g x g) / (the mask's area share)."""
    g = torch.Generator().manual_seed(9)
    token_map = torch.rand(8, 8, generator=g) ** 3
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[3:14, 5:17] = True  # cuts through cells, so that pooling matters
    name = "score(token_map (8, 8), mask (32, 32))"
    got = _call(name, fn, token_map.clone(), mask.clone(), hint="fn(token_map, mask) returns a float.")
    cover = torch.nn.functional.adaptive_avg_pool2d(mask.float()[None, None], 8)[0, 0]  # (8, 8)
    inside = float((token_map * cover).sum() / token_map.sum())
    expected = inside / float(cover.mean())
    hard = (cover > 0).float()
    values = {
        "not divided by the area share": inside,
        "mass inside not normalised by the total mass": float((token_map * cover).sum()) / float(cover.mean()),
        "cells counted as inside when the object touches them at all":
            float((token_map * hard).sum() / token_map.sum()) / float(hard.mean()),
    }
    hints = _named({
        "not divided by the area share": "Divide by mask.float().mean(): a big object gets a lot of mass by chance.",
        "mass inside not normalised by the total mass": "Divide the mass inside by token_map.sum(): a share, between 0 and 1.",
        "cells counted as inside when the object touches them at all": "Weigh each cell by the fraction the object covers "
                                                                       "(average pooling), not 0 or 1.",
    })
    as_tensor = torch.tensor(float(got)) if isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1) else got
    return compare(name, as_tensor.reshape(()) if isinstance(as_tensor, torch.Tensor) else as_tensor,
                   torch.tensor(expected), {k: torch.tensor(v) for k, v in values.items()}, hints, atol=1e-5,
                   raise_on_failure=raise_on_failure)
