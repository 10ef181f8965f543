"""Key maps between checkpoints and the course's `Diffusion`, and a safe, strict loader.

diffusers' `UNet2DConditionModel` names blocks by level (`down_blocks.1.resnets.0`), the notes
name them by position in a flat list (`unet.encoders.4.0`). The map is two short tables:
1. where each block lives (`BLOCKS_DIFFUSERS`, made by a loop over the four levels), and
2. how the layers inside a block are called (`RESNET_NAMES`, `ATTENTION_NAMES`).
The only non-rename: self-attention's separate to_q/to_k/to_v become one fused `in_proj`
(weight = cat([W_q, W_k, W_v])), as in the notes' `SelfAttention`.

The original single-file layout (`model.diffusion_model.*`, `BLOCKS_COMPVIS`) has the notes' own
block numbering and its own names inside residual blocks (`RESNET_NAMES_COMPVIS`).

`load_unet(path)` reads either layout (safetensors first; pickles only with weights_only=True),
refuses SD 2.x and SDXL UNets, and reports missing, unexpected and mis-shaped keys in one table.
"""
from __future__ import annotations

import json
import pickle
import re
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch

from .unet import Diffusion, UNetConfig

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


def load_state_dict_strict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], assign: bool = False
) -> torch.nn.Module:
    """`model.load_state_dict(state_dict)` that first explains every mismatch in one readable error.

    assign=True puts the given tensors into the model instead of copying them (for a model built on
    the `meta` device: no second copy of the weights in memory).
    """
    report = compare_state_dicts(model, state_dict)
    if any(report.values()):
        raise ValueError("The weights do not fit the model:\n" + format_report(report))
    model.load_state_dict(state_dict, strict=True, assign=assign)
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


class CheckpointError(ValueError):
    """A checkpoint cannot become the course's UNet; the message says why and what to do."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle checkpoint needs more than tensors to load, i.e. it could run code: refused."""


def _unmapped_error(unmapped: List[str], layout: str) -> CheckpointError:
    shown = "\n  ".join(unmapped[:20]) + ("\n  ..." if len(unmapped) > 20 else "")
    return CheckpointError(
        f"{len(unmapped)} key(s) of this {layout} checkpoint have no place in the SD v1 UNet:\n  {shown}\n"
        "Is this an SD v1.x UNet (not SD 2.x or SDXL)? A renamed or hand-edited key also ends up here."
    )


def convert_compvis_unet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """An original single-file checkpoint's state dict -> a `Diffusion` state dict (notes names).

    Keys may carry the `model.diffusion_model.` prefix (then every key without it, e.g. the VAE and
    the text encoder, is ignored) or be bare UNet keys (`input_blocks.0.0.weight`, ...).
    Raises CheckpointError (a ValueError) listing any UNet key it does not know.
    """
    unet_keys = {k[len(COMPVIS_PREFIX):]: v for k, v in state_dict.items() if k.startswith(COMPVIS_PREFIX)}
    out, unmapped = rename_keys(unet_keys or state_dict, BLOCKS_COMPVIS)
    if unmapped:
        raise _unmapped_error(unmapped, "CompVis")
    return out


def _inverse_table(blocks) -> Dict[str, Union[str, List[str]]]:
    """notes module path -> source module path (a list of 3 for a fused q/k/v projection)."""
    inverse: Dict[str, Union[str, List[str]]] = {}
    for src, dst, names in blocks:
        if names is None:
            inverse[dst] = src
            continue
        for inner, target in names.items():
            if isinstance(target, tuple):
                parts = inverse.setdefault(f"{dst}.{target[0]}", [None, None, None])
                parts[target[1]] = f"{src}.{inner}"
            else:
                inverse[f"{dst}.{target}"] = f"{src}.{inner}"
    return inverse


_INVERSE = {name: _inverse_table(blocks) for name, blocks in LAYOUTS.items()}


