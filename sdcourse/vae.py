"""The SD v1 VAE (`AutoencoderKL` of the original CompVis code): an image (B, 3, H, W) in [-1, 1]
becomes a latent distribution (B, 4, H/8, W/8) and a latent becomes an image again.

The encoder halves the resolution three times (residual blocks, then a stride-2 conv); one
attention block sits in the middle, where the feature map is smallest. Its output is a mean and a
log-variance per latent value: a `DiagonalGaussianDistribution`. The decoder mirrors it with
nearest-neighbour upsampling (the UNet's `Upsample`).

Module and attribute names are CompVis' own (`encoder.down.1.block.0.nin_shortcut`,
`decoder.mid.attn_1.q`, ...), so the `first_stage_model.*` part of an original single-file
checkpoint loads by cutting the prefix; `sdcourse.vae_weights` maps diffusers' names.

The latent scale: the UNet of SD v1 was trained on `z * 0.18215` (the factor makes the latents of
the training images have about unit variance). `encode` and `decode` here do NOT apply it, exactly
like diffusers' `vae.encode`/`vae.decode`: the caller multiplies after encoding and divides before
decoding (`sdcourse.vae_latents.encode_image` and `decode_latents` do it, and say why 0.18215).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .unet import Upsample
from .i18n import tidy, tr

LATENT_SCALE = 0.18215  # SD v1's scaling_factor: UNet latent = VAE latent * 0.18215


@dataclass(frozen=True)
class VAEConfig:
    """Widths of the VAE. The default is SD v1's (83,653,863 parameters; SD 2.x uses the same).

    channels: feature widths per resolution level, from full resolution down (diffusers'
        `block_out_channels`, CompVis' ch * ch_mult). n levels downsample n - 1 times.
    layers_per_block: residual blocks per encoder level; each decoder level has one more.
    latent_channels: channels of the latent (4 in SD; the encoder outputs 2x that: mean, log-variance).
    n_groups: GroupNorm groups everywhere (eps 1e-6 in the whole VAE).
    scaling_factor: the latent scale (see LATENT_SCALE); not used by encode/decode.
    """

    channels: Tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 4
    n_groups: int = 32
    scaling_factor: float = LATENT_SCALE

    @property
    def downscale(self) -> int:
        """How many image pixels one latent pixel covers per side (8 in SD v1)."""
        return 2 ** (len(self.channels) - 1)

    @classmethod
    def tiny(cls, **overrides) -> "VAEConfig":
        """Same blocks and the same 8x downscale, small widths: 32/32/64/64, 1 block per level, 8 groups."""
        return replace(cls(channels=(32, 32, 64, 64), layers_per_block=1, n_groups=8), **overrides)

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels or any(c % self.n_groups for c in self.channels):
            raise ValueError(
                tr(f"VAEConfig: every width must be divisible by n_groups={self.n_groups}; got channels={self.channels}.")
            )
        if self.layers_per_block < 1 or self.latent_channels < 1:
            raise ValueError(
                tr(f"VAEConfig: layers_per_block and latent_channels must be >= 1, got {self.layers_per_block} "
                f"and {self.latent_channels}.")
            )


def Normalize(channels: int, n_groups: int) -> nn.GroupNorm:
    """The VAE's GroupNorm: eps 1e-6 (the UNet's residual blocks use 1e-5)."""
    return nn.GroupNorm(n_groups, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus the input (through a 1x1 `nin_shortcut` when widths differ).
    The UNet's residual block without the time embedding."""

    def __init__(self, in_channels: int, out_channels: int, n_groups: int = 32):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = Normalize(in_channels, n_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = Normalize(out_channels, n_groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        if in_channels != out_channels:
            # "network in network": a 1x1 conv that only changes the channel count of the residual
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        else:
            self.nin_shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in, H, W) -> (B, out, H, W)."""
        h = F.silu(self.norm1(x))
        # (B, in, H, W) -> (B, out, H, W)
        h = self.conv1(h)
        h = F.silu(self.norm2(h))
        h = self.conv2(h)
        # (B, in, H, W) -> (B, out, H, W) for the residual, then add
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W pixels, with 1x1 convs as the q, k, v and output
    projections (diffusers stores the same weights as Linear layers), plus the residual."""

    def __init__(self, channels: int, n_groups: int = 32):
        super().__init__()
        self.channels = channels
        self.norm = Normalize(channels, n_groups)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        h = self.norm(x)
        b, c, height, width = h.shape
        # (B, C, H, W) -> (B, C, H*W) -> (B, 1, H*W, C): one head, one token per pixel
        q, k, v = (conv(h).view(b, c, height * width).transpose(1, 2).unsqueeze(1) for conv in (self.q, self.k, self.v))
        # softmax(Q K^T / sqrt(C)) V: (B, 1, H*W, C) -> (B, 1, H*W, C)
        h = F.scaled_dot_product_attention(q, k, v)
        # (B, 1, H*W, C) -> (B, C, H*W) -> (B, C, H, W), a plain NCHW copy for the conv
        h = h.squeeze(1).transpose(1, 2).contiguous().view(b, c, height, width)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    """A stride-2 3x3 conv that halves H and W. The zero padding is asymmetric, one pixel on the
    right and bottom only: output pixel i sees input pixels 2i..2i+2. padding=1 on all sides would
    give the same shape but centre it on 2i, one pixel off from what the trained weights expect."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, C, H+1, W+1): pad (left 0, right 1, top 0, bottom 1)
        x = F.pad(x, (0, 1, 0, 1), mode="constant", value=0)
        # (B, C, H+1, W+1) -> (B, C, H/2, W/2)
        return self.conv(x)


def _mid(channels: int, n_groups: int) -> nn.Module:
    """The middle of encoder and decoder: ResnetBlock, AttnBlock, ResnetBlock at the smallest size."""
    mid = nn.Module()
    mid.block_1 = ResnetBlock(channels, channels, n_groups)
    mid.attn_1 = AttnBlock(channels, n_groups)
    mid.block_2 = ResnetBlock(channels, channels, n_groups)
    return mid


def _level(blocks, resample: Optional[nn.Module], name: str) -> nn.Module:
    """One resolution level: `.block` (a list of ResnetBlocks) and, except at the end, a resampler."""
    level = nn.Module()
    level.block = nn.ModuleList(blocks)
    if resample is not None:
        setattr(level, name, resample)
    return level


class Encoder(nn.Module):
    """Image (B, 3, H, W) -> mean and log-variance (B, 2 * latent_channels, H/8, W/8). Widths are SD v1's."""

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        c, g, n = config.channels, config.n_groups, config.layers_per_block
        # (B, 3, H, W) -> (B, 128, H, W)
        self.conv_in = nn.Conv2d(config.in_channels, c[0], kernel_size=3, padding=1)
        self.down = nn.ModuleList()
        width = c[0]
        for i, out in enumerate(c):
            # level 0: 128 -> 128 (H); 1: 128 -> 256 (H/2); 2: 256 -> 512 (H/4); 3: 512 -> 512 (H/8)
            blocks = [ResnetBlock(width if j == 0 else out, out, g) for j in range(n)]
            # (B, C, h, w) -> (B, C, h/2, w/2) after every level but the last
            self.down.append(_level(blocks, Downsample(out) if i < len(c) - 1 else None, "downsample"))
            width = out
        # (B, 512, H/8, W/8) -> (B, 512, H/8, W/8)
        self.mid = _mid(width, g)
        self.norm_out = Normalize(width, g)
        # (B, 512, H/8, W/8) -> (B, 8, H/8, W/8): 4 means and 4 log-variances
        self.conv_out = nn.Conv2d(width, 2 * config.latent_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> (B, 2 * latent_channels, H/8, W/8)."""
        # (B, 3, H, W) -> (B, 128, H, W)
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                # (B, C_in, h, w) -> (B, C_out, h, w)
                h = block(h)
            if hasattr(level, "downsample"):
                # (B, C, h, w) -> (B, C, h/2, w/2)
                h = level.downsample(h)
        # (B, 512, H/8, W/8) -> (B, 512, H/8, W/8): residual, attention over all pixels, residual
        h = self.mid.block_1(h)
        h = self.mid.attn_1(h)
        h = self.mid.block_2(h)
        h = F.silu(self.norm_out(h))
        # (B, 512, H/8, W/8) -> (B, 8, H/8, W/8)
        return self.conv_out(h)


class Decoder(nn.Module):
    """Latent (B, latent_channels, H/8, W/8) -> image (B, 3, H, W). Widths are SD v1's.

    `up[i]` is resolution level i as in the encoder (0 = full size), so `up` runs backwards:
    up[3] first (512 channels, H/8) and up[0] last (128 channels, H).
    """

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        c, g, n = config.channels, config.n_groups, config.layers_per_block
        width = c[-1]
        # (B, 4, H/8, W/8) -> (B, 512, H/8, W/8)
        self.conv_in = nn.Conv2d(config.latent_channels, width, kernel_size=3, padding=1)
        self.mid = _mid(width, g)
        levels = []
        for i in reversed(range(len(c))):
            # level 3: 512 -> 512 (H/8); 2: 512 -> 512 (H/4); 1: 512 -> 256 (H/2); 0: 256 -> 128 (H)
            blocks = [ResnetBlock(width if j == 0 else c[i], c[i], g) for j in range(n + 1)]
            # (B, C, h, w) -> (B, C, 2h, 2w) after every level but the full-size one
            levels.insert(0, _level(blocks, Upsample(c[i]) if i > 0 else None, "upsample"))
            width = c[i]
        self.up = nn.ModuleList(levels)
        self.norm_out = Normalize(width, g)
        # (B, 128, H, W) -> (B, 3, H, W)
        self.conv_out = nn.Conv2d(width, config.out_channels, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_channels, H/8, W/8) -> (B, 3, H, W)."""
        # (B, 4, H/8, W/8) -> (B, 512, H/8, W/8)
        h = self.conv_in(z)
        # (B, 512, H/8, W/8) -> (B, 512, H/8, W/8)
        h = self.mid.block_1(h)
        h = self.mid.attn_1(h)
        h = self.mid.block_2(h)
        for level in reversed(self.up):
            for block in level.block:
                # (B, C_in, h, w) -> (B, C_out, h, w)
                h = block(h)
            if hasattr(level, "upsample"):
                # (B, C, h, w) -> (B, C, 2h, 2w)
                h = level.upsample(h)
        h = F.silu(self.norm_out(h))
        # (B, 128, H, W) -> (B, 3, H, W)
        return self.conv_out(h)


class DiagonalGaussianDistribution:
    """What the encoder says about one image: every latent value is Normal(mean, std^2), independently.

    parameters: (B, 2 * latent_channels, h, w), the means first, then the log-variances.
    """

    def __init__(self, parameters: torch.Tensor):
        self.parameters = parameters
        # (B, 8, h, w) -> 2 x (B, 4, h, w)
        self.mean, logvar = parameters.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)  # as CompVis and diffusers: keeps exp() finite
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """mean + std * noise, (B, 4, h, w). The noise is drawn on the generator's device (as diffusers
        does), so a CPU generator gives the same latent on every device."""
        device = generator.device if generator is not None else self.mean.device
        noise = torch.randn(self.mean.shape, generator=generator, device=device, dtype=self.mean.dtype)
        return self.mean + self.std * noise.to(self.mean.device)

    def mode(self) -> torch.Tensor:
        """The most likely latent: the mean."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL divergence to Normal(0, 1) per image, (B,): the VAE's training regulariser."""
        return 0.5 * torch.sum(self.mean ** 2 + self.var - 1.0 - self.logvar, dim=[1, 2, 3])


class AutoencoderKL(nn.Module):
    """The SD v1 VAE: `encode(images)` -> DiagonalGaussianDistribution, `decode(latents)` -> images.

    Neither applies the latent scale: multiply a sample by `self.scaling_factor` (0.18215) before it
    goes to the UNet, divide by it before `decode`.
    """

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        z = config.latent_channels
        # 1x1 convs between the autoencoder and its latent (a leftover of the VQ variant, kept in SD)
        self.quant_conv = nn.Conv2d(2 * z, 2 * z, kernel_size=1)
        self.post_quant_conv = nn.Conv2d(z, z, kernel_size=1)

    @property
    def scaling_factor(self) -> float:
        return self.config.scaling_factor

    def encode(self, images: torch.Tensor) -> DiagonalGaussianDistribution:
        """images: (B, 3, H, W) in [-1, 1], H and W multiples of 8 -> the latent distribution over
        (B, 4, H/8, W/8). Not scaled: `.sample() * vae.scaling_factor` is what the UNet sees."""
        self._check("encode", "images", images, self.config.in_channels, self.config.downscale)
        # (B, 3, H, W) -> (B, 8, H/8, W/8) -> (B, 8, H/8, W/8)
        moments = self.quant_conv(self.encoder(images))
        return DiagonalGaussianDistribution(moments)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents: (B, 4, h, w), unscaled (divide the UNet's latents by vae.scaling_factor first)
        -> images (B, 3, 8h, 8w), about [-1, 1] (not clamped)."""
        self._check("decode", "latents", latents, self.config.latent_channels, 1)
        # (B, 4, h, w) -> (B, 4, h, w) -> (B, 3, 8h, 8w)
        return self.decoder(self.post_quant_conv(latents))

    def forward(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Reconstruct: encode, sample a latent, decode. (B, 3, H, W) -> (B, 3, H, W)."""
        return self.decode(self.encode(images).sample(generator))

    def _check(self, method: str, name: str, x: torch.Tensor, channels: int, multiple: int) -> None:
        """Raise ValueError naming the problem and the fix; silent when `x` is good."""
        where = f"AutoencoderKL.{method}"
        if not isinstance(x, torch.Tensor):
            raise ValueError(tr(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}."))
        if x.ndim != 4:
            raise ValueError(
                tr(f"{where}: {name} must be 4-D (batch, {channels}, height, width), got shape {tuple(x.shape)}. "
                f"For a single one add the batch dimension: {name}[None].")
            )
        if x.shape[1] != channels:
            message = [tr(f"{where}: {name} have {x.shape[1]} channels, this VAE expects {channels}.")]
            if method in ("encode", "decode") and (channels, x.shape[1]) == (3, 4):
                message.append(tr("This looks like a latent: encode images, decode latents."))
            if method in ("encode", "decode") and (channels, x.shape[1]) == (4, 3):
                message.append(tr("This looks like an image: encode images, decode latents."))
            if x.shape[-1] == channels:
                message.append(tr(f"Channels last? Use {name}.permute(0, 3, 1, 2)."))
            raise ValueError(tidy(" ".join(message)))
        for side, size in (("height", x.shape[2]), ("width", x.shape[3])):
            if size == 0:
                raise ValueError(tr(f"{where}: {name} have {side} 0: nothing to {method}."))
            if size % multiple:
                fix = (size // multiple + 1) * multiple
                raise ValueError(
                    tr(f"{where}: {name} {side} {size} is not a multiple of {multiple}: the encoder halves it "
                    f"{len(self.config.channels) - 1} times and the decoder must give the same size back. "
                    f"Resize or crop to a multiple of {multiple}, e.g. {fix}.")
                )
        p = next(self.parameters())
        if x.device != p.device and p.device.type != "meta":
            raise ValueError(
                tr(f"{where}: {name} are on {x.device} but the VAE is on {p.device}. "
                f"Move them with {name}.to({str(p.device)!r}).")
            )
        if x.dtype != p.dtype:
            raise ValueError(
                tr(f"{where}: {name} have dtype {x.dtype} but the VAE's weights are {p.dtype}. "
                   f"Convert with {name}.to({p.dtype}) after scaling pixels to [-1, 1] (x / 127.5 - 1).")
                if not x.dtype.is_floating_point else
                tr(f"{where}: {name} have dtype {x.dtype} but the VAE's weights are {p.dtype}. "
                   f"Convert with {name}.to({p.dtype}).")
            )
