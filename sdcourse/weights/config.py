"""The UNet's configuration, between the course's `UNetConfig` and what checkpoints carry.

    diffusers_config(config)       `UNetConfig` -> keyword arguments of diffusers' `UNet2DConditionModel`
    config_from_diffusers(config)  a diffusers `config.json` -> `UNetConfig` (refusing SD 2.x, SDXL, ...)
    config_from_shapes(shapes)     SD v1 from the widths in the weights, or an error asking for a config
"""
from __future__ import annotations

from typing import Mapping


from ..unet import UNetConfig
from .errors import ArchitectureError
from .report import shape_of
from ..i18n import tr


def diffusers_config(config: UNetConfig = UNetConfig()) -> dict:
    """Keyword arguments for diffusers' `UNet2DConditionModel` that build the same UNet as `config`."""
    c1, c2, c3 = config.channels
    return dict(
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        block_out_channels=(c1, c2, c3, c3),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=config.d_context,
        attention_head_dim=config.n_head,  # diffusers' name for the number of heads in SD v1
        norm_num_groups=config.n_groups,
        norm_eps=1e-5,
        flip_sin_to_cos=True,
        freq_shift=0,
        act_fn="silu",
        sample_size=64,
    )


def config_from_diffusers(config: Mapping) -> UNetConfig:
    """A diffusers `UNet2DConditionModel` config (its `config.json` or `unet.config`) -> `UNetConfig`.

    Raises ArchitectureError (a CheckpointError) for configs that are not the SD v1 block plan (SD 2.x, SDXL, LCM, ...).
    """
    config = dict(config)
    get = config.get
    layers = get("transformer_layers_per_block", 1)
    if get("addition_embed_type") or get("cross_attention_dim") == 2048 or layers not in (1, [1] * 4, (1,) * 4):
        raise ArchitectureError(
            tr("This diffusers config is an SDXL UNet (addition_embed_type="
               f"{get('addition_embed_type')!r}, cross_attention_dim={get('cross_attention_dim')}, "
               f"transformer_layers_per_block={layers}); the course's UNet is SD v1.x. Use an SD v1.x model.")
        )
    # diffusers' quirk: SD v1's config says attention_head_dim=8 and means 8 heads
    heads = get("num_attention_heads") or get("attention_head_dim", 8)
    if get("cross_attention_dim") == 1024 or get("use_linear_projection") or not isinstance(heads, int):
        raise ArchitectureError(
            tr(f"This diffusers config is an SD 2.x UNet (cross_attention_dim={get('cross_attention_dim')}, "
               f"use_linear_projection={get('use_linear_projection')}, attention_head_dim={get('attention_head_dim')}); "
               "the course's UNet is SD v1.x. Use an SD v1.x model.")
        )
    channels = tuple(get("block_out_channels", (320, 640, 1280, 1280)))
    expected = dict(
        layers_per_block=2, down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, norm_eps=1e-5, flip_sin_to_cos=True,
        freq_shift=0, act_fn="silu", class_embed_type=None, num_class_embeds=None, time_cond_proj_dim=None,
        center_input_sample=False, encoder_hid_dim_type=None, time_embedding_type="positional",
        resnet_time_scale_shift="default", only_cross_attention=False, dual_cross_attention=False,
        mid_block_type="UNetMidBlock2DCrossAttn", conv_in_kernel=3, conv_out_kernel=3, downsample_padding=1,
        mid_block_scale_factor=1, resnet_out_scale_factor=1.0, resnet_skip_time_act=False, timestep_post_act=None,
        time_embedding_dim=None, time_embedding_act_fn=None, attention_type="default", cross_attention_norm=None,
        class_embeddings_concat=False,
    )
    odd = {k: get(k) for k, v in expected.items() if k in config and _plain(get(k)) != _plain(v)}
    if len(channels) != 4 or channels[3] != channels[2]:
        odd["block_out_channels"] = list(channels)
    if odd:
        raise ArchitectureError(
            tr(f"This diffusers UNet differs from the SD v1 block plan in: {odd}. "
               f"The course's UNet expects {({k: expected[k] for k in odd if k in expected})} "
               "(and block_out_channels (c1, c2, c3, c3)). Use an SD v1.x UNet.")
        )
    return UNetConfig(
        channels=channels[:3], n_head=heads, d_context=get("cross_attention_dim", 768),
        n_groups=get("norm_num_groups", 32), in_channels=get("in_channels", 4), out_channels=get("out_channels", 4),
    )


def _plain(value):
    """Lists and tuples compare equal in configs read from JSON."""
    return list(value) if isinstance(value, (list, tuple)) else value


def config_from_shapes(state_dict: Mapping, where: str) -> UNetConfig:
    """SD v1 with the file's in/out channels, when the widths say SD v1; otherwise ask for a config."""
    def dim(key, axis):
        return shape_of(state_dict[key])[axis] if key in state_dict else None

    in_channels, out_channels = dim("unet.encoders.0.0.weight", 1), dim("final.conv.weight", 0)
    channels = (dim("unet.encoders.0.0.weight", 0), dim("unet.encoders.4.0.conv_feature.weight", 0),
                dim("unet.encoders.7.0.conv_feature.weight", 0))
    d_context = dim("unet.encoders.1.1.attention_2.k_proj.weight", 1)
    sd_v1 = UNetConfig()
    if None in channels or d_context is None or (channels == sd_v1.channels and d_context == sd_v1.d_context):
        # SD v1 (or too broken to tell: the strict report below says what is missing)
        return UNetConfig(in_channels=in_channels or 4, out_channels=out_channels or 4)
    tiny = UNetConfig.tiny()
    hint = tr(" They match UNetConfig.tiny(): pass config=UNetConfig.tiny().") if (
        channels == tiny.channels and d_context == tiny.d_context) else ""
    raise ArchitectureError(
        tr(f"The UNet in {where} has widths {channels} and a {d_context}-wide context, not SD v1's "
           f"{sd_v1.channels} and {sd_v1.d_context}. The number of heads and of GroupNorm groups are not stored "
           "in the weights, so say which model it is: load_unet(path, config=UNetConfig(channels="
           f"{channels}, d_context={d_context}, n_head=..., n_groups=...)).{hint}")
    )
