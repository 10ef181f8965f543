"""What one training step computes: a batch drawn from (seed, step), the noised latents, and the
weighted mean squared error between the true and the predicted noise.

`training_step`: draw a batch of captioned images, a random timestep and noise for each, noise
the images with the schedule (q(x_t | x_0)), replace ~10% of the captions by the empty caption
(so that the same model also learns the unconditional prediction that classifier-free guidance
needs), predict the noise and take the (weighted, see `loss_weight`) mean squared error.
Every draw is seeded by (seed, step), so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

from typing import Dict

import torch

from ..toy import make_batch
from .model import TinySD


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random stream of one training step: same (seed, step), same draws."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def training_batch(model: TinySD, step: int) -> Dict[str, torch.Tensor]:
    """What step `step` trains on, all drawn from (seed, step): latents x0 (B, 27, S/3, S/3), token
    ids (B, L) with ~p_uncond of them replaced by the empty caption, timesteps t (B,), noise like x0."""
    cfg = model.config
    batch = make_batch(
        cfg.batch_size, seed=cfg.seed * 1_000_003 + step, size=cfg.image_size, p_two=cfg.p_two,
        drop_color=cfg.drop_color, drop_shape=cfg.drop_shape, drop_position=cfg.drop_position,
    )
    g = step_generator(cfg.seed, step)
    x0 = model.to_latent(batch.images)  # (B, 3, S, S) -> (B, 27, S/3, S/3)
    b = x0.shape[0]
    t = torch.randint(0, model.schedule.num_train_timesteps, (b,), generator=g)  # (B,)
    noise = torch.randn(x0.shape, generator=g)  # (B, 27, S/3, S/3)
    ids = model.tokenizer(batch.captions)  # (B, L)
    drop = torch.rand(b, generator=g) < cfg.p_uncond  # (B,)
    ids[drop] = model.tokenizer.encode("")  # the empty caption: <start> <end> <pad> ...
    return {"x0": x0, "ids": ids, "t": t, "noise": noise}


def diffusion_loss(model: TinySD, x0: torch.Tensor, ids: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The epsilon objective on one batch -> a scalar.

    x0: (B, 27, h, w) clean latents; ids: (B, L) tokens; t: (B,) timesteps; noise: like x0.
    """
    device = model.text_encoder.position_embedding.device
    x_t = model.schedule.add_noise(x0, noise, t).float()  # (B, 27, h, w): q(x_t | x_0)
    x_t, noise, ids, t = x_t.to(device), noise.to(device), ids.to(device), t.to(device)
    context = model.text_encoder(ids)  # (B, L) -> (B, L, D)
    predicted = model.predict_noise(x_t, context, t)  # (B, 27, h, w)
    per_image = (predicted - noise).pow(2).mean(dim=(1, 2, 3))  # (B,)
    return (per_image * loss_weight(model, t).to(per_image)).mean()


def loss_weight(model: TinySD, t: torch.Tensor) -> torch.Tensor:
    """Weight of each image's noise MSE, (B,) timesteps -> (B,).

    The caption decides the layout (which colour and shape, where) at high noise: there an error
    in eps is an error in the image divided by sqrt(SNR), so plain eps-MSE barely notices a wrong
    layout and the text is learned last. Two clamps fix that on this budget:
    - nearly clean steps (SNR > min_snr_gamma): weight min(SNR, gamma) / SNR < 1 (Min-SNR,
      Hang et al. 2023): they teach little about what goes where;
    - very noisy steps (SNR < 1): weight min(1 / SNR, max_noise_weight): the image error counts
      as much as at SNR = 1 (as an x0 objective would), up to a cap.
    """
    cfg = model.config
    snr = model.schedule.signal_to_noise()[t.cpu()].float()  # (B,)
    weight = torch.ones_like(snr)
    if cfg.min_snr_gamma > 0:
        weight = weight * snr.clamp(max=cfg.min_snr_gamma) / snr
    if cfg.max_noise_weight > 0:
        weight = weight * (1 / snr).clamp(min=1.0, max=cfg.max_noise_weight)
    return weight


def training_step(model: TinySD, step: int) -> torch.Tensor:
    """One batch's loss (a scalar): weighted MSE between the true and the predicted noise (on the
    model's device)."""
    return diffusion_loss(model, **training_batch(model, step))