def source_keys(notes_key: str, layout: str) -> List[str]:
    """Where a `Diffusion` key lives in a checkpoint of `layout` ("compvis" or "diffusers").

    e.g. source_keys("unet.encoders.1.0.conv_feature.weight", "compvis")
         -> ["model.diffusion_model.input_blocks.1.0.in_layers.2.weight"]; a fused in_proj gives 3 keys.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"source_keys: layout must be one of {sorted(LAYOUTS)}, got {layout!r}.")
    module, _, param = notes_key.rpartition(".")
    src = _INVERSE[layout].get(module)
    if src is None:
        raise ValueError(f"source_keys: {notes_key!r} is not a key of the SD v1 `Diffusion` model.")
    prefix = COMPVIS_PREFIX if layout == "compvis" else ""
    return [f"{prefix}{s}.{param}" for s in ([src] if isinstance(src, str) else src)]


def export_unet(state_dict: Mapping[str, torch.Tensor], layout: str = "compvis") -> Dict[str, torch.Tensor]:
    """The inverse of the loaders: a `Diffusion` state dict -> `layout` names ("compvis" adds the
    `model.diffusion_model.` prefix). A fused q/k/v weight (3C, C) is split back into 3 x (C, C)."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        targets = source_keys(key, layout)
        if len(targets) == 1:
            out[targets[0]] = value
        else:
            # (3C, C) -> 3 x (C, C): W_q, W_k, W_v
            for target, part in zip(targets, value.chunk(3, dim=0)):
                out[target] = part.contiguous()
    return out


