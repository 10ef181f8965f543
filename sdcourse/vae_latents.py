"""Between pictures and the UNet's latents: pixel range, the VAE, and SD v1's latent scale 0.18215.

    pixels in [0, 1]  --(x * 2 - 1)-->  [-1, 1]  --vae.encode-->  z  --(* 0.18215)-->  UNet latent
    UNet latent  --(/ 0.18215)-->  z  --vae.decode-->  [-1, 1]  --(x / 2 + 0.5, clamp)-->  pixels in [0, 1]

Why 0.18215: the latents z of SD v1's VAE have a standard deviation of about 1 / 0.18215 = 5.5 on
training images (the LDM authors measured it on a batch and chose the factor so); the diffusion model
was trained on z * 0.18215, which has about unit variance, like the noise it is mixed with. The
factor is part of the trained model: forget it on the way in and img2img starts from latents 5.5
times too large for the noise schedule; forget it on the way out and the decoder gets latents 5.5
times smaller than any it was trained on.
`vae.encode`/`vae.decode` do not apply it (as in diffusers); these two helpers do, as diffusers'
Stable Diffusion pipelines do around them (img2img encodes; every pipeline decodes).
"""
from __future__ import annotations

from typing import Optional

import torch

from .vae import AutoencoderKL
from .i18n import tr


def encode_image(vae: AutoencoderKL, images: torch.Tensor, generator: Optional[torch.Generator] = None,
                 sample: bool = True) -> torch.Tensor:
    """Pictures -> the latents the UNet works on (img2img's starting point).

    images: (B, 3, H, W) or (3, H, W), floats in [0, 1] or uint8 in [0, 255]; H, W multiples of 8.
    sample: True draws z from the encoder's distribution (with `generator`, as diffusers' img2img
        does); False takes its mean (deterministic).
    Returns (B, 4, H/8, W/8) = z * vae.scaling_factor, on the VAE's device and dtype.
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(tr(f"encode_image: images must be a torch.Tensor, got {type(images).__name__}. "
                            "From PIL: torchvision.transforms.functional.to_tensor(picture) gives (3, H, W) in [0, 1]."))
    if images.ndim == 3:
        # (3, H, W) -> (1, 3, H, W)
        images = images[None]
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    elif not images.dtype.is_floating_point:
        raise ValueError(tr(f"encode_image: images must be floats in [0, 1] or uint8, got dtype {images.dtype}."))
    low, high = images.min().item(), images.max().item()
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            tr(f"encode_image: pixel values go from {low:.3g} to {high:.3g}; expected [0, 1]. ")
            + (tr("0-255 floats: divide by 255.") if high > 2 else
               tr("For images already in [-1, 1] call vae.encode(images) yourself and multiply by vae.scaling_factor."))
        )
    p = next(vae.parameters())
    # [0, 1] -> [-1, 1], the range the VAE was trained on
    images = (images * 2 - 1).to(device=p.device, dtype=p.dtype)
    # (B, 3, H, W) -> (B, 4, H/8, W/8)
    dist = vae.encode(images)
    z = dist.sample(generator) if sample else dist.mean
    return z * vae.scaling_factor


def decode_latents(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """The UNet's latents -> pictures: (B, 4, h, w) -> (B, 3, 8h, 8w) floats in [0, 1].

    Undoes the scale (latents / vae.scaling_factor), decodes, maps [-1, 1] to [0, 1] and clamps what
    the decoder overshoots. The latents are moved to the VAE's device and dtype.
    """
    if not isinstance(latents, torch.Tensor):
        raise ValueError(tr(f"decode_latents: latents must be a torch.Tensor, got {type(latents).__name__}."))
    p = next(vae.parameters())
    latents = latents.to(device=p.device, dtype=p.dtype)
    # (B, 4, h, w) -> (B, 3, 8h, 8w), about [-1, 1]
    images = vae.decode(latents / vae.scaling_factor)
    return (images / 2 + 0.5).clamp(0, 1)
