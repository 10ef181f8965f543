"""`TinySD`: the capstone model. The course's own `sdcourse.Diffusion` (in `UNetConfig.capstone()`),
a small learned `TextEncoder` instead of CLIP, and a lossless stand-in for the VAE.

The text reaches the image only through cross-attention, as in SD. Instead of SD's VAE latents
(4 x 64 x 64 for a 512 px image) the UNet sees 24 x 24 RGB images folded losslessly into
27 x 8 x 8 "latents" (`pixel_unshuffle` by 3): an 8 x 8 grid, so that a CPU can train it in minutes.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..sampling import eps_from_v, sample
from ..schedule import NoiseSchedule
from ..time_embedding import sinusoidal_embedding
from ..toy import MAX_TOKENS, VOCAB, Tokenizer
from ..unet import Diffusion
from .config import TrainConfig
from .text_encoder import TextEncoder


class TinySD(nn.Module):
    """The trainable pair: `diffusion` (sdcourse.Diffusion) and `text_encoder`, plus the tokenizer,
    the noise schedule and the image size needed to use them."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        self.diffusion = Diffusion(config.unet_config())
        self.diffusion.latent_factor = config.patch  # 24 px images, 8 x 8 latents: labels read H/3, not H/8
        tok = Tokenizer()
        self.text_encoder = TextEncoder(len(VOCAB), MAX_TOKENS, config.d_context, mixing=config.text_mixing,
                                        separator_id=tok.index["and"], special_ids=(tok.pad_id, tok.start_id, tok.end_id))
        self.tokenizer = Tokenizer()
        self.schedule = NoiseSchedule.from_name(config.schedule)

    def to_latent(self, images: torch.Tensor) -> torch.Tensor:
        """The tiny model's "VAE" encoder: lossless space-to-depth. (B, 3, S, S) -> (B, 3 p^2, S/p, S/p)."""
        return F.pixel_unshuffle(images, self.config.patch)

    def to_image(self, latents: torch.Tensor) -> torch.Tensor:
        """The "VAE" decoder, the exact inverse: (B, 3 p^2, S/p, S/p) -> (B, 3, S, S)."""
        return F.pixel_shuffle(latents, self.config.patch)

    def encode(self, captions) -> torch.Tensor:
        """list of N captions -> context (N, L, d_context)."""
        device = self.text_encoder.position_embedding.device
        return self.text_encoder(self.tokenizer(captions).to(device))

    @torch.no_grad()
    def generate(self, captions, steps: int = 25, guidance_scale: float = 5.0, seed: int = 0,
                 progress=False, sampler: str = "ddpm", callback=None) -> torch.Tensor:
        """Images for captions: list of N strings -> (N, 3, S, S) in [-1, 1].

        DDPM (or DDIM) from pure noise with classifier-free guidance (batch [uncond, cond]). The
        cosine schedule uses "trailing" timesteps (999, 959, ...): sampling starts where training
        saw pure noise. DDPM's fresh noise at every step forgives small errors of a tiny model;
        deterministic DDIM keeps them (a few % lower accuracy, see sdcourse/assets/README.md). The
        predicted clean image is clipped to [-1, 1] at every step (pixels have that range; the
        space-to-depth latent keeps it). Same seed, same images. progress: see sdcourse.sampling.sample.
        """
        cfg = self.config
        device = self.text_encoder.position_embedding.device
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn((len(captions), cfg.latent_channels, cfg.latent_size, cfg.latent_size), generator=g)
        spacing = "trailing" if cfg.schedule == "cosine" else "leading"
        latents = sample(
            self.diffusion, self.encode(captions), self.encode([""]), schedule=self.schedule,
            num_inference_steps=steps, guidance_scale=guidance_scale, sampler=sampler, spacing=spacing,
            latents=noise.to(device), generator=g, progress=progress, callback=callback, clip=1.0,
            prediction=cfg.prediction,
        )  # (N, 27, S/3, S/3)
        return self.to_image(latents).clamp(-1, 1)  # (N, 3, S, S)

    def predict_noise(self, x: torch.Tensor, context: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (B, 3p^2, S/p, S/p) latent, context (B, L, D), t (B,) ints -> predicted noise, same shape as x.

        With prediction="v" the UNet outputs v and the noise it implies is returned
        (`sdcourse.sampling.eps_from_v`, one timestep per image), so the loss is always on eps.
        """
        # (B,) -> (B, n_time_embd): the first width (64 here) sines and cosines of t
        time = sinusoidal_embedding(t, dim=self.diffusion.config.n_time_embd).to(x.device)
        out = self.diffusion(x, context, time)  # (B, 27, h, w)
        if self.config.prediction == "v":
            out = eps_from_v(self.schedule, out, t, x)  # (B, 27, h, w)
        return out
