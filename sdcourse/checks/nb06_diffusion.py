"""Checkers of notebook 06: the output layer, `Diffusion`, forward noising, one DDPM step, one DDIM
step and classifier-free guidance.

The references of the formulas are written out here, independently of `sdcourse.sampling`;
the classes are compared with sdcourse's own `UNET_OutputLayer` and `Diffusion`.
"""
from __future__ import annotations

from typing import Callable, List

import torch
from torch.nn import functional as F

from .core import CheckResult, _build, _call, _finish, _named, compare, copy_weights, exercise, perturb_
from .hints import register

# --- the output layer -------------------------------------------------------------------------

_OUTPUT_HINTS = {
    "no SiLU": "GroupNorm, then SiLU, then the conv: F.silu(x) between the two.",
    "SiLU before the GroupNorm": "Normalise first, then the activation: groupnorm -> silu -> conv.",
    "ReLU instead of SiLU": "SD uses SiLU (x * sigmoid(x)) everywhere, here too: F.silu.",
    "no GroupNorm": "Start with self.groupnorm(x): the decoder's features are not normalised.",
    "GroupNorm eps 1e-6 instead of the default 1e-5": "nn.GroupNorm(32, in_channels) keeps the default eps = 1e-5 "
                                                      "here (only the attention block's first GroupNorm uses 1e-6).",
}


def _output_layer_reference():
    from ..unet import UNET_OutputLayer
    return UNET_OutputLayer


@exercise("UNET_OutputLayer", todo="write __init__ (groupnorm, conv) and forward: GroupNorm -> SiLU -> 3x3 conv.",
          reference=_output_layer_reference)
