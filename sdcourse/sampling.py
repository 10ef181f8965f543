"""From noise to an image: DDPM and DDIM steps, classifier-free guidance, and the sampling loop.

Every step starts from the model's noise prediction eps at timestep t and first recovers the
clean image it implies:

    x0_hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t)

- DDPM (Ho et al. 2020) then draws x_prev from the Gaussian posterior q(x_prev | x_t, x0_hat):
      mean = sqrt(abar_prev) * beta_t' / (1 - abar_t) * x0_hat + sqrt(alpha_t') * (1 - abar_prev) / (1 - abar_t) * x_t
      var  = (1 - abar_prev) / (1 - abar_t) * beta_t'       with alpha_t' = abar_t / abar_prev, beta_t' = 1 - alpha_t'
  (beta_t' is the beta of the jump t -> prev, so the same formula works when steps are skipped.)
- DDIM (Song et al. 2021) with eta = 0 is deterministic: put x0_hat back at the noise level of
  prev, re-using the same eps:   x_prev = sqrt(abar_prev) * x0_hat + sqrt(1 - abar_prev) * eps
  At the last step prev < 0 and SD v1 uses abar_prev = abar_0 (diffusers' set_alpha_to_one=False).

Classifier-free guidance runs the model on a batch of two halves, in this course's order
[uncond, cond] (as diffusers and attention-map tools; the notes show no pipeline, and hkproj's
pipeline, whose UNet the notes study, uses [cond, uncond]):
    eps = eps_uncond + scale * (eps_cond - eps_uncond)
`guided_noise` checks the order, and `AttentionRecorder(cfg=True)` asserts it when recording.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .device import progress_bar
from .schedule import NoiseSchedule
from .time_embedding import sinusoidal_embedding
from .i18n import tr

CFG_ORDER = ("uncond", "cond")  # the halves of a guided batch, first to second


def _abar(schedule: NoiseSchedule, t: int, like: torch.Tensor) -> torch.Tensor:
    return schedule.alphas_cumprod[t].to(device=like.device, dtype=torch.float64)


def _final_abar(schedule: NoiseSchedule, set_alpha_to_one: bool) -> torch.Tensor:
    return torch.tensor(1.0, dtype=torch.float64) if set_alpha_to_one else schedule.alphas_cumprod[0]


def _check_t(schedule: NoiseSchedule, t: int, prev_t: int) -> None:
    T = schedule.num_train_timesteps
    if not 0 <= int(t) < T:
        raise ValueError(tr(f"timestep t={t} is outside 0 .. {T - 1}."))
    if not -T < int(prev_t) < int(t):
        raise ValueError(tr(f"prev_t={prev_t} must be smaller than t={t} (sampling goes from noisy to clean)."))


def predict_x0(schedule: NoiseSchedule, eps: torch.Tensor, t: int, x_t: torch.Tensor,
               clip: Optional[float] = None) -> torch.Tensor:
    """The clean image implied by a noise prediction. eps, x_t: (B, C, H, W) -> (B, C, H, W).

    clip: clamp x0_hat to [-clip, clip] (diffusers' clip_sample / clip_sample_range). SD v1 does
    not clip (its latents have no fixed range); a pixel-space model does: near pure noise abar_t
    is tiny and the division by sqrt(abar_t) magnifies any error of eps.
    """
    abar = _abar(schedule, int(t), x_t)
    x0 = (x_t.double() - (1 - abar).sqrt() * eps.double()) / abar.sqrt()
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
    return x0.to(x_t.dtype)


def ddpm_mean_std(schedule: NoiseSchedule, eps: torch.Tensor, t: int, x_t: torch.Tensor,
                  prev_t: Optional[int] = None, clip: Optional[float] = None) -> tuple:
    """Mean (B, C, H, W) and standard deviation (a number) of p(x_prev | x_t) for one DDPM step.

    prev_t defaults to t - 1 (all 1000 steps); a larger jump works the same way.
    """
    prev_t = int(t) - 1 if prev_t is None else int(prev_t)
    _check_t(schedule, t, prev_t)
    abar_t = _abar(schedule, int(t), x_t)
    abar_prev = _abar(schedule, prev_t, x_t) if prev_t >= 0 else torch.tensor(1.0, dtype=torch.float64)
    alpha = abar_t / abar_prev  # of the jump t -> prev
    beta = 1 - alpha
    x0 = predict_x0(schedule, eps, t, x_t, clip).double()
    coef_x0 = abar_prev.sqrt() * beta / (1 - abar_t)
    coef_xt = alpha.sqrt() * (1 - abar_prev) / (1 - abar_t)
    mean = coef_x0 * x0 + coef_xt * x_t.double()  # (B, C, H, W)
    var = ((1 - abar_prev) / (1 - abar_t) * beta).clamp(min=1e-20)
    return mean.to(x_t.dtype), float(var.sqrt())


def ddpm_step(schedule: NoiseSchedule, eps: torch.Tensor, t: int, x_t: torch.Tensor, prev_t: Optional[int] = None,
              noise: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
              clip: Optional[float] = None) -> torch.Tensor:
    """x_t -> x_prev by sampling the DDPM posterior: mean + std * noise (no noise at the last step).

    noise: (B, C, H, W) to use; else drawn from `generator`. clip: see predict_x0.
    """
    mean, std = ddpm_mean_std(schedule, eps, t, x_t, prev_t, clip)
    if int(t) == 0:
        return mean
    if noise is None:
        noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype).to(x_t.device)
    if noise.shape != x_t.shape:
        raise ValueError(tr(f"ddpm_step: noise {tuple(noise.shape)} must have the shape of x_t {tuple(x_t.shape)}."))
    return mean + std * noise


def ddim_step(schedule: NoiseSchedule, eps: torch.Tensor, t: int, x_t: torch.Tensor, prev_t: int,
              set_alpha_to_one: bool = False, clip: Optional[float] = None, clipped_eps: bool = True) -> torch.Tensor:
    """Deterministic DDIM (eta = 0): x_t -> x_prev. eps, x_t: (B, C, H, W) -> (B, C, H, W).

    prev_t < 0 means "after the last step": abar_prev = abar_0 (SD v1) or 1 with set_alpha_to_one.
    clip: clamp x0_hat (see predict_x0). clipped_eps: with a clip, re-derive the eps that goes back
    in from the clipped x0_hat, so that x0_hat and eps agree (diffusers' use_clipped_model_output=True;
    diffusers' default keeps the model's eps).
    """
    _check_t(schedule, t, prev_t)
    if eps.shape != x_t.shape:
        raise ValueError(tr(f"ddim_step: eps {tuple(eps.shape)} and x_t {tuple(x_t.shape)} must have the same shape."))
    abar_prev = _abar(schedule, int(prev_t), x_t) if prev_t >= 0 else _final_abar(schedule, set_alpha_to_one)
    x0 = predict_x0(schedule, eps, t, x_t, clip).double()
    eps = eps.double()
    if clip is not None and clipped_eps:  # the noise that is consistent with the clipped x0_hat
        abar_t = _abar(schedule, int(t), x_t)
        eps = (x_t.double() - abar_t.sqrt() * x0) / (1 - abar_t).sqrt()
    x_prev = abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps
    return x_prev.to(x_t.dtype)


def eps_from_v(schedule: NoiseSchedule, v: torch.Tensor, t, x_t: torch.Tensor) -> torch.Tensor:
    """The noise implied by a v-prediction (Salimans & Ho 2022; among SD's checkpoints the 768-px
    "v" models of SD 2.x use it, SD v1 and SD 2.x-base predict the noise).

    v = sqrt(abar) eps - sqrt(1 - abar) x0, so eps = sqrt(abar) v + sqrt(1 - abar) x_t: at high
    noise eps is mostly x_t itself, which the network no longer has to copy.
    v, x_t: (B, C, H, W); t: one timestep (an int, as in sampling) or one per image, a (B,) tensor
    (as in training) -> (B, C, H, W). Computed in float64, returned in x_t's dtype.
    """
    t = torch.as_tensor(t).long().cpu()
    abar = schedule.alphas_cumprod[t].to(device=x_t.device, dtype=torch.float64)  # () or (B,)
    if abar.ndim == 1:
        abar = abar.view(-1, *([1] * (x_t.ndim - 1)))  # (B,) -> (B, 1, 1, 1): one per image
    return (abar.sqrt() * v.double() + (1 - abar).sqrt() * x_t.double()).to(x_t.dtype)


def guided_noise(eps_both: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """Classifier-free guidance. eps_both: (2B, C, H, W) in the order [uncond, cond] -> (B, C, H, W)."""
    if eps_both.shape[0] % 2:
        raise ValueError(
            tr(f"guided_noise: batch {eps_both.shape[0]} is odd; expected the two halves [uncond, cond] "
               "from model(torch.cat([x, x]), torch.cat([uncond_context, cond_context]), time).")
        )
    eps_uncond, eps_cond = eps_both.chunk(2)  # (2B, ...) -> 2 x (B, ...): uncond first
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def cfg_inputs(x: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor) -> tuple:
    """The doubled batch for guidance: latents (B, ...) -> (2B, ...); contexts -> (2B, L, D), [uncond, cond]."""
    b = x.shape[0]
    if cond.shape[0] not in (1, b) or uncond.shape[0] not in (1, b):
        raise ValueError(
            tr(f"cfg_inputs: contexts must have batch 1 or {b} (one per latent); got cond {tuple(cond.shape)}, "
               f"uncond {tuple(uncond.shape)}.")
        )
    if cond.shape[1:] != uncond.shape[1:]:
        raise ValueError(tr(f"cfg_inputs: cond {tuple(cond.shape)} and uncond {tuple(uncond.shape)} contexts differ in shape."))
    cond, uncond = cond.expand(b, -1, -1), uncond.expand(b, -1, -1)  # (1|B, L, D) -> (B, L, D)
    # (B, ...) x 2 -> (2B, ...): [uncond, cond], the same latent in both halves
    return torch.cat([x, x]), torch.cat([uncond, cond])


@torch.no_grad()
def sample(
    model,
    context: torch.Tensor,
    uncond_context: Optional[torch.Tensor] = None,
    shape: Optional[tuple] = None,
    schedule: Optional[NoiseSchedule] = None,
    num_inference_steps: int = 50,
    guidance_scale: float = 7.5,
    sampler: str = "ddim",
    spacing: str = "leading",
    steps_offset: int = 1,
    latents: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    progress=True,
    callback: Optional[Callable[[int, int, torch.Tensor, torch.Tensor], None]] = None,
    clip: Optional[float] = None,
    prediction: str = "epsilon",
) -> torch.Tensor:
    """Denoise from pure noise to a clean latent with a course `Diffusion` model.

    model: sdcourse.Diffusion (called as model(latent, context, sinusoidal_embedding(t))).
    context: (B, L, d_context) prompt embeddings; uncond_context: (1|B, L, d_context) embeddings
        of the empty prompt (needed when guidance_scale != 1; the batch is run as [uncond, cond]).
    shape: (B, C, h, w) of the latents, or give `latents` (the starting noise) directly.
    sampler: "ddim" (eta = 0) or "ddpm". spacing/steps_offset: see NoiseSchedule.inference_timesteps
        (SD v1: "leading", 1). callback(i, t, x, x0_hat) is called after each step with the new
        latents and the clean latent the step aimed at.
    clip: clamp the predicted clean latent to [-clip, clip] at every step (None for SD v1; 1.0 for
        images in [-1, 1], see predict_x0).
    prediction: what the model outputs: "epsilon" (SD v1) or "v" (SD 2.x's 768-px models, the
        course's tiny model; converted with eps_from_v).
    progress: True: a progress bar that ends finished (see sdcourse.device.progress_bar); False: none.
    Returns the final latents (B, C, h, w).
    """
    schedule = NoiseSchedule.sd_v1() if schedule is None else schedule
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(tr(f"sample: sampler must be 'ddim' or 'ddpm', got {sampler!r}."))
    p = next(model.parameters())
    if latents is None:
        if shape is None:
            raise ValueError(tr("sample: give shape=(B, C, h, w) or the starting latents."))
        latents = torch.randn(shape, generator=generator, dtype=p.dtype).to(p.device)
    x = latents
    if context.ndim != 3 or context.shape[0] not in (1, x.shape[0]):
        raise ValueError(tr(f"sample: context must be (1 or {x.shape[0]}, L, d_context), got {tuple(context.shape)}."))
    if prediction not in ("epsilon", "v"):
        raise ValueError(tr(f"sample: prediction must be 'epsilon' or 'v', got {prediction!r}."))
    guided = guidance_scale != 1.0
    if guided and uncond_context is None:
        raise ValueError(tr("sample: guidance_scale != 1 needs uncond_context (the embeddings of the empty prompt), or use guidance_scale=1."))
    timesteps = schedule.inference_timesteps(num_inference_steps, spacing, steps_offset)
    n_time = model.config.n_time_embd if hasattr(model, "config") else 320
    # t is the integer timestep (981, 961, ...) throughout the loop; the model only sees its embedding
    for i, t in enumerate(progress_bar(timesteps.tolist(), progress, desc=sampler)):
        prev_t = timesteps[i + 1].item() if i + 1 < len(timesteps) else -1
        time = sinusoidal_embedding(torch.tensor([t]), dim=n_time).to(device=p.device, dtype=p.dtype)  # (1, n_time)
        if guided:
            x_in, ctx = cfg_inputs(x, context, uncond_context)  # (2B, C, h, w), (2B, L, D)
            out = guided_noise(model(x_in, ctx, time), guidance_scale)  # (2B, ...) -> (B, C, h, w)
        else:
            out = model(x, context.expand(x.shape[0], -1, -1), time)  # (B, C, h, w)
        # guidance is linear, so guiding v and then converting equals converting then guiding
        eps = eps_from_v(schedule, out, t, x) if prediction == "v" else out
        x_before = x
        if sampler == "ddim":
            x = ddim_step(schedule, eps, t, x, prev_t, clip=clip)
        elif prev_t >= 0:
            x = ddpm_step(schedule, eps, t, x, prev_t=prev_t, generator=generator, clip=clip)
        else:  # the last step: the posterior mean with abar_prev = 1, no noise
            x = ddpm_mean_std(schedule, eps, t, x, prev_t=-1, clip=clip)[0]
        if callback is not None:
            callback(i, t, x, predict_x0(schedule, eps, t, x_before, clip))
    return x
