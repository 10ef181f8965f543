"""Where each SD v1 UNet layer lives in a checkpoint: two short tables per layout.

diffusers' `UNet2DConditionModel` names blocks by level (`down_blocks.1.resnets.0`), the notes
name them by position in a flat list (`unet.encoders.4.0`). A layout's map is
1. where each block lives (`BLOCKS_DIFFUSERS`, `BLOCKS_COMPVIS`: made by a loop over the levels), and
2. how the layers inside a block are called (`RESNET_NAMES`, `RESNET_NAMES_COMPVIS`, `ATTENTION_NAMES`).
A block row is (source prefix, notes prefix, inner-name table, or None for a plain layer).
The only non-rename: self-attention's separate to_q/to_k/to_v become one fused `in_proj`
(weight = cat([W_q, W_k, W_v])), as in the notes' `SelfAttention`; a table marks it as (name, part).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

# Inside a residual block: diffusers name -> notes name.
RESNET_NAMES = {
    "norm1": "groupnorm_feature",
    "conv1": "conv_feature",
    "time_emb_proj": "linear_time",
    "norm2": "groupnorm_merged",
    "conv2": "conv_merged",
    "conv_shortcut": "residual_layer",
}

# Inside an attention block. A (name, i) target is part i of a tensor fused along dim 0.
_TB = "transformer_blocks.0."
ATTENTION_NAMES: Dict[str, Union[str, Tuple[str, int]]] = {
    "norm": "groupnorm",
    "proj_in": "conv_input",
    _TB + "norm1": "layernorm_1",
    _TB + "attn1.to_q": ("attention_1.in_proj", 0),
    _TB + "attn1.to_k": ("attention_1.in_proj", 1),
    _TB + "attn1.to_v": ("attention_1.in_proj", 2),
    _TB + "attn1.to_out.0": "attention_1.out_proj",
    _TB + "norm2": "layernorm_2",
    _TB + "attn2.to_q": "attention_2.q_proj",
    _TB + "attn2.to_k": "attention_2.k_proj",
    _TB + "attn2.to_v": "attention_2.v_proj",
    _TB + "attn2.to_out.0": "attention_2.out_proj",
    _TB + "norm3": "layernorm_3",
    _TB + "ff.net.0.proj": "linear_geglu_1",
    _TB + "ff.net.2": "linear_geglu_2",
    "proj_out": "conv_output",
}


def _diffusers_blocks() -> List[Tuple[str, str, Optional[dict]]]:
    """(diffusers prefix, notes prefix, inner-name table or None for a plain layer)."""
    blocks = [
        ("time_embedding.linear_1", "time_embedding.linear_1", None),
        ("time_embedding.linear_2", "time_embedding.linear_2", None),
        ("conv_in", "unet.encoders.0.0", None),
    ]
    for level in range(4):  # encoders 1..11: two (resnet[, attention]) pairs and a downsampler per level
        for j in range(2):
            e = 1 + 3 * level + j
            blocks.append((f"down_blocks.{level}.resnets.{j}", f"unet.encoders.{e}.0", RESNET_NAMES))
            if level < 3:  # the 4th level (H/64) has no attention
                blocks.append((f"down_blocks.{level}.attentions.{j}", f"unet.encoders.{e}.1", ATTENTION_NAMES))
        if level < 3:
            blocks.append((f"down_blocks.{level}.downsamplers.0.conv", f"unet.encoders.{3 + 3 * level}.0", None))
    blocks += [
        ("mid_block.resnets.0", "unet.bottleneck.0", RESNET_NAMES),
        ("mid_block.attentions.0", "unet.bottleneck.1", ATTENTION_NAMES),
        ("mid_block.resnets.1", "unet.bottleneck.2", RESNET_NAMES),
    ]
    for level in range(4):  # decoders 0..11: three (resnet[, attention]) per level, then an upsampler
        for j in range(3):
            d = 3 * level + j
            blocks.append((f"up_blocks.{level}.resnets.{j}", f"unet.decoders.{d}.0", RESNET_NAMES))
            if level > 0:  # the first decoder level (H/64) has no attention
                blocks.append((f"up_blocks.{level}.attentions.{j}", f"unet.decoders.{d}.1", ATTENTION_NAMES))
        if level < 3:
            position = 1 if level == 0 else 2  # after the resnet, or after resnet + attention
            blocks.append((f"up_blocks.{level}.upsamplers.0.conv", f"unet.decoders.{3 * level + 2}.{position}.conv", None))
    blocks += [
        ("conv_norm_out", "final.groupnorm", None),
        ("conv_out", "final.conv", None),
    ]
    return blocks


BLOCKS_DIFFUSERS = _diffusers_blocks()


# ---------------------------------------------------------------------------------------------
# The original single-file layout (CompVis / Stability `ldm`, e.g. v1-5-pruned-emaonly.safetensors).
# Its UNet keys start with `model.diffusion_model.`; the rest of the file (VAE `first_stage_model.*`,
# text encoder `cond_stage_model.*`, the noise schedule) is not the UNet and is not read.
# The notes copied this layout's structure, so block positions are the same numbers:
# input_blocks.i -> unet.encoders.i, middle_block -> unet.bottleneck, output_blocks.i -> unet.decoders.i.
# Attention blocks use the same inner names as diffusers (ATTENTION_NAMES); residual blocks do not.
# ---------------------------------------------------------------------------------------------

COMPVIS_PREFIX = "model.diffusion_model."

# Inside a residual block: CompVis name -> notes name (in_layers = [GroupNorm, SiLU, Conv], ...).
RESNET_NAMES_COMPVIS = {
    "in_layers.0": "groupnorm_feature",
    "in_layers.2": "conv_feature",
    "emb_layers.1": "linear_time",
    "out_layers.0": "groupnorm_merged",
    "out_layers.3": "conv_merged",  # out_layers = [GroupNorm, SiLU, Dropout, Conv]
    "skip_connection": "residual_layer",
}


def _compvis_blocks() -> List[Tuple[str, str, Optional[dict]]]:
    """(CompVis prefix, notes prefix, inner-name table or None for a plain layer)."""
    blocks = [
        ("time_embed.0", "time_embedding.linear_1", None),
        ("time_embed.2", "time_embedding.linear_2", None),
        ("input_blocks.0.0", "unet.encoders.0.0", None),
    ]
    for e in range(1, 12):
        if e in (3, 6, 9):  # a stride-2 conv, called `op` inside CompVis' Downsample
            blocks.append((f"input_blocks.{e}.0.op", f"unet.encoders.{e}.0", None))
            continue
        blocks.append((f"input_blocks.{e}.0", f"unet.encoders.{e}.0", RESNET_NAMES_COMPVIS))
        if e < 9:  # encoders 10, 11 (H/64) have no attention
            blocks.append((f"input_blocks.{e}.1", f"unet.encoders.{e}.1", ATTENTION_NAMES))
    blocks += [
        ("middle_block.0", "unet.bottleneck.0", RESNET_NAMES_COMPVIS),
        ("middle_block.1", "unet.bottleneck.1", ATTENTION_NAMES),
        ("middle_block.2", "unet.bottleneck.2", RESNET_NAMES_COMPVIS),
    ]
    for d in range(12):
        blocks.append((f"output_blocks.{d}.0", f"unet.decoders.{d}.0", RESNET_NAMES_COMPVIS))
        if d >= 3:  # decoders 0..2 (H/64) have no attention
            blocks.append((f"output_blocks.{d}.1", f"unet.decoders.{d}.1", ATTENTION_NAMES))
        if d in (2, 5, 8):  # the upsampler's conv, after the resnet (and the attention)
            position = 1 if d == 2 else 2
            blocks.append((f"output_blocks.{d}.{position}.conv", f"unet.decoders.{d}.{position}.conv", None))
    blocks += [
        ("out.0", "final.groupnorm", None),
        ("out.2", "final.conv", None),
    ]
    return blocks


BLOCKS_COMPVIS = _compvis_blocks()

LAYOUTS = {"compvis": BLOCKS_COMPVIS, "diffusers": BLOCKS_DIFFUSERS}
