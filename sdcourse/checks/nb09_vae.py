"""Checkers of notebook 09: the VAE's diagonal Gaussian, its asymmetric Downsample, its single-head
attention block, and the latent scale on the way to the UNet.

Each checker computes the reference (sdcourse's `vae` module) and the outputs of typical mistakes
written out below (a switch per mistake), so that a wrong answer is named: std = exp(logvar),
symmetric padding, the 1/sqrt(C) forgotten, the scale divided instead of multiplied, ...
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch
from torch.nn import functional as F

from .core import CheckResult, ExerciseError, _build, _finish, _named, _run, _seeded, compare, copy_weights, exercise
from .core import perturb_
from .hints import register

# --- typical mistakes, by name ------------------------------------------------------------------
STD_IS_EXP_LOGVAR = "std = exp(logvar): that is the variance, std = exp(0.5 * logvar)"
NO_CLAMP = "logvar not clamped to [-30, 20]"
HALVES_SWAPPED = "mean and logvar swapped (the first 4 channels are the means)"
SPLIT_BATCH = "split along the batch axis (dim 0) instead of the channels (dim 1)"
SAMPLE_WITH_VAR = "sample = mean + var * noise (the variance instead of the std)"
SAMPLE_UNIFORM = "uniform noise (torch.rand) instead of normal noise (torch.randn)"
SAMPLE_NO_NOISE = "sample returns the mean (no noise)"
GENERATOR_IGNORED = "the generator is not used (two samples with the same seed differ)"
MODE_SAMPLES = "mode draws a sample (the mode of a Gaussian is its mean)"

SYMMETRIC_PADDING = ("padding on the left and top: (1, 1, 1, 1), (1, 0, 1, 0) or padding=1 (on even sizes all three "
                     "are the same): same shape, windows one pixel up and left")
REFLECT_PADDING = "reflect/replicate padding instead of zeros"
NO_PADDING = "no padding: a stride-2 3x3 conv on 8 gives 3, not 4"
PAD_HEIGHT_ONLY = "F.pad's tuple read as (top, bottom, left, right): (0, 0, 1, 1) pads the height only"
PADDED_TWICE = "padded twice: F.pad(x, (0, 1, 0, 1)) and padding=1 in the conv"

NO_SCALE = "1/sqrt(C) forgotten"
SCALE_BY_C = "scores divided by C instead of sqrt(C)"
SOFTMAX_OVER_QUERIES = "softmax over the queries (each key's column sums to 1) instead of over the keys"
NO_RESIDUAL = "residual forgotten (x + ... at the end)"
NORMED_RESIDUAL = "residual taken after the GroupNorm (norm(x) + ...) instead of x + ..."
EPS_1E5 = "GroupNorm eps 1e-5 (the UNet's residual blocks) instead of the VAE's 1e-6"

RANGE_NOT_MAPPED = "pixels in [0, 1] sent to the encoder as they are (it expects [-1, 1]: x * 2 - 1)"
SCALE_DIVIDED = "divided by 0.18215 instead of multiplied (that is the decoder's side)"
SCALE_FORGOTTEN = "the latent scale 0.18215 forgotten"
SCALE_TWICE = "the latent scale applied twice"
SAMPLED_NOT_MEAN = "a random sample instead of the mean (two calls give different latents)"

ADVICE = {
    STD_IS_EXP_LOGVAR: "logvar is log(std^2), so std = exp(0.5 * logvar) and var = exp(logvar).",
    NO_CLAMP: "self.logvar = logvar.clamp(-30.0, 20.0) before std and var: keeps exp() finite for wild encoder outputs.",
    HALVES_SWAPPED: "mean, logvar = parameters.chunk(2, dim=1): the means come first.",
    SPLIT_BATCH: "The 8 channels are (4 means, 4 log-variances): chunk(2, dim=1).",
    SAMPLE_WITH_VAR: "A Normal(mean, std^2) sample is mean + std * noise, noise ~ Normal(0, 1).",
    SAMPLE_UNIFORM: "torch.randn draws Normal(0, 1) noise; torch.rand draws uniform [0, 1) noise.",
    SAMPLE_NO_NOISE: "sample() adds std * noise to the mean; mode() is the one that returns the mean.",
    GENERATOR_IGNORED: "Pass it on: torch.randn(shape, generator=generator, dtype=..., device=...).",
    MODE_SAMPLES: "mode() returns self.mean: a Gaussian is most likely at its mean.",
    SYMMETRIC_PADDING: "Pad one zero row and column on the right and bottom only: F.pad(x, (0, 1, 0, 1)), conv with "
                       "padding=0. The shape is the same either way; the windows are not.",
    REFLECT_PADDING: "Zeros: F.pad(x, (0, 1, 0, 1)) (mode='constant', value=0, the defaults).",
    NO_PADDING: "Pad one zero row and column first: F.pad(x, (0, 1, 0, 1)).",
    PAD_HEIGHT_ONLY: "F.pad's tuple starts with the LAST axis: (left, right, top, bottom) = (0, 1, 0, 1).",
    PADDED_TWICE: "The conv itself has padding=0; F.pad does all the padding.",
    NO_SCALE: "Divide the scores q k^T by sqrt(C) before the softmax (one head: its width is C).",
    SCALE_BY_C: "The scale is 1/sqrt(C), not 1/C.",
    SOFTMAX_OVER_QUERIES: "scores[b, i, j] = q_i . k_j: softmax over j, the keys (the last axis), so each query's "
                          "weights sum to 1.",
    NO_RESIDUAL: "The block returns x + proj_out(attention): add the input back.",
    NORMED_RESIDUAL: "Keep the input before the GroupNorm and add THAT back: x + proj_out(...).",
    EPS_1E5: "The whole VAE uses GroupNorm(n_groups, C, eps=1e-6), as CompVis' Normalize.",
    RANGE_NOT_MAPPED: "Map the pixels first: images * 2 - 1.",
    SCALE_DIVIDED: "Into the UNet: z * 0.18215. Out of it, before decode: latents / 0.18215.",
    SCALE_FORGOTTEN: "The UNet was trained on z * vae.scaling_factor: multiply.",
    SCALE_TWICE: "Multiply once.",
    SAMPLED_NOT_MEAN: "Take vae.encode(x).mean (or .mode()): this exercise asks for the deterministic latent.",
}


def _hints(*names: str) -> Dict[str, str]:
    return _named({name: ADVICE[name] for name in names})


def _mistake(name: str, mistake: str, raise_on_failure: bool, detail: str = "") -> CheckResult:
    """A named mistake found without comparing numbers (a shape, two samples that differ, ...)."""
    hint = (detail + " " + _hints(mistake)[mistake]).strip()
    return _finish(CheckResult(name, False, float("inf"), mistake=mistake, hint=hint), raise_on_failure)


def _wrong(name: str, hint: str, raise_on_failure: bool) -> CheckResult:
    return _finish(CheckResult(name, False, float("inf"), hint=hint), raise_on_failure)


def _tensor_of_shape(name: str, what: str, got, shape: tuple, raise_on_failure: bool,
                     shape_mistakes: Optional[Dict[tuple, str]] = None) -> Optional[CheckResult]:
    """A failing result when `got` is not a tensor of `shape`, naming a shape mistake; else None."""
    if not isinstance(got, torch.Tensor):
        return _wrong(name, f"{what} should be a torch.Tensor, got {type(got).__name__}.", raise_on_failure)
    if tuple(got.shape) != tuple(shape):
        mistake = (shape_mistakes or {}).get(tuple(got.shape))
        detail = f"{what} has shape {tuple(got.shape)}, expected {tuple(shape)}."
        if mistake:
            return _mistake(name, mistake, raise_on_failure, detail)
        return _wrong(name, detail, raise_on_failure)
    return None


def _reference_class(name: str):
    def reference():
        from .. import vae
        return getattr(vae, name)
    return reference


# --- the diagonal Gaussian --------------------------------------------------------------------------

LOGVAR_LOW, LOGVAR_HIGH = -30.0, 20.0


def _gaussian_parameters() -> torch.Tensor:
    """(2, 8, 3, 5): means, then log-variances in [-3, 3] with a few beyond the clamp (mean 0 there)."""
    with _seeded(0):
        mean = torch.randn(2, 4, 3, 5)
        logvar = 6 * torch.rand(2, 4, 3, 5) - 3
    logvar[0, 1, 0, :2] = torch.tensor([24.0, 26.0])   # above 20
    logvar[1, 2, 2, 3:] = torch.tensor([-36.0, -44.0])  # below -30
    mean[0, 1, 0, :2] = 0.0   # where std is huge or tiny, a zero mean keeps (sample - mean) / std exact
    mean[1, 2, 2, 3:] = 0.0
    return torch.cat([mean, logvar], dim=1)


def _gaussian_views(parameters: torch.Tensor, noise: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """What the check compares, concatenated: mean, logvar, log(std), (sample - mean) / std, mode,
    with the reference's mean and std in the last two; or what a typical mistake gives."""
    first, second = parameters.chunk(2, dim=1)
    mean, raw = (second, first) if mistake == HALVES_SWAPPED else (first, second)
    logvar = raw if mistake == NO_CLAMP else raw.clamp(LOGVAR_LOW, LOGVAR_HIGH)
    log_std = logvar if mistake == STD_IS_EXP_LOGVAR else 0.5 * logvar
    std = log_std.exp()
    spread = {SAMPLE_WITH_VAR: logvar.exp() * noise, SAMPLE_NO_NOISE: torch.zeros_like(noise)}.get(mistake, std * noise)
    ref_mean, ref_std = first, (0.5 * second.clamp(LOGVAR_LOW, LOGVAR_HIGH)).exp()
    sample = mean + spread
    mode = sample if mistake == MODE_SAMPLES else mean
    return _views(mean, logvar, std, sample, mode, ref_mean, ref_std)