def save_unet(model: torch.nn.Module, path, layout: str = "compvis") -> Path:
    """Write `model`'s weights (a `Diffusion`) as one safetensors file in `layout`.

    "compvis" writes the UNet part of an original single-file checkpoint (keys
    `model.diffusion_model.*`); "diffusers" writes what `unet/diffusion_pytorch_model.safetensors` holds.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save_unet: write a .safetensors file (safe to share), got {path.name!r}.")
    tensors = export_unet({k: v.detach().cpu() for k, v in model.state_dict().items()}, layout)
    save_file(tensors, str(path), metadata={"format": "pt", "written_by": "sdcourse", "layout": layout})
    return path


# ---------------------------------------------------------------------------------------------
# Which UNet is this? Layout (where the keys live) and architecture (SD v1, SD 2.x, SDXL).
# ---------------------------------------------------------------------------------------------

def detect_layout(keys) -> str:
    """"compvis" (original single file, with or without `model.diffusion_model.`), "diffusers", or
    "course" (a saved `Diffusion` state dict). Raises CheckpointError when it holds no UNet."""
    keys = list(keys)
    if any(k.startswith(COMPVIS_PREFIX) for k in keys):
        return "compvis"
    if any(k.startswith(("input_blocks.", "middle_block.", "output_blocks.")) for k in keys):
        return "compvis"
    if any(k.startswith(("down_blocks.", "mid_block.", "up_blocks.", "conv_in.")) for k in keys):
        return "diffusers"
    if any(k.startswith(("unet.encoders.", "unet.decoders.")) for k in keys):
        return "course"
    shown = ", ".join(keys[:5]) or "(no tensors at all)"
    raise CheckpointError(
        f"No UNet weights found: the keys look like {shown} ... Expected an original single-file SD "
        "checkpoint (model.diffusion_model.*), a diffusers UNet (down_blocks.*, in unet/), or a saved "
        "course Diffusion (unet.encoders.*). A VAE or text-encoder file alone does not hold the UNet."
    )


def _unet_part(keys, layout: str) -> Dict[str, str]:
    """UNet key without prefix -> key in the file."""
    if layout == "compvis" and any(k.startswith(COMPVIS_PREFIX) for k in keys):
        return {k[len(COMPVIS_PREFIX):]: k for k in keys if k.startswith(COMPVIS_PREFIX)}
    return {k: k for k in keys}


def check_sd_v1(state_dict: Mapping[str, torch.Tensor], where: str = "this checkpoint") -> None:
    """Refuse an SD 2.x or SDXL UNet with a message saying which one it is and why it cannot load.

    Reads only key names and shapes, so `meta` tensors do (nothing is loaded). Accepts any layout.
    """
    keys = list(state_dict)
    unet = _unet_part(keys, detect_layout(keys))
    contexts = {tuple(state_dict[f].shape)[-1] for k, f in unet.items() if k.endswith("attn2.to_k.weight")}
    xl, sd2 = [], []
    if any(k.startswith(("add_embedding.", "label_emb.")) for k in unet):
        xl.append("an extra embedding of image size and crop (add_embedding / label_emb)")
    if any(".transformer_blocks.1." in k for k in unet):
        xl.append("more than one transformer layer in an attention block")
    if 2048 in contexts:
        xl.append("a 2048-wide text context (two text encoders)")
    if any(k.startswith("conditioner.embedders.") for k in keys):
        xl.append("two text encoders (conditioner.embedders)")
    if any(k.endswith("proj_in.weight") and state_dict[f].ndim == 2 for k, f in unet.items()):
        sd2.append("linear proj_in/proj_out (SD v1 uses 1x1 convolutions)")
    if 1024 in contexts:
        sd2.append("a 1024-wide text context (OpenCLIP ViT-H; SD v1 uses CLIP ViT-L/14's 768)")
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        sd2.append("an OpenCLIP text encoder (cond_stage_model.model)")
    use_v1 = ("The course rebuilds the SD v1 UNet; use an SD v1.x checkpoint, e.g. "
              "stable-diffusion-v1-5/stable-diffusion-v1-5 (v1-5-pruned-emaonly.safetensors or its unet/ folder).")
    if xl:
        raise CheckpointError(
            f"{where} holds an SDXL UNet, not SD v1.x. Found: " + "; ".join(xl) + ". SDXL's UNet has three "
            "levels instead of four, up to 10 transformer layers per block, a 2048-wide context and size "
            "conditioning: a different architecture whose weights cannot fit the course's UNet. " + use_v1
        )
    if sd2:
        raise CheckpointError(
            f"{where} holds an SD 2.x UNet, not SD v1.x. Found: " + "; ".join(sd2) + ". SD 2.x keeps the block "
            "plan but changes the context width (1024), the projections (linear) and the heads (64 channels "
            "each: 5/10/20 heads instead of 8), so its weights do not fit the course's UNet. " + use_v1
        )


def config_from_diffusers(config: Mapping) -> UNetConfig:
    """A diffusers `UNet2DConditionModel` config (its `config.json` or `unet.config`) -> `UNetConfig`.

    Raises CheckpointError for configs that are not the SD v1 block plan (SD 2.x, SDXL, LCM, ...).
    """
    config = dict(config)
    get = config.get
    layers = get("transformer_layers_per_block", 1)
    if get("addition_embed_type") or get("cross_attention_dim") == 2048 or layers not in (1, [1] * 4, (1,) * 4):
        raise CheckpointError(
            "This diffusers config is an SDXL UNet (addition_embed_type="
            f"{get('addition_embed_type')!r}, cross_attention_dim={get('cross_attention_dim')}, "
            f"transformer_layers_per_block={layers}); the course's UNet is SD v1.x. Use an SD v1.x model."
        )
    # diffusers' quirk: SD v1's config says attention_head_dim=8 and means 8 heads
    heads = get("num_attention_heads") or get("attention_head_dim", 8)
    if get("cross_attention_dim") == 1024 or get("use_linear_projection") or not isinstance(heads, int):
        raise CheckpointError(
            f"This diffusers config is an SD 2.x UNet (cross_attention_dim={get('cross_attention_dim')}, "
            f"use_linear_projection={get('use_linear_projection')}, attention_head_dim={get('attention_head_dim')}); "
            "the course's UNet is SD v1.x. Use an SD v1.x model."
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
        raise CheckpointError(
            f"This diffusers UNet differs from the SD v1 block plan in: {odd}. "
            f"The course's UNet expects {({k: expected[k] for k in odd if k in expected})} "
            "(and block_out_channels (c1, c2, c3, c3)). Use an SD v1.x UNet."
        )
    return UNetConfig(
        channels=channels[:3], n_head=heads, d_context=get("cross_attention_dim", 768),
        n_groups=get("norm_num_groups", 32), in_channels=get("in_channels", 4), out_channels=get("out_channels", 4),
    )


def _plain(value):
    """Lists and tuples compare equal in configs read from JSON."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _config_from_shapes(state_dict: Mapping[str, torch.Tensor], where: str) -> UNetConfig:
    """SD v1 with the file's in/out channels, when the widths say SD v1; otherwise ask for a config."""
    def dim(key, axis):
        return tuple(state_dict[key].shape)[axis] if key in state_dict else None

    in_channels, out_channels = dim("unet.encoders.0.0.weight", 1), dim("final.conv.weight", 0)
    channels = (dim("unet.encoders.0.0.weight", 0), dim("unet.encoders.4.0.conv_feature.weight", 0),
                dim("unet.encoders.7.0.conv_feature.weight", 0))
    d_context = dim("unet.encoders.1.1.attention_2.k_proj.weight", 1)
    sd_v1 = UNetConfig()
    if None in channels or d_context is None or (channels == sd_v1.channels and d_context == sd_v1.d_context):
        # SD v1 (or too broken to tell: the strict report below says what is missing)
        return UNetConfig(in_channels=in_channels or 4, out_channels=out_channels or 4)
    tiny = UNetConfig.tiny()
    hint = " They match UNetConfig.tiny(): pass config=UNetConfig.tiny()." if (
        channels == tiny.channels and d_context == tiny.d_context) else ""
    raise CheckpointError(
        f"The UNet in {where} has widths {channels} and a {d_context}-wide context, not SD v1's "
        f"{sd_v1.channels} and {sd_v1.d_context}. The number of heads and of GroupNorm groups are not stored "
        "in the weights, so say which model it is: load_unet(path, config=UNetConfig(channels="
        f"{channels}, d_context={d_context}, n_head=..., n_groups=...)).{hint}"
    )