def check_output_layer(module_cls: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Check a learner's UNET_OutputLayer class: module_cls(in_channels, out_channels, n_groups=32)
    with the notes' attributes `groupnorm` (GroupNorm(n_groups, in)) and `conv` (3x3, padding 1);
    forward(x (B, in, H, W)) -> (B, out, H, W).

    Checked with 64 -> 4 channels on features whose groups have very different scales (one group
    with a variance of 1e-4, so that GroupNorm's eps shows), weights perturbed from their init."""
    from ..unet import UNET_OutputLayer

    name = "UNET_OutputLayer(64, 4)"
    reference = perturb_(UNET_OutputLayer(64, 4), seed=61)
    learner = _build(module_cls, name, 64, 4)
    copy_weights(learner, reference)
    g = torch.Generator().manual_seed(62)
    scale = torch.ones(1, 64, 1, 1)
    scale[:, :2] = 0.01  # group 0 (channels 0-1): variance 1e-4, where eps = 1e-6 vs 1e-5 matters
    x = torch.randn(2, 64, 5, 6, generator=g) * scale + 0.3  # (B, 64, H, W), H != W, mean away from 0
    with torch.no_grad():
        got = _call(name, learner, x.clone(), hint="forward(x) with x (B, 64, H, W) should return (B, 4, H, W).")
        gn, conv = reference.groupnorm, reference.conv
        normed = gn(x)
        mistakes = {
            "no SiLU": conv(normed),
            "SiLU before the GroupNorm": conv(gn(F.silu(x))),
            "ReLU instead of SiLU": conv(F.relu(normed)),
            "no GroupNorm": conv(F.silu(x)),
            "GroupNorm eps 1e-6 instead of the default 1e-5":
                conv(F.silu(F.group_norm(x, gn.num_groups, gn.weight, gn.bias, 1e-6))),
        }
        expected = reference(x)
    return compare(name, got, expected, mistakes, _named(_OUTPUT_HINTS),
                   general_hint="self.conv(F.silu(self.groupnorm(x))), with conv = nn.Conv2d(in, out, 3, padding=1).",
                   atol=1e-5, raise_on_failure=raise_on_failure)


# --- Diffusion --------------------------------------------------------------------------------

_DIFFUSION_HINTS = {
    "the time embedding skipped (the UNET got the raw sinusoidal embedding)":
        "First time = self.time_embedding(time): (1, 320) -> (1, 1280); the UNET's residual blocks expect 1280.",
    "context and time swapped in the call to the UNET": "The UNET's forward is unet(latent, context, time).",
    "the output layer forgotten": "The UNET ends with 320 channels; self.final turns them into the latent's 4.",
    "the UNET skipped": "latent -> self.unet(latent, context, time) -> self.final(...): the UNET does the work.",
    "the time embedding applied twice": "Apply self.time_embedding once, in Diffusion.forward only.",
}


def _diffusion_reference():
    from ..unet import Diffusion
    return Diffusion


def _trace_calls(model: torch.nn.Module) -> tuple:
    """Record the inputs of model.time_embedding, .unet and .final while the learner's forward runs."""
    calls: List[tuple] = []
    handles = []
    for attr in ("time_embedding", "unet", "final"):
        sub = getattr(model, attr, None)
        if isinstance(sub, torch.nn.Module):
            handles.append(sub.register_forward_pre_hook(lambda m, args, attr=attr: calls.append((attr, args))))
    return calls, handles


def _diffusion_mistake(calls: List[tuple], cfg, got) -> str:
    """Name the mistake from what the submodules were called with (None if none of the known ones)."""
    names = [c[0] for c in calls]
    if names.count("time_embedding") > 1:
        return "the time embedding applied twice"
    unet_args = next((args for n, args in calls if n == "unet"), None)
    if unet_args is not None and len(unet_args) >= 3:
        second, third = unet_args[1], unet_args[2]
        if isinstance(second, torch.Tensor) and second.ndim == 2:
            return "context and time swapped in the call to the UNET"
        if isinstance(third, torch.Tensor) and third.ndim == 2 and third.shape[-1] == cfg.n_time_embd:
            return "the time embedding skipped (the UNET got the raw sinusoidal embedding)"
    if "unet" not in names and "final" in names:
        return "the UNET skipped"
    if "final" not in names and isinstance(got, torch.Tensor) and got.ndim == 4 and got.shape[1] == cfg.channels[0]:
        return "the output layer forgotten"
    return None


@exercise("Diffusion", todo="write __init__ (time_embedding, unet, final from the config) and the three lines of forward.",
          reference=_diffusion_reference)
def check_diffusion(module_cls: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Check a learner's Diffusion class: module_cls(config) with the notes' attributes
    `time_embedding` (TimeEmbedding(config.n_time_embd)), `unet` (UNET(config)) and `final`
    (UNET_OutputLayer(config.channels[0], config.out_channels, config.n_groups));
    forward(latent (B, 4, h, w), context (B, L, d_context), time (1, n_time_embd)) -> (B, 4, h, w).

    Checked on `UNetConfig.tiny()` with sdcourse's weights (perturbed); the calls the forward makes
    are recorded, so that a wrong call is named even when it makes the UNET raise."""
    from ..unet import Diffusion, UNetConfig

    cfg = UNetConfig.tiny()
    name = "Diffusion(UNetConfig.tiny())"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(63)
        reference = perturb_(Diffusion(cfg), seed=63, only_1d=True).eval()
    learner = _build(module_cls, name, cfg).eval()
    copy_weights(learner, reference)
    g = torch.Generator().manual_seed(64)
    latent = torch.randn(2, cfg.in_channels, 8, 16, generator=g)  # (B, 4, h, w), h != w
    context = torch.randn(2, 5, cfg.d_context, generator=g)  # (B, 5 tokens, 64)
    from ..time_embedding import sinusoidal_embedding
    time = sinusoidal_embedding(torch.tensor([421]), cfg.n_time_embd)  # (1, 32)
    calls, handles = _trace_calls(learner)
    try:
        with torch.no_grad():
            got = _call(name, learner, latent.clone(), context.clone(), time.clone(),
                        hint="forward(latent, context, time): time_embedding(time), then unet(latent, context, time), "
                             "then final(...).")
    except Exception as error:  # a wrong call often makes the UNET raise: name it from the recorded calls
        if isinstance(error, NotImplementedError):
            raise
        mistake = _diffusion_mistake(calls, cfg, None)
        if mistake is None:
            raise
        return _finish(CheckResult(name, False, float("inf"), mistake, _named(_DIFFUSION_HINTS)[mistake]),
                       raise_on_failure)
    finally:
        for h in handles:
            h.remove()
    mistake = _diffusion_mistake(calls, cfg, got)
    if mistake is not None:
        return _finish(CheckResult(name, False, float("inf"), mistake, _named(_DIFFUSION_HINTS)[mistake]),
                       raise_on_failure)
    with torch.no_grad():
        expected = reference(latent, context, time)
    return compare(name, got, expected, {}, _named(_DIFFUSION_HINTS),
                   general_hint="self.final(self.unet(latent, context, self.time_embedding(time))).",  # i18n: no
                   atol=1e-4, raise_on_failure=raise_on_failure)


# --- forward noising --------------------------------------------------------------------------

def _noising_inputs():
    g = torch.Generator().manual_seed(6)
    x0, noise = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    return x0.double(), noise.double()


def _add_noise_reference():
    def add_noise(x0, noise, alpha_bar):
        return alpha_bar ** 0.5 * x0 + (1 - alpha_bar) ** 0.5 * noise
    return add_noise


@exercise("add_noise", todo="x_t from x0, noise and alpha_bar: a sample of q(x_t | x_0).", reference=_add_noise_reference)
def check_add_noise(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 06): fn(x0, noise, alpha_bar) -> x_t = sqrt(abar) x0 + sqrt(1 - abar) noise.
    x0, noise: (B, C, H, W); alpha_bar: a float in (0, 1) (or a tensor that broadcasts)."""
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


# --- one DDPM step ----------------------------------------------------------------------------

def _ddpm_reference():
    def ddpm(x_t, eps, alpha_bar_t, alpha_bar_prev, z):
        alpha, beta = alpha_bar_t / alpha_bar_prev, 1 - alpha_bar_t / alpha_bar_prev
        x0_hat = (x_t - (1 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t ** 0.5
        mean = (alpha_bar_prev ** 0.5 * beta / (1 - alpha_bar_t)) * x0_hat \
            + (alpha ** 0.5 * (1 - alpha_bar_prev) / (1 - alpha_bar_t)) * x_t
        std = ((1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta) ** 0.5
        return mean + std * z
    return ddpm


_DDPM_HINTS = {
    "no noise added (the mean only)": "DDPM samples: return mean + std * z, with the z you are given.",
    "std = sqrt(beta') instead of the posterior's": "The posterior's variance is (1 - abar_prev) / (1 - abar_t) * beta', "
                                                    "a little smaller than beta' itself.",
    "the two coefficients of the mean swapped": "sqrt(abar_prev) * beta' / (1 - abar_t) multiplies x0_hat; "
                                                "sqrt(alpha') * (1 - abar_prev) / (1 - abar_t) multiplies x_t.",
    "x_t used where x0_hat belongs": "First x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), then the mean.",
    "alpha' = 1 - abar_t instead of abar_t / abar_prev": "alpha' is the signal kept in the jump prev -> t: "
                                                         "abar_t / abar_prev; beta' = 1 - alpha'.",
}


@exercise("ddpm_step", todo="one DDPM step: x_prev from x_t, the predicted noise and the fresh noise z.", reference=_ddpm_reference)
def check_ddpm_step(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 06): fn(x_t, eps, alpha_bar_t, alpha_bar_prev, z) -> x_prev = mean + std * z,
    one DDPM step with the posterior q(x_prev | x_t, x0_hat) (alpha' = abar_t / abar_prev,
    beta' = 1 - alpha'). x_t, eps, z: (B, C, H, W); the alpha_bars are floats."""
    g = torch.Generator().manual_seed(65)
    x_t, eps, z = (torch.randn(2, 4, 8, 8, generator=g).double() for _ in range(3))
    a_t, a_prev = 0.2, 0.6
    name = "ddpm_step(x_t, eps, alpha_bar_t=0.2, alpha_bar_prev=0.6, z)"
    got = _call(name, fn, x_t.clone(), eps.clone(), a_t, a_prev, z.clone(),
                hint="fn(x_t, eps, alpha_bar_t, alpha_bar_prev, z) with float alpha_bars.")
    alpha, beta = a_t / a_prev, 1 - a_t / a_prev
    x0 = (x_t - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
    c_x0, c_xt = a_prev ** 0.5 * beta / (1 - a_t), alpha ** 0.5 * (1 - a_prev) / (1 - a_t)
    std = ((1 - a_prev) / (1 - a_t) * beta) ** 0.5
    wrong_alpha = 1 - a_t
    mistakes = {
        "no noise added (the mean only)": c_x0 * x0 + c_xt * x_t,
        "std = sqrt(beta') instead of the posterior's": c_x0 * x0 + c_xt * x_t + beta ** 0.5 * z,
        "the two coefficients of the mean swapped": c_xt * x0 + c_x0 * x_t + std * z,
        "x_t used where x0_hat belongs": c_x0 * x_t + c_xt * x_t + std * z,
        "alpha' = 1 - abar_t instead of abar_t / abar_prev":
            (a_prev ** 0.5 * a_t / (1 - a_t)) * x0 + (wrong_alpha ** 0.5 * (1 - a_prev) / (1 - a_t)) * x_t
            + ((1 - a_prev) / (1 - a_t) * a_t) ** 0.5 * z,
    }
    got = got.double() if isinstance(got, torch.Tensor) else got
    return compare(name, got, c_x0 * x0 + c_xt * x_t + std * z, mistakes, _named(_DDPM_HINTS), atol=1e-6,
                   general_hint="mean = sqrt(abar_prev) beta'/(1 - abar_t) x0_hat + sqrt(alpha')(1 - abar_prev)/(1 - abar_t) x_t.",  # i18n: no
                   raise_on_failure=raise_on_failure)


# --- one DDIM step ----------------------------------------------------------------------------

def _ddim_reference():
    def ddim(x_t, eps, alpha_bar_t, alpha_bar_prev):
        x0_hat = (x_t - (1 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t ** 0.5
        return alpha_bar_prev ** 0.5 * x0_hat + (1 - alpha_bar_prev) ** 0.5 * eps
    return ddim


@exercise("ddim_step", todo="one deterministic DDIM step: x_prev from x_t and the predicted noise.",
          reference=_ddim_reference)
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
        "x0_hat without dividing by sqrt(alpha_bar_t)": "x0_hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t).",  # i18n: no
        "alpha_bar_t and alpha_bar_prev swapped": "abar_t (noisier, smaller) is for x0_hat; abar_prev (larger) for the result.",
        "the noise not put back (x0_hat only)": "DDIM puts the predicted noise back at the lower level: + sqrt(1 - abar_prev) * eps.",
        "alpha_bar without the square roots": "Every coefficient is a square root: sqrt(abar), sqrt(1 - abar).",
    })
    got = got.double() if isinstance(got, torch.Tensor) else got
    return compare(name, got, a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps, mistakes, hints, atol=1e-6,
                   raise_on_failure=raise_on_failure)


# --- classifier-free guidance -----------------------------------------------------------------

def _guidance_reference():
    def guidance(eps_both, scale):
        eps_uncond, eps_cond = eps_both.chunk(2)
        return eps_uncond + scale * (eps_cond - eps_uncond)
    return guidance


@exercise("guidance", todo="eps_both holds the [uncond, cond] predictions: return the guided noise (B, C, H, W).",
          reference=_guidance_reference)
def check_guidance(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 06): fn(eps_both, scale) with eps_both (2B, C, H, W) in the course's order
    [uncond, cond] -> eps_uncond + scale * (eps_cond - eps_uncond), (B, C, H, W)."""
    g = torch.Generator().manual_seed(7)
    eps_both = torch.randn(4, 4, 8, 8, generator=g).double()
    scale = 7.5
    name = "guidance(eps_both, scale=7.5)"
    got = _call(name, fn, eps_both.clone(), scale, hint="fn(eps_both, scale); eps_both holds [uncond, cond] along the batch.")
    uncond, cond = eps_both.chunk(2)
    mistakes = {
        "halves read as [cond, uncond]": cond + scale * (uncond - cond),
        "cond + scale * (cond - uncond)": cond + scale * (cond - uncond),
        "scale * cond only": scale * cond,
        "the scale ignored (cond only)": cond,
    }
    hints = _named({
        "halves read as [cond, uncond]": "This course (like diffusers' pipelines) puts the unconditional half FIRST: "
                                         "eps_uncond, eps_cond = eps_both.chunk(2).",
        "cond + scale * (cond - uncond)": "Start from the unconditional prediction: uncond + scale * (cond - uncond).",
        "scale * cond only": "Guidance extrapolates from uncond towards cond: uncond + scale * (cond - uncond).",
        "the scale ignored (cond only)": "Multiply the difference (cond - uncond) by the scale and add it to uncond.",
    })
    got = got.double() if isinstance(got, torch.Tensor) else got
    return compare(name, got, uncond + scale * (cond - uncond), mistakes, hints, atol=1e-6,
                   raise_on_failure=raise_on_failure)


register("output_layer", "Three layers in the order of the notes' class: normalise, activate, convolve.",
         "The conv keeps the size: kernel_size=3 with padding=1; only the channels change (in -> out).")
register("diffusion", "Build the three parts from the config: the sinusoidal width is config.n_time_embd, "
                      "the UNET's last width is config.channels[0].",
         "forward is three lines; the time goes through the MLP before the UNET sees it.")
register("add_noise", "Two terms: a share of the image and a share of the noise.",
         "Their variances add up: (share of x0)^2 + (share of noise)^2 = 1.")
register("ddpm_step", "Start like every sampler: solve the forward formula for x0_hat.",
         "Then alpha' = abar_t / abar_prev and beta' = 1 - alpha' (the jump from prev to t), and the formulas above the cell.")
register("ddim_step", "x0_hat first; then put it back at abar_prev's noise level with the SAME eps.")
register("guidance", "eps_both.chunk(2) splits the batch in two halves; which one is the empty prompt?",
         "Start at the unconditional prediction and move `scale` times the difference towards the conditional one.")