def _views(mean, logvar, std, sample, mode, ref_mean, ref_std) -> torch.Tensor:
    # log(std) compares stds from 1e-13 to 2e4 on one relative scale; (sample - mean) / std is the noise
    parts = [mean, logvar, std.double().log(), (sample.double() - ref_mean.double()) / ref_std.double(), mode]
    return torch.cat([p.double().flatten() for p in parts])


def _noise(seed: int, shape) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


register("DiagonalGaussianDistribution",
         "__init__: split the 8 channels into two halves along dim 1 (torch.chunk); clamp the second half; "
         "std and var follow from logvar = log(std^2).",
         "sample: the reparameterisation trick, mean + std * a standard normal draw of the mean's shape "
         "(pass the generator on). mode: the most likely value of a Gaussian.")


@exercise("DiagonalGaussianDistribution",
          todo="the latent distribution from the encoder's (B, 8, h, w) output: mean, logvar, std, var, "
               "sample(generator), mode()",
          reference=_reference_class("DiagonalGaussianDistribution"))
def check_diagonal_gaussian(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(parameters (B, 8, h, w)) with .mean, .logvar, .std, .var (B, 4, h, w), .sample(generator), .mode()."""
    name = "DiagonalGaussianDistribution"
    parameters = _gaussian_parameters()
    dist = _run(lambda: cls(parameters.clone()), name)
    shape = (2, 4, 3, 5)
    for attribute in ("mean", "logvar", "std", "var"):
        got = getattr(dist, attribute, None)
        failed = _tensor_of_shape(name, f".{attribute}", got, shape, raise_on_failure,
                                  {(1, 8, 3, 5): SPLIT_BATCH})
        if failed is not None:
            return failed
    samples = [_run(lambda: dist.sample(generator=torch.Generator().manual_seed(7)), name) for _ in range(2)]
    mode = _run(lambda: dist.mode(), name)
    for what, got in (("sample()", samples[0]), ("mode()", mode)):
        failed = _tensor_of_shape(name, what, got, shape, raise_on_failure)
        if failed is not None:
            return failed
    if not torch.equal(mode, _run(lambda: dist.mode(), name)):
        return _mistake(name, MODE_SAMPLES, raise_on_failure, "Two calls of mode() differ.")
    if not torch.equal(samples[0], samples[1]):
        return _mistake(name, GENERATOR_IGNORED, raise_on_failure)
    ref_mean, ref_logvar = parameters.chunk(2, dim=1)
    ref_std = (0.5 * ref_logvar.clamp(LOGVAR_LOW, LOGVAR_HIGH)).exp()
    noise = _noise(7, shape)
    with torch.no_grad():
        got = _views(dist.mean, dist.logvar, dist.std, samples[0], mode, ref_mean, ref_std)
        var_ok = torch.allclose(dist.var.double().log(), ref_logvar.clamp(LOGVAR_LOW, LOGVAR_HIGH).double(), atol=1e-5)
    mistakes = (STD_IS_EXP_LOGVAR, NO_CLAMP, HALVES_SWAPPED, SAMPLE_WITH_VAR, SAMPLE_NO_NOISE, MODE_SAMPLES)
    candidates = {m: _gaussian_views(parameters, noise, m) for m in mistakes}
    uniform = torch.rand(shape, generator=torch.Generator().manual_seed(7))
    candidates[SAMPLE_UNIFORM] = _views(ref_mean, ref_logvar.clamp(LOGVAR_LOW, LOGVAR_HIGH), ref_std,
                                        ref_mean + ref_std * uniform, ref_mean, ref_mean, ref_std)
    result = compare(name, got, _gaussian_views(parameters, noise), candidates,
                     _hints(*mistakes, SAMPLE_UNIFORM),
                     general_hint="Compared in order: mean, logvar, log(std), (sample - mean) / std, mode.",
                     raise_on_failure=raise_on_failure)
    if result.passed and not var_ok:
        return _wrong(name, ".var should be exp(logvar) (the clamped logvar).", raise_on_failure)
    return result


# --- the asymmetric Downsample ------------------------------------------------------------------------

def _downsample(module, x: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """The reference Downsample's conv with the right padding, or a typical mistake's."""
    pad = (1, 1, 1, 1) if mistake == SYMMETRIC_PADDING else (0, 1, 0, 1)
    mode = "reflect" if mistake == REFLECT_PADDING else "constant"
    # (B, C, H, W) -> (B, C, H + 1, W + 1) -> (B, C, H/2, W/2)
    return module.conv(F.pad(x, pad, mode=mode))


register("Downsample",
         "__init__: one nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0), named conv.",
         "forward: F.pad takes (left, right, top, bottom) for the last two axes; CompVis adds one zero row and "
         "column at the end of each axis only (right and bottom).")


@exercise("Downsample", todo="a stride-2 3x3 conv that halves H and W, padded the way CompVis pads",
          reference=_reference_class("Downsample"))
def check_downsample(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(channels) with `conv`; forward(x (B, C, H, W), H and W even) -> (B, C, H/2, W/2)."""
    from ..vae import Downsample

    name = "Downsample"
    with _seeded(0):
        reference = perturb_(Downsample(4), seed=2)
        x = torch.randn(2, 4, 8, 12)  # not square: a swapped height and width shows
    with _seeded(1):
        learner = _build(cls, name, 4)
    try:
        copy_weights(learner, reference)
    except ExerciseError as error:
        if raise_on_failure:
            raise
        return CheckResult(name, False, float("inf"), hint=str(error))
    got = _run(lambda: learner(x.clone()), name)
    shape_mistakes = {(2, 4, 3, 5): NO_PADDING, (2, 4, 4, 5): PAD_HEIGHT_ONLY, (2, 4, 5, 7): PADDED_TWICE}
    failed = _tensor_of_shape(name, "the output", got, (2, 4, 4, 6), raise_on_failure, shape_mistakes)
    if failed is not None:
        return failed
    mistakes = (SYMMETRIC_PADDING, REFLECT_PADDING)
    with torch.no_grad():
        expected = _downsample(reference, x)
        candidates = {m: _downsample(reference, x, m) for m in mistakes}
    return compare(name, got, expected, candidates, _hints(*mistakes),
                   general_hint="Expected self.conv(F.pad(x, (0, 1, 0, 1))).", raise_on_failure=raise_on_failure)


# --- the VAE's attention block ------------------------------------------------------------------------

def _attention(block, x: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """AttnBlock written out with the reference block's layers; or a typical mistake."""
    norm = block.norm
    eps = 1e-5 if mistake == EPS_1E5 else norm.eps
    h = F.group_norm(x, norm.num_groups, norm.weight, norm.bias, eps)
    b, c, height, width = h.shape
    # (B, C, H, W) -> (B, C, H*W)
    q, k, v = (conv(h).flatten(2) for conv in (block.q, block.k, block.v))
    # (B, H*W, C) @ (B, C, H*W) -> (B, H*W queries, H*W keys)
    scores = q.transpose(1, 2) @ k
    scores = scores / {NO_SCALE: 1.0, SCALE_BY_C: c}.get(mistake, math.sqrt(c))
    weights = scores.softmax(dim=1 if mistake == SOFTMAX_OVER_QUERIES else -1)
    # (B, C, H*W keys) @ (B, H*W keys, H*W queries) -> (B, C, H*W) -> (B, C, H, W)
    out = block.proj_out((v @ weights.transpose(1, 2)).view(b, c, height, width))
    if mistake == NO_RESIDUAL:
        return out
    return (h if mistake == NORMED_RESIDUAL else x) + out


register("AttnBlock",
         "__init__: norm (GroupNorm with the VAE's eps), then q, k, v and proj_out: four 1x1 convs C -> C.",
         "forward: every pixel is a token of width C, one head. Flatten (H, W), scores = q^T k scaled by the "
         "head width, softmax over the keys, weighted sum of v, back to (B, C, H, W), proj_out, then the residual.")


@exercise("AttnBlock", todo="the VAE's one-head attention over pixels: norm, q/k/v/proj_out 1x1 convs, a residual",
          reference=_reference_class("AttnBlock"))
def check_vae_attention(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(channels, n_groups) with norm, q, k, v, proj_out; forward(x (B, C, H, W)) -> (B, C, H, W).
    Checked on perturbed weights, with F.scaled_dot_product_attention blocked (write it by hand)."""
    from ..vae import AttnBlock

    name = "AttnBlock"
    with _seeded(0):
        reference = perturb_(AttnBlock(8, n_groups=2), seed=4)
        x = 0.02 * torch.randn(2, 8, 3, 5) + 0.01  # small variance: GroupNorm's eps shows
    with _seeded(1):
        learner = _build(cls, name, 8, n_groups=2)
    try:
        copy_weights(learner, reference)
    except ExerciseError as error:
        if raise_on_failure:
            raise
        return CheckResult(name, False, float("inf"), hint=str(error))
    got = _run(lambda: learner(x.clone()), name, forbidden=("scaled_dot_product_attention", "multi_head_attention_forward"))
    failed = _tensor_of_shape(name, "the output", got, x.shape, raise_on_failure)
    if failed is not None:
        return failed
    mistakes = (NO_SCALE, SCALE_BY_C, SOFTMAX_OVER_QUERIES, NO_RESIDUAL, NORMED_RESIDUAL, EPS_1E5)
    with torch.no_grad():
        expected = _attention(reference, x)
        candidates = {m: _attention(reference, x, m) for m in mistakes}
    return compare(name, got, expected, candidates, _hints(*mistakes),
                   general_hint="Expected x + proj_out(v @ softmax(q^T k / sqrt(C), over the keys)).",
                   raise_on_failure=raise_on_failure)


# --- the latent scale ---------------------------------------------------------------------------------

def encode_for_unet_reference(vae, images: torch.Tensor) -> torch.Tensor:
    """The reference answer: images (B, 3, H, W) in [0, 1] -> the UNet's latents (B, 4, H/8, W/8)."""
    return vae.encode(images * 2 - 1).mean * vae.scaling_factor


def _encode_for_unet(vae, images: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    x = images if mistake == RANGE_NOT_MAPPED else images * 2 - 1
    z = vae.encode(x).mean
    s = vae.scaling_factor
    return {SCALE_DIVIDED: z / s, SCALE_FORGOTTEN: z, SCALE_TWICE: z * s * s}.get(mistake, z * s)


register("encode_for_unet",
         "Three steps: the pixel range the VAE was trained on, the encoder's mean, the factor the UNet was "
         "trained with (vae.scaling_factor).",
         "Which way does the factor go on the way INTO the UNet: does it make the latents smaller or larger?")


@exercise("encode_for_unet", todo="images (B, 3, H, W) in [0, 1] -> the latents the UNet was trained on, (B, 4, H/8, W/8)",
          reference=lambda: encode_for_unet_reference)
def check_encode_for_unet(encode_for_unet: Callable, raise_on_failure: bool = True) -> CheckResult:
    """encode_for_unet(vae, images (B, 3, H, W) in [0, 1]) -> (B, 4, H/8, W/8), deterministic."""
    from ..vae import AutoencoderKL, VAEConfig

    name = "encode_for_unet"
    with _seeded(0):
        vae = perturb_(AutoencoderKL(VAEConfig.tiny()), seed=5).eval()
        images = torch.rand(2, 3, 16, 24)
    calls = [_run(lambda: encode_for_unet(vae, images.clone()), name) for _ in range(2)]
    failed = _tensor_of_shape(name, "the latents", calls[0], (2, 4, 2, 3), raise_on_failure)
    if failed is not None:
        return failed
    if not torch.equal(calls[0], calls[1]):
        return _mistake(name, SAMPLED_NOT_MEAN, raise_on_failure)
    mistakes = (RANGE_NOT_MAPPED, SCALE_DIVIDED, SCALE_FORGOTTEN, SCALE_TWICE)
    with torch.no_grad():
        expected = _encode_for_unet(vae, images)
        candidates = {m: _encode_for_unet(vae, images, m) for m in mistakes}
    return compare(name, calls[0], expected, candidates, _hints(*mistakes),
                   general_hint="Expected vae.encode(images * 2 - 1).mean * vae.scaling_factor.",
                   raise_on_failure=raise_on_failure)