# ---------------------------------------------------------------------------------------------
# Reading files safely: safetensors first; pickles only through torch.load(weights_only=True).
# ---------------------------------------------------------------------------------------------

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
_DIFFUSERS_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                    "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin")


def _truncated(path: Path, error: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path.name} ({path.stat().st_size:,} bytes) cannot be read: it looks truncated or corrupt ({error}). "
        "An interrupted download is the usual cause: delete the file and download it again "
        "(huggingface_hub resumes and checks downloads)."
    )


def _check_safetensors_size(path: Path) -> None:
    """A safetensors file is an 8-byte header length, a JSON header, then the data: check that it is all there."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise _truncated(path, RuntimeError("the header is incomplete"))
        try:
            header = json.loads(f.read(n))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise _truncated(path, RuntimeError(f"the header is not valid JSON: {error}")) from None
    if 8 + n + end > size:
        raise _truncated(path, RuntimeError(f"the header promises {8 + n + end:,} bytes, the file has {size:,}"))


def _unsafe(path: Path, error: Exception) -> UnsafeCheckpointError:
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return UnsafeCheckpointError(
        f"Refused to load {path.name}: this pickle needs more than tensors to load"
        + (f" (it asks for the Python object `{found.group(1)}`)" if found else "")
        + ". Unpickling it fully could run arbitrary code on this machine (a pickle may call any Python "
        "function while it loads), so it was only read with torch.load(weights_only=True) and nothing in it "
        "was executed. What to do: use the .safetensors version of these weights (e.g. v1-5-pruned-emaonly.safetensors), or, only if you trust its source, "
        "convert it to safetensors once in a throw-away environment and load that file."
    )


def _torch_load(path: Path) -> Dict[str, torch.Tensor]:
    """torch.load(weights_only=True), memory-mapped when the file is a zip checkpoint."""
    with open(path, "rb") as f:
        head = f.read(4)
    is_zip = zipfile.is_zipfile(path)
    if head.startswith(b"PK") and not is_zip:
        raise _truncated(path, RuntimeError("the zip archive has no central directory"))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as error:
        if re.search(r"Unsupported|not an allowed global|WeightsUnpickler", str(error)):
            raise _unsafe(path, error) from None
        raise _truncated(path, error) from None
    except Exception as error:  # weights_only reading runs no code: any other failure is a damaged file
        raise _truncated(path, error) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a (PyTorch Lightning) training checkpoint
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path.name} holds a {type(state).__name__}, not a dict of tensors.")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _open_checkpoint(path: Path, stack: ExitStack) -> Tuple[Dict[str, torch.Tensor], Callable[[str], torch.Tensor]]:
    """(every key -> a `meta` tensor of its shape, read(key) -> the real tensor on the CPU). Reads no data."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the download did not finish. Download it again.")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import safe_open

        _check_safetensors_size(path)
        try:
            handle = stack.enter_context(safe_open(str(path), framework="pt", device="cpu"))
        except Exception as error:  # safetensors' own SafetensorError: header or data incomplete
            raise _truncated(path, error) from None
        shapes = {k: torch.empty(handle.get_slice(k).get_shape(), device="meta") for k in handle.keys()}
        return shapes, handle.get_tensor
    if suffix in PICKLE_SUFFIXES:
        tensors = _torch_load(path)
        return {k: v.to("meta") for k, v in tensors.items()}, tensors.__getitem__
    raise CheckpointError(
        f"{path.name}: unknown file type {suffix!r}. Give a .safetensors file (preferred), a pickle "
        f"({', '.join(PICKLE_SUFFIXES)}, read with weights_only=True), or a diffusers folder."
    )


def _find_weights(path: Path, dtype: torch.dtype) -> Tuple[Path, Optional[dict]]:
    """A file or a diffusers folder (a pipeline folder or its unet/) -> (weights file, config.json or None)."""
    if not path.exists():
        raise CheckpointError(
            f"{path} does not exist. Download the weights first, e.g. huggingface_hub.snapshot_download("
            "'stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['unet/*']) or hf_hub_download(..., "
            "'v1-5-pruned-emaonly.safetensors')."
        )
    if path.is_dir():
        folder = path / "unet" if (path / "unet").is_dir() else path
        names = list(_DIFFUSERS_FILES)
        if dtype == torch.float16:  # the fp16 variant is half the bytes to read
            names.sort(key=lambda n: ".fp16." not in n)
        names.sort(key=lambda n: not n.endswith(".safetensors"))  # safetensors first, always
        found = [folder / n for n in names if (folder / n).is_file()]
        if not found:
            shards = sorted(p.name for p in folder.glob("*.index.json"))
            listing = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"
            raise CheckpointError(
                f"No UNet weights in the folder {folder} (it holds: {listing}). Expected one of "
                f"{', '.join(_DIFFUSERS_FILES)}" + (" (sharded checkpoints are not supported)" if shards else "") + "."
            )
        path = found[0]
    config_file = path.parent / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else None
    return path, config


