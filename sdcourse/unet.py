"""The SD v1 UNet of the notes: residual blocks, attention blocks, Upsample, SwitchSequential,
the UNET with its skip connections, the output layer and the `Diffusion` wrapper.

Class and attribute names are the notes' (`UNET_ResidualBlock.groupnorm_feature`, ...), so the
notes, the notebooks and this file line up. One `UNetConfig` sets the widths: its default is
exactly SD v1 (859,520,964 parameters); `UNetConfig.tiny()` builds the same classes small
enough to test and draw in a second, and `UNetConfig.capstone()` is the UNet that notebook 07
trains (see their docstrings for why they differ).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .attention import CrossAttention, SelfAttention
from .i18n import tidy, tr
from .time_embedding import TimeEmbedding


@dataclass(frozen=True)
class UNetConfig:
    """Widths of the UNet. The default is Stable Diffusion v1 (v1.1 .. v1.5 share it).

    channels: feature widths of the three attention levels (resolutions H/8, H/16, H/32); the
        fourth level (H/64, no attention) and the bottleneck reuse the last width.
    n_head: attention heads in every attention block (d_head = width / n_head: 40, 80, 160).
    d_context: width of the context tokens (CLIP ViT-L/14 gives 768).
    n_groups: GroupNorm groups everywhere.
    in_channels, out_channels: latent channels (the VAE's 4).
    any_latent_size: False (the notes' UNet, and CompVis's original): latent sides must be
        multiples of 8. True: any side, the way diffusers' UNet2DConditionModel does it (see
        `Upsample` and `UNET.forward`): a step beyond the notes.
    The sinusoidal time embedding has channels[0] dimensions (320) and the MLP makes 4x that (1280).
    """

    channels: Tuple[int, int, int] = (320, 640, 1280)
    n_head: int = 8
    d_context: int = 768
    n_groups: int = 32
    in_channels: int = 4
    out_channels: int = 4
    any_latent_size: bool = False

    @property
    def n_time_embd(self) -> int:
        """Size of the sinusoidal embedding (320 in SD v1)."""
        return self.channels[0]

    @property
    def n_time(self) -> int:
        """Size of the time embedding after the MLP (1280 in SD v1)."""
        return 4 * self.channels[0]

    @classmethod
    def tiny(cls, **overrides) -> "UNetConfig":
        """SD v1 in miniature, for tests, figures and exercises: the same blocks and the same
        4-channel latents, widths doubling 32/64/128 as SD's 320/640/1280 do, 4 heads, context 64,
        GroupNorm 8 groups (8.6 M parameters). Never trained: it has no weights of its own."""
        return replace(cls(channels=(32, 64, 128), n_head=4, d_context=64, n_groups=8), **overrides)

    @classmethod
    def capstone(cls, **overrides) -> "UNetConfig":
        """The UNet of the capstone model (`sdcourse.train.TinySD`, notebook 07, the shipped
        `tiny_sd.safetensors`): the same blocks trained on 24 x 24 RGB images folded into
        27-channel 8 x 8 latents (space-to-depth by 3, its stand-in for SD's VAE).

        Why it is not `tiny()`: its latents have 27 channels, not 4, and its widths shrink
        64/48/32 instead of doubling: the first width carries the 27 latent channels to the
        output through SiLUs and needs about twice as many (silu(v) - silu(-v) = v), while the
        coarse levels (4 x 4, 2 x 2, 1 x 1 of an 8 x 8 latent) have little left to hold.
        4 heads, context 64, GroupNorm 8 groups (2.43 M parameters)."""
        return replace(cls(channels=(64, 48, 32), n_head=4, d_context=64, n_groups=8, in_channels=27, out_channels=27),
                       **overrides)

    def __post_init__(self):
        for c in self.channels:
            if c % self.n_head or c % self.n_groups:
                raise ValueError(
                    tr(f"UNetConfig: every width must be divisible by n_head={self.n_head} and n_groups={self.n_groups}; "
                    f"got channels={self.channels}.")
                )


def _check_feature(name: str, x: torch.Tensor, channels: int) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(
            tr(f"{name}: expected a feature map (batch, {channels}, height, width), got shape {tuple(x.shape)}.")
        )


def _check_time(name: str, x: torch.Tensor, time: torch.Tensor, n_time: int) -> None:
    if time.ndim != 2 or time.shape[1] != n_time:
        raise ValueError(
            tr(f"{name}: expected the time embedding as (1 or batch, {n_time}), got shape {tuple(time.shape)}. "
            "It is the output of TimeEmbedding, not the raw timestep.")
        )
    if time.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            tr(f"{name}: time batch {time.shape[0]} cannot broadcast to feature batch {x.shape[0]}. "
            "Give one time embedding shared by all (batch 1) or one per sample.")
        )


class UNET_ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv, add the time embedding to every pixel, GroupNorm-SiLU-conv, plus the residual."""

    def __init__(self, in_channels: int, out_channels: int, n_time: int = 1280, n_groups: int = 32):
        super().__init__()
        self.in_channels, self.out_channels, self.n_time = in_channels, out_channels, n_time
        self.groupnorm_feature = nn.GroupNorm(n_groups, in_channels)
        self.conv_feature = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.linear_time = nn.Linear(n_time, out_channels)
        self.groupnorm_merged = nn.GroupNorm(n_groups, out_channels)
        self.conv_merged = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        if in_channels == out_channels:
            self.residual_layer = nn.Identity()
        else:
            # a 1x1 conv only changes the channel count so that the residual can be added
            self.residual_layer = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, feature: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """feature: (B, in, H, W); time: (1 or B, n_time) -> (B, out, H, W)."""
        _check_feature("UNET_ResidualBlock", feature, self.in_channels)
        _check_time("UNET_ResidualBlock", feature, time, self.n_time)
        residue = feature
        # (B, in, H, W) -> (B, in, H, W)
        feature = self.groupnorm_feature(feature)
        feature = F.silu(feature)
        # (B, in, H, W) -> (B, out, H, W)
        feature = self.conv_feature(feature)
        # (1|B, n_time) -> (1|B, out)
        time = F.silu(time)
        time = self.linear_time(time)
        # (B, out, H, W) + (1|B, out, 1, 1) -> (B, out, H, W): the same vector added at every pixel
        merged = feature + time.unsqueeze(-1).unsqueeze(-1)
        merged = self.groupnorm_merged(merged)
        merged = F.silu(merged)
        # (B, out, H, W) -> (B, out, H, W)
        merged = self.conv_merged(merged)
        # (B, in, H, W) -> (B, out, H, W) for the residual, then add
        return merged + self.residual_layer(residue)


class UNET_AttentionBlock(nn.Module):
    """The image as a sequence of H*W tokens of width C: self-attention, cross-attention to the
    context, a GeGLU feed-forward (each with LayerNorm and a short residual), and a long residual
    around the whole block."""

    def __init__(self, n_head: int, d_head: int, d_context: int = 768, n_groups: int = 32):
        """n_head heads of width d_head each (the notes call d_head `n_embd`): the block's width
        is channels = n_head * d_head, e.g. UNET_AttentionBlock(8, 40) works on 320 channels."""
        super().__init__()
        channels = n_head * d_head
        self.channels, self.d_context = channels, d_context
        self.groupnorm = nn.GroupNorm(n_groups, channels, eps=1e-6)
        self.conv_input = nn.Conv2d(channels, channels, kernel_size=1)
        self.layernorm_1 = nn.LayerNorm(channels)
        self.attention_1 = SelfAttention(n_head, channels, in_proj_bias=False)
        self.layernorm_2 = nn.LayerNorm(channels)
        self.attention_2 = CrossAttention(n_head, channels, d_context, in_proj_bias=False)
        self.layernorm_3 = nn.LayerNorm(channels)
        # GeGLU: one linear makes a value half and a gate half, value * gelu(gate)
        self.linear_geglu_1 = nn.Linear(channels, 4 * channels * 2)
        self.linear_geglu_2 = nn.Linear(4 * channels, channels)
        self.conv_output = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W); context: (B or 1, L_ctx, d_context) -> (B, C, H, W)."""
        _check_feature("UNET_AttentionBlock", x, self.channels)
        if context.ndim != 3 or context.shape[-1] != self.d_context:
            raise ValueError(
                tr(f"UNET_AttentionBlock: expected context (batch, tokens, {self.d_context}), got shape {tuple(context.shape)}.")
            )
        residue_long = x
        # (B, C, H, W) -> (B, C, H, W)
        x = self.groupnorm(x)
        x = self.conv_input(x)
        n, c, h, w = x.shape
        # (B, C, H, W) -> (B, C, H*W) -> (B, H*W, C): one token per pixel, channels are its features
        x = x.view(n, c, h * w).transpose(-1, -2)

        residue_short = x
        x = self.layernorm_1(x)
        # (B, H*W, C) -> (B, H*W, C)
        x = self.attention_1(x)
        x += residue_short

        residue_short = x
        x = self.layernorm_2(x)
        # (B, H*W, C), (B|1, L_ctx, d_context) -> (B, H*W, C)
        x = self.attention_2(x, context)
        x += residue_short

        residue_short = x
        x = self.layernorm_3(x)
        # (B, H*W, C) -> (B, H*W, 8C) -> 2 x (B, H*W, 4C): value first, gate second
        x, gate = self.linear_geglu_1(x).chunk(2, dim=-1)
        # (B, H*W, 4C) * (B, H*W, 4C) -> (B, H*W, 4C)
        x = x * F.gelu(gate)
        # (B, H*W, 4C) -> (B, H*W, C)
        x = self.linear_geglu_2(x)
        x += residue_short

        # (B, H*W, C) -> (B, C, H*W) -> (B, C, H, W). `.contiguous()` makes a plain NCHW copy: without
        # it the transposed view is laid out channels-last, the convs that follow switch to that
        # layout and re-pack their weights on every call (measured: +60-140 MiB peak on CPU).
        x = x.transpose(-1, -2).contiguous().view(n, c, h, w)
        # (B, C, H, W) -> (B, C, H, W), plus the long residual
        return self.conv_output(x) + residue_long


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 conv.

    size: upsample to this (height, width) instead of doubling. Why: a stride-2 conv maps a side
    n to ceil(n / 2), so a latent side of 9 goes 9 -> 5 -> 3 -> 2 down the encoders, and doubling
    on the way up gives 2 -> 4 where the skip to concatenate has 3 (and 3 -> 6 against 5, 5 -> 10
    against 9): torch.cat fails. diffusers' UNet2DConditionModel passes
    each upsampler the spatial size of the skip it will be concatenated with next
    (`upsample_size`) whenever a latent side is not a multiple of 8; `F.interpolate(size=...)`
    then picks the nearest source pixel for every target pixel (2 -> 3 repeats rows 0, 0, 1).
    `UNetConfig(any_latent_size=True)` makes the UNET do the same.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        if size is None:
            # (B, C, H, W) -> (B, C, 2H, 2W)
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        else:
            # (B, C, H, W) -> (B, C, size[0], size[1]): the next skip's size
            x = F.interpolate(x, size=tuple(size), mode="nearest")
        # (B, C, H', W') -> (B, C, H', W')
        return self.conv(x)


class SwitchSequential(nn.Sequential):
    """A Sequential that hands each layer what it needs: attention blocks get the context,
    residual blocks get the time embedding, an Upsample gets `size` when one is given
    (`UNetConfig(any_latent_size=True)`), everything else only x."""

    def forward(self, x: torch.Tensor, context: torch.Tensor, time: torch.Tensor,
                size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, UNET_AttentionBlock):
                x = layer(x, context)
            elif isinstance(layer, UNET_ResidualBlock):
                x = layer(x, time)
            elif isinstance(layer, Upsample) and size is not None:
                x = layer(x, size)
            else:
                x = layer(x)
        return x


class UNET(nn.Module):
    """Encoders (12 steps, each pushes a skip), a bottleneck, decoders (12 steps, each pops one).

    Widths below are SD v1's (c1, c2, c3) = (320, 640, 1280); the tiny config scales them.
    """

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.any_latent_size = config.any_latent_size
        c1, c2, c3 = config.channels
        n_head, n_time, n_groups, d_context = config.n_head, config.n_time, config.n_groups, config.d_context

        def res(cin, cout):
            return UNET_ResidualBlock(cin, cout, n_time=n_time, n_groups=n_groups)

        def attn(c):
            return UNET_AttentionBlock(n_head, c // n_head, d_context=d_context, n_groups=n_groups)

        def down(c):
            return nn.Conv2d(c, c, kernel_size=3, stride=2, padding=1)

        self.encoders = nn.ModuleList([
            # (B, 4, H/8, W/8) -> (B, 320, H/8, W/8)
            SwitchSequential(nn.Conv2d(config.in_channels, c1, kernel_size=3, padding=1)),
            # (B, 320, H/8, W/8) -> (B, 320, H/8, W/8)
            SwitchSequential(res(c1, c1), attn(c1)),
            SwitchSequential(res(c1, c1), attn(c1)),
            # (B, 320, H/8, W/8) -> (B, 320, H/16, W/16)
            SwitchSequential(down(c1)),
            # (B, 320, H/16, W/16) -> (B, 640, H/16, W/16)
            SwitchSequential(res(c1, c2), attn(c2)),
            SwitchSequential(res(c2, c2), attn(c2)),
            # (B, 640, H/16, W/16) -> (B, 640, H/32, W/32)
            SwitchSequential(down(c2)),
            # (B, 640, H/32, W/32) -> (B, 1280, H/32, W/32)
            SwitchSequential(res(c2, c3), attn(c3)),
            SwitchSequential(res(c3, c3), attn(c3)),
            # (B, 1280, H/32, W/32) -> (B, 1280, H/64, W/64)
            SwitchSequential(down(c3)),
            # (B, 1280, H/64, W/64) -> (B, 1280, H/64, W/64)
            SwitchSequential(res(c3, c3)),
            SwitchSequential(res(c3, c3)),
        ])

        # (B, 1280, H/64, W/64) -> (B, 1280, H/64, W/64)
        self.bottleneck = SwitchSequential(res(c3, c3), attn(c3), res(c3, c3))

        # Each decoder first concatenates the last skip: its input has (current + skip) channels.
        self.decoders = nn.ModuleList([
            # (B, 2560, H/64, W/64) -> (B, 1280, H/64, W/64)
            SwitchSequential(res(2 * c3, c3)),
            SwitchSequential(res(2 * c3, c3)),
            # (B, 2560, H/64, W/64) -> (B, 1280, H/64, W/64) -> (B, 1280, H/32, W/32)
            SwitchSequential(res(2 * c3, c3), Upsample(c3)),
            # (B, 2560, H/32, W/32) -> (B, 1280, H/32, W/32)
            SwitchSequential(res(2 * c3, c3), attn(c3)),
            SwitchSequential(res(2 * c3, c3), attn(c3)),
            # (B, 1920, H/32, W/32) -> (B, 1280, H/32, W/32) -> (B, 1280, H/16, W/16)
            SwitchSequential(res(c3 + c2, c3), attn(c3), Upsample(c3)),
            # (B, 1920, H/16, W/16) -> (B, 640, H/16, W/16)
            SwitchSequential(res(c3 + c2, c2), attn(c2)),
            # (B, 1280, H/16, W/16) -> (B, 640, H/16, W/16)
            SwitchSequential(res(2 * c2, c2), attn(c2)),
            # (B, 960, H/16, W/16) -> (B, 640, H/16, W/16) -> (B, 640, H/8, W/8)
            SwitchSequential(res(c2 + c1, c2), attn(c2), Upsample(c2)),
            # (B, 960, H/8, W/8) -> (B, 320, H/8, W/8)
            SwitchSequential(res(c2 + c1, c1), attn(c1)),
            # (B, 640, H/8, W/8) -> (B, 320, H/8, W/8)
            SwitchSequential(res(2 * c1, c1), attn(c1)),
            SwitchSequential(res(2 * c1, c1), attn(c1)),
        ])

    def forward(self, x: torch.Tensor, context: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """x: (B, 4, H/8, W/8); context: (B|1, L, d_context); time: (B|1, 1280) -> (B, 320, H/8, W/8)."""
        skip_connections = []
        for layers in self.encoders:
            x = layers(x, context, time)
            skip_connections.append(x)

        x = self.bottleneck(x, context, time)

        for layers in self.decoders:
            # (B, C, h, w) + (B, C_skip, h, w) -> (B, C + C_skip, h, w): current first, skip second
            x = torch.cat((x, skip_connections.pop()), dim=1)
            if self.any_latent_size and skip_connections:
                # an Upsample in this step goes to the size of the skip that the next step pops
                x = layers(x, context, time, size=skip_connections[-1].shape[-2:])
            else:
                x = layers(x, context, time)
        return x


class UNET_OutputLayer(nn.Module):
    """GroupNorm, SiLU, 3x3 conv: 320 channels -> the 4 channels of the predicted noise."""

    def __init__(self, in_channels: int, out_channels: int, n_groups: int = 32):
        super().__init__()
        self.groupnorm = nn.GroupNorm(n_groups, in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 320, H/8, W/8) -> (B, 320, H/8, W/8)
        x = self.groupnorm(x)
        x = F.silu(x)
        # (B, 320, H/8, W/8) -> (B, 4, H/8, W/8)
        return self.conv(x)


class Diffusion(nn.Module):
    """Time embedding + UNET + output layer: predicts the noise in a latent.

    forward(latent (B, 4, h, w), context (B|1, L, 768), time (B|1, 320)) -> (B, 4, h, w),
    where time is `sinusoidal_embedding(t)` and h, w are multiples of 8 (any size with
    `UNetConfig(any_latent_size=True)`).
    """

    # Image pixels per latent pixel along a side: 8 for SD's VAE (a 512 px image, a 64 x 64 latent).
    # Only labels read it (the attention recorder's "H/8" names); a model with another "VAE" sets its own.
    latent_factor: int = 8

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        self.time_embedding = TimeEmbedding(config.n_time_embd)
        self.unet = UNET(config)
        self.final = UNET_OutputLayer(config.channels[0], config.out_channels, n_groups=config.n_groups)

    def forward(self, latent: torch.Tensor, context: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        self.check_inputs(latent, context, time)
        # (B|1, 320) -> (B|1, 1280)
        time = self.time_embedding(time)
        # (B, 4, h, w) -> (B, 320, h, w)
        output = self.unet(latent, context, time)
        # (B, 320, h, w) -> (B, 4, h, w)
        return self.final(output)

    def check_inputs(self, latent: torch.Tensor, context: torch.Tensor, time: torch.Tensor) -> None:
        """Raise ValueError naming the problem and the fix; silent when the inputs are good."""
        cfg = self.config
        for name, value in (("latent", latent), ("context", context), ("time", time)):
            if not isinstance(value, torch.Tensor):
                raise ValueError(tr(f"Diffusion: {name} must be a torch.Tensor, got {type(value).__name__}."))
        if latent.ndim != 4:
            raise ValueError(
                tr(f"Diffusion: latent must be 4-D (batch, {cfg.in_channels}, height, width), got shape {tuple(latent.shape)}. "
                "For a single latent add the batch dimension: latent[None].")
            )
        b, c, h, w = latent.shape
        if c != cfg.in_channels:
            raise ValueError(
                tr(f"Diffusion: latent has {c} channels, this model expects {cfg.in_channels}. "
                   "Pass the VAE latent (B, 4, H/8, W/8), not the RGB image (B, 3, H, W).")
                if cfg.in_channels == 4 and c == 3 else
                tr(f"Diffusion: latent has {c} channels, this model expects {cfg.in_channels} (config.in_channels).")
            )
        for side, n in (("height", h), ("width", w)):
            if n == 0:
                raise ValueError(tr(f"Diffusion: latent {side} is 0; the latent needs at least one pixel per side."))
            if n % 8 != 0 and not cfg.any_latent_size:
                fix = (n // 8 + 1) * 8
                raise ValueError(
                    tr(f"Diffusion: latent {side} {n} is not a multiple of 8. This UNet is the notes' (and CompVis's "
                    f"original): it halves the resolution three times and doubles it back, so the skip connections "
                    f"line up only for multiples of 8. Use a latent {side} such as {fix} (image {fix * 8} px), "
                    f"or build the model with UNetConfig(..., any_latent_size=True): it upsamples to each skip's "
                    f"size, as diffusers' UNet does (SD pipelines take any image side that is a multiple of 8 px).")
                )
        if context.ndim != 3 or context.shape[-1] != cfg.d_context:
            raise ValueError(
                tidy(tr(f"Diffusion: context must be (batch, tokens, {cfg.d_context}), got shape {tuple(context.shape)}.")
                + (" " + tr("SD v1 expects CLIP ViT-L/14 text embeddings, e.g. (1, 77, 768).") if cfg.d_context == 768 else ""))
            )
        if context.shape[0] not in (1, b):
            raise ValueError(
                tr(f"Diffusion: context batch {context.shape[0]} cannot broadcast to latent batch {b}. "
                "Give one context per latent or a single one (batch 1) for all. With classifier-free guidance "
                "both the latent and the context hold the two halves (see sdcourse.sampling).")
            )
        if time.ndim != 2 or time.shape[-1] != cfg.n_time_embd:
            raise ValueError(
                tr(f"Diffusion: time must be the sinusoidal embedding (1 or batch, {cfg.n_time_embd}), got shape "
                f"{tuple(time.shape)}. Make it with sdcourse.sinusoidal_embedding(t, dim={cfg.n_time_embd}).")
            )
        if time.shape[0] not in (1, b):
            raise ValueError(
                tr(f"Diffusion: time batch {time.shape[0]} cannot broadcast to latent batch {b}. "
                "Give one timestep for all (1, 320) or one per latent (B, 320).")
            )
        p = next(self.parameters())
        for name, value in (("latent", latent), ("context", context), ("time", time)):
            if value.device != p.device and p.device.type != "meta":
                raise ValueError(
                    tr(f"Diffusion: {name} is on {value.device} but the model is on {p.device}. "
                    f"Move it with {name}.to({str(p.device)!r}) (or the model with model.to(...)).")
                )
            if value.dtype != p.dtype:
                raise ValueError(
                    tr(f"Diffusion: {name} has dtype {value.dtype} but the model's weights are {p.dtype}. "
                    f"Convert it with {name}.to({p.dtype}) (or the model with model.to({value.dtype})).")
                )
