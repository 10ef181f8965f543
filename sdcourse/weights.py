"""Key maps between checkpoints and the course's `Diffusion`.

diffusers' `UNet2DConditionModel` names blocks by level (`down_blocks.1.resnets.0`), the notes
name them by position in a flat list (`unet.encoders.4.0`). The map is two short tables:
1. where each block lives (`BLOCKS_DIFFUSERS`, made by a loop over the four levels), and
2. how the layers inside a block are called (`RESNET_NAMES`, `ATTENTION_NAMES`).
The only non-rename: self-attention's separate to_q/to_k/to_v become one fused `in_proj`
(weight = cat([W_q, W_k, W_v])), as in the notes' `SelfAttention`.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch

from .unet import UNetConfig

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


def rename_keys(state_dict: Mapping[str, torch.Tensor], blocks) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Rename `state_dict` with a block table; fuse split q/k/v. Returns (renamed, unmapped source keys)."""
    out: Dict[str, torch.Tensor] = {}
    fused: Dict[str, Dict[int, torch.Tensor]] = {}
    unmapped = []
    prefixes = {src: (dst, names) for src, dst, names in blocks}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")  # "...conv1", "weight"
        target = None
        # find the block: the longest table prefix that the module path starts with
        parts = module.split(".")
        for cut in range(len(parts), 0, -1):
            src = ".".join(parts[:cut])
            if src in prefixes:
                dst, names = prefixes[src]
                inner = ".".join(parts[cut:])
                if names is None:
                    target = dst if inner == "" else None
                else:
                    target = names.get(inner)
                    target = None if target is None else (
                        (f"{dst}.{target[0]}", target[1]) if isinstance(target, tuple) else f"{dst}.{target}")
                break
        if target is None:
            unmapped.append(key)
        elif isinstance(target, tuple):
            fused.setdefault(f"{target[0]}.{param}", {})[target[1]] = value
        else:
            out[f"{target}.{param}"] = value
    for key, parts in fused.items():
        if sorted(parts) != [0, 1, 2]:
            unmapped.extend(f"{key} (part {i} of q/k/v)" for i in sorted(parts))
            continue
        # 3 x (C, C) -> (3C, C): rows of W_q, then W_k, then W_v
        out[key] = torch.cat([parts[0], parts[1], parts[2]], dim=0)
    return out, unmapped


def convert_diffusers_unet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A diffusers `UNet2DConditionModel` state dict -> a `Diffusion` state dict (notes names).

    Raises ValueError listing any key it does not know (e.g. an SD 2.x/SDXL-only layer).
    """
    out, unmapped = rename_keys(state_dict, BLOCKS_DIFFUSERS)
    if unmapped:
        shown = "\n  ".join(unmapped[:20]) + ("\n  ..." if len(unmapped) > 20 else "")
        raise ValueError(
            f"convert_diffusers_unet: {len(unmapped)} key(s) have no place in the SD v1 UNet:\n  {shown}\n"
            "Is this an SD v1.x UNet (not SD 2.x, SDXL, or a full pipeline checkpoint)?"
        )
    return out


def compare_state_dicts(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> Dict[str, list]:
    """What stops `state_dict` from loading strictly into `model`: missing, unexpected, mis-shaped keys."""
    expected = model.state_dict()
    return {
        "missing": sorted(k for k in expected if k not in state_dict),
        "unexpected": sorted(k for k in state_dict if k not in expected),
        "mis-shaped": sorted(
            (k, tuple(state_dict[k].shape), tuple(v.shape))
            for k, v in expected.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
        ),
    }


def format_report(report: Dict[str, list], limit: int = 15) -> str:
    """A readable table of a `compare_state_dicts` report."""
    lines = []
    for kind in ("missing", "unexpected", "mis-shaped"):
        items = report.get(kind, [])
        if not items:
            continue
        lines.append(f"{kind} ({len(items)}):")
        for item in items[:limit]:
            if kind == "mis-shaped":
                key, got, want = item
                lines.append(f"  {key:<60} file {str(got):<20} model {want}")
            else:
                lines.append(f"  {item}")
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines)


def load_state_dict_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """`model.load_state_dict(state_dict)` that first explains every mismatch in one readable error."""
    report = compare_state_dicts(model, state_dict)
    if any(report.values()):
        raise ValueError("The weights do not fit the model:\n" + format_report(report))
    model.load_state_dict(state_dict, strict=True)
    return model


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