def load_unet(path_or_dir, dtype: Optional[torch.dtype] = None, device=None,
              config: Optional[UNetConfig] = None) -> Diffusion:
    """Load SD v1.x UNet weights into the course's `Diffusion`, safely and strictly.

    path_or_dir: an original single-file checkpoint (`v1-5-pruned-emaonly.safetensors`, keys
        `model.diffusion_model.*`), a diffusers UNet file or folder (`unet/diffusion_pytorch_model.safetensors`
        + `config.json`), a whole diffusers pipeline folder (its `unet/` is used), or a saved course
        `Diffusion`. `.safetensors` is preferred; `.ckpt/.bin/.pt/.pth` are read only with
        `torch.load(weights_only=True)`, and a pickle that needs more is refused (UnsafeCheckpointError).
    dtype: default float16 on a CUDA device, float32 elsewhere.
    device: where the weights go (default CPU). The model is built on `meta` and takes the loaded tensors
        as they are (`assign=True`): one copy of the weights in memory, in the target dtype.
    config: the `UNetConfig`; default: read from the diffusers `config.json`, else SD v1 (checked
        against the shapes in the file).
    Raises CheckpointError (a ValueError) naming the problem: a truncated file, an SD 2.x or SDXL UNet,
    or a table of missing, unexpected and mis-shaped keys.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    dtype = dtype if dtype is not None else (torch.float16 if device.type == "cuda" else torch.float32)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"load_unet: dtype must be a floating torch.dtype (torch.float16, torch.float32, ...), got {dtype!r}."
        )
    if config is not None and not isinstance(config, UNetConfig):
        raise ValueError(f"load_unet: config must be a sdcourse.UNetConfig, got {type(config).__name__}.")
    path, config_json = _find_weights(Path(path_or_dir), dtype)
    with ExitStack() as stack:
        shapes, read = _open_checkpoint(path, stack)
        layout = detect_layout(shapes)
        check_sd_v1(shapes, where=path.name)
        unet_keys = _unet_part(list(shapes), layout)  # UNet key -> file key
        meta, unmapped = _rename({k: shapes[f] for k, f in unet_keys.items()}, layout)
        if config is None and config_json is not None and layout == "diffusers":
            config = config_from_diffusers(config_json)
        if config is None:
            config = _config_from_shapes(meta, path.name)
        with torch.device("meta"):
            model = Diffusion(config)
        report = compare_state_dicts(model, meta)
        if unmapped or any(report.values()):
            prefix = COMPVIS_PREFIX if any(f.startswith(COMPVIS_PREFIX) for f in unet_keys.values()) else ""
            report["missing"] = [_with_file_key(k, layout, prefix) for k in report["missing"]]
            unmapped = [f"{prefix}{k}  (file key, no place in the SD v1 UNet)" for k in unmapped]
            report["unexpected"] = unmapped + report["unexpected"]
            raise CheckpointError(
                f"The weights in {path.name} ({layout} layout) do not fit the course's UNet "
                f"({config}):\n{format_report(report)}\n"
                "A renamed key shows up as one missing and one unexpected; mis-shaped keys mean another "
                "configuration (pass config=...) or another model."
            )
        # Now read the data, one tensor at a time, straight into the target dtype and device.
        tensors = {k: read(f).to(device=device, dtype=dtype) for k, f in unet_keys.items()}
    state, _ = _rename(tensors, layout)
    del tensors
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def _rename(state_dict, layout: str):
    if layout == "course":
        return dict(state_dict), []
    return rename_keys(state_dict, LAYOUTS[layout])


def _with_file_key(key: str, layout: str, prefix: str) -> str:
    """A missing model key, with the file key it was looked for under (`prefix`: the file's UNet prefix)."""
    if layout == "course":
        return key
    try:
        files = source_keys(key, layout)  # compvis keys come with COMPVIS_PREFIX
    except ValueError:
        return key
    first = prefix + files[0][len(COMPVIS_PREFIX):] if layout == "compvis" else files[0]
    return f"{key}  <- file key {first}" + (" (+ k, v)" if len(files) > 1 else "")
