"""Where the VAE's weights live in a checkpoint, and `load_vae` (safe and strict, like `load_unet`).

Three layouts hold the same 83,653,863 numbers:
- "compvis": the original code's names, which `sdcourse.vae.AutoencoderKL` uses too. A single-file SD
  checkpoint stores them under `first_stage_model.` (cut the prefix and they load as they are); a
  standalone CompVis VAE file (e.g. vae-ft-mse-840000-ema-pruned) stores them bare.
- "diffusers": `vae/diffusion_pytorch_model.safetensors`. Blocks are named by role
  (`down_blocks.1.resnets.0`), the decoder's levels are numbered from the smallest
  (`up_blocks.0` is CompVis' `up.3`), and the attention projections are Linear layers, (C, C),
  where CompVis has 1x1 convs, (C, C, 1, 1): same numbers, reshaped.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from .vae import LATENT_SCALE, AutoencoderKL, VAEConfig
from .weights import (
    ArchitectureError,
    CheckpointError,
    NotACheckpointError,
    check_sd_v1,
    compare_state_dicts,
    format_report,
    read_checkpoint,
)
from .i18n import tr

COMPVIS_VAE_PREFIX = "first_stage_model."

# Inside a residual block: course (CompVis) name -> diffusers name.
RESNET_NAMES = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut"}

# Inside the attention block. diffusers before 0.14 wrote query/key/value/proj_attn (the first
# SD v1.x `vae/` folders on the Hub still hold those names); both are read, the new ones written.
ATTENTION_NAMES = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
ATTENTION_NAMES_OLD = {"query": "q", "key": "k", "value": "v", "proj_attn": "proj_out"}
PROJECTIONS = ("q", "k", "v", "proj_out")  # 1x1 convs here, Linear layers in diffusers


def diffusers_module_map(n_levels: int = 4, layers_per_block: int = 2) -> Dict[str, str]:
    """course module path -> diffusers module path, for every layer with weights in a VAE of that plan
    (a 1x1 `nin_shortcut` is listed for every residual block; only those that change width have one)."""
    n, layers = n_levels, layers_per_block
    table = {"quant_conv": "quant_conv", "post_quant_conv": "post_quant_conv"}

    def resnet(course: str, diffusers: str) -> None:
        table.update({f"{course}.{a}": f"{diffusers}.{b}" for a, b in RESNET_NAMES.items()})

    for part in ("encoder", "decoder"):
        table.update({f"{part}.conv_in": f"{part}.conv_in", f"{part}.norm_out": f"{part}.conv_norm_out",
                      f"{part}.conv_out": f"{part}.conv_out"})
        resnet(f"{part}.mid.block_1", f"{part}.mid_block.resnets.0")
        resnet(f"{part}.mid.block_2", f"{part}.mid_block.resnets.1")
        table.update({f"{part}.mid.attn_1.{a}": f"{part}.mid_block.attentions.0.{b}"
                      for a, b in ATTENTION_NAMES.items()})
    for i in range(n):
        for j in range(layers):
            resnet(f"encoder.down.{i}.block.{j}", f"encoder.down_blocks.{i}.resnets.{j}")
        if i < n - 1:
            table[f"encoder.down.{i}.downsample.conv"] = f"encoder.down_blocks.{i}.downsamplers.0.conv"
        for j in range(layers + 1):  # the decoder's level i is diffusers' up_blocks.(n - 1 - i)
            resnet(f"decoder.up.{i}.block.{j}", f"decoder.up_blocks.{n - 1 - i}.resnets.{j}")
        if i > 0:
            table[f"decoder.up.{i}.upsample.conv"] = f"decoder.up_blocks.{n - 1 - i}.upsamplers.0.conv"
    return table


def _plan(keys) -> Tuple[int, int]:
    """(levels, residual blocks per level) of a diffusers VAE state dict, from its key names."""
    levels = [int(k.split(".")[2]) for k in keys if k.startswith(("encoder.down_blocks.", "decoder.up_blocks."))]
    blocks = [int(k.split(".")[4]) for k in keys if k.startswith(("encoder.down_blocks.", "decoder.up_blocks."))
              and k.split(".")[3] == "resnets"]
    return max(levels, default=0) + 1, max(blocks, default=0) + 1  # generous: extra table rows match nothing


def _from_diffusers_table(n_levels: int, layers_per_block: int) -> Dict[str, str]:
    """diffusers module path (new and old attention names) -> course module path."""
    inverse = {d: c for c, d in diffusers_module_map(n_levels, layers_per_block).items()}
    for old, course in ATTENTION_NAMES_OLD.items():
        for part in ("encoder", "decoder"):
            inverse[f"{part}.mid_block.attentions.0.{old}"] = f"{part}.mid.attn_1.{course}"
    return inverse


def _is_projection(module: str) -> bool:
    return ".attn_1." in module and module.rpartition(".")[2] in PROJECTIONS


def convert_diffusers_vae(state_dict: Mapping[str, torch.Tensor], config: Optional[VAEConfig] = None
                          ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """A diffusers `AutoencoderKL` state dict -> (course state dict, diffusers keys with no place in it).

    config: its number of levels says which `up_blocks.k` is the decoder's `up.i` (default: read
    from the key names). Attention projection weights (C, C) become 1x1 conv weights (C, C, 1, 1).
    """
    plan = (len(config.channels), config.layers_per_block) if config is not None else _plan(state_dict)
    table = _from_diffusers_table(*plan)
    out: Dict[str, torch.Tensor] = {}
    unmapped: List[str] = []
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        target = table.get(module)
        if target is None:
            unmapped.append(key)
            continue
        if _is_projection(target) and param == "weight" and value.ndim == 2:
            # (C_out, C_in) -> (C_out, C_in, 1, 1): a Linear layer's weight as a 1x1 conv's
            value = value[:, :, None, None]
        out[f"{target}.{param}"] = value
    return out, unmapped


def export_diffusers_vae(state_dict: Mapping[str, torch.Tensor], config: VAEConfig = VAEConfig()
                         ) -> Dict[str, torch.Tensor]:
    """The inverse: a course `AutoencoderKL` state dict -> diffusers names (what `vae/` holds)."""
    table = diffusers_module_map(len(config.channels), config.layers_per_block)
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        if module not in table:
            raise ValueError(tr(f"export_diffusers_vae: {key!r} is not a key of a VAE with {config}."))
        if _is_projection(module) and param == "weight":
            # (C_out, C_in, 1, 1) -> (C_out, C_in)
            value = value.flatten(1)
        out[f"{table[module]}.{param}"] = value
    return out


def diffusers_vae_config(config: VAEConfig = VAEConfig()) -> dict:
    """Keyword arguments for diffusers' `AutoencoderKL` that build the same VAE as `config`."""
    n = len(config.channels)
    return dict(
        in_channels=config.in_channels, out_channels=config.out_channels,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=config.channels, layers_per_block=config.layers_per_block, act_fn="silu",
        latent_channels=config.latent_channels, norm_num_groups=config.n_groups,
        scaling_factor=config.scaling_factor,
    )


# ---------------------------------------------------------------------------------------------
# load_vae: which layout, which configuration, then the same rules as load_unet.
# ---------------------------------------------------------------------------------------------

_DIFFUSERS_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                    "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin")
_DIFFUSERS_STARTS = ("encoder.down_blocks.", "encoder.mid_block.", "decoder.up_blocks.", "decoder.mid_block.")
_COMPVIS_STARTS = ("encoder.down.", "encoder.mid.", "decoder.up.", "decoder.mid.")
_UNET_PREFIX = "model.diffusion_model."


def vae_part(keys) -> Tuple[str, Dict[str, str]]:
    """(layout, VAE key without the file's prefix -> key in the file) for the keys of a weights file.

    "compvis": `first_stage_model.*` of a single-file checkpoint, or bare CompVis keys (a standalone
    VAE file, or a saved course AutoencoderKL; its training-loss weights `loss.*`, if any, are left
    out); "diffusers": `encoder.down_blocks.*`, ... Raises ArchitectureError when no VAE is there.
    """
    keys = list(keys)
    if any(k.startswith(COMPVIS_VAE_PREFIX) for k in keys):
        return "compvis", {k[len(COMPVIS_VAE_PREFIX):]: k for k in keys if k.startswith(COMPVIS_VAE_PREFIX)}
    if any(k.startswith(_DIFFUSERS_STARTS) for k in keys):
        return "diffusers", {k: k for k in keys}
    if any(k.startswith(_COMPVIS_STARTS) for k in keys):
        return "compvis", {k: k for k in keys if not k.startswith("loss.")}
    shown = ", ".join(keys[:4]) or "(no tensors at all)"
    unet = any(k.startswith((_UNET_PREFIX, "down_blocks.", "input_blocks.")) for k in keys)
    raise ArchitectureError(
        tr(f"No VAE weights found: the keys look like {shown} ...")
        + (tr(" This file holds a UNet only.") if unet else "")
        + tr(" Expected a single-file SD checkpoint (first_stage_model.*), a diffusers VAE (the vae/ folder: "
             "encoder.down_blocks.*, ...) or a CompVis VAE file (encoder.down.*, ...).")
    )


def config_from_diffusers_vae(config: Mapping) -> VAEConfig:
    """A diffusers `AutoencoderKL` config (its `config.json` or `vae.config`) -> `VAEConfig`.

    Raises ArchitectureError naming every setting the course's VAE does not have (another block
    type, no quant_conv, a latent shift as in SD3/FLUX, ...)."""
    get = dict(config).get
    n = len(get("block_out_channels", (64,)))
    expected = dict(_class_name="AutoencoderKL", act_fn="silu", down_block_types=["DownEncoderBlock2D"] * n,
                    up_block_types=["UpDecoderBlock2D"] * n, use_quant_conv=True, use_post_quant_conv=True,
                    mid_block_add_attention=True, shift_factor=None, latents_mean=None, latents_std=None)
    odd = {k: get(k) for k, v in expected.items()
           if k in config and (list(get(k)) if isinstance(get(k), (list, tuple)) else get(k)) != v}
    if odd:
        raise ArchitectureError(
            tr(f"This diffusers VAE config differs from SD v1's AutoencoderKL in: {odd}. The course's VAE has "
               f"{ {k: expected[k] for k in odd} }. Use the vae/ folder of an SD v1.x model.")
        )
    return VAEConfig(
        channels=tuple(get("block_out_channels", (64,))), layers_per_block=get("layers_per_block", 1),
        in_channels=get("in_channels", 3), out_channels=get("out_channels", 3),
        latent_channels=get("latent_channels", 4), n_groups=get("norm_num_groups", 32),
        scaling_factor=get("scaling_factor", LATENT_SCALE),
    )  # the defaults are diffusers' own, for keys a config.json leaves out


def _config_from_shapes(shapes: Mapping, where: str) -> VAEConfig:
    """SD v1's config when the widths in the file are SD v1's; otherwise ask for `config=`
    (the number of GroupNorm groups is not stored in the weights)."""
    def dim(key, axis):
        return tuple(shapes[key].shape)[axis] if key in shapes else None

    levels = sorted({int(k.split(".")[2]) for k in shapes if k.startswith("encoder.down.")})
    found = dict(channels=tuple(dim(f"encoder.down.{i}.block.0.conv1.weight", 0) for i in levels),
                 layers_per_block=len({k.split(".")[4] for k in shapes if k.startswith("encoder.down.0.block.")}),
                 latent_channels=dim("post_quant_conv.weight", 0))
    sd_v1, tiny = VAEConfig(), VAEConfig.tiny()
    if all(found[k] == getattr(sd_v1, k) for k in found) or not levels or None in found["channels"]:
        return sd_v1  # SD v1 (or too broken to tell: the key report says what is missing)
    hint = tr(" They match VAEConfig.tiny(): pass config=VAEConfig.tiny().") if all(
        found[k] == getattr(tiny, k) for k in found) else ""
    raise ArchitectureError(
        tr(f"The VAE in {where} has {found}, not SD v1's channels={sd_v1.channels}, layers_per_block=2, "
           "latent_channels=4. The number of GroupNorm groups is not stored in the weights, so say which model "
           "it is: load_vae(path, config=VAEConfig(..., n_groups=...)), or give its diffusers folder with "
           f"config.json.{hint}")
    )


def _find_vae_weights(path: Path, dtype: torch.dtype) -> Tuple[Path, Optional[dict]]:
    """A file, a diffusers VAE folder, or a pipeline folder (its vae/) -> (weights file, config.json or None)."""
    if not path.exists():
        raise CheckpointError(
            tr(f"{path} does not exist. Download the weights first, e.g. huggingface_hub.snapshot_download("
               "'stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['vae/*']) or hf_hub_download(..., "
               "'v1-5-pruned-emaonly.safetensors').")
        )
    if not path.is_dir():
        config_file = path.parent / "config.json"
        return path, (json.loads(config_file.read_text()) if config_file.is_file() else None)
    folder = path / "vae" if (path / "vae").is_dir() else path
    names = sorted(_DIFFUSERS_FILES, key=lambda n: (not n.endswith(".safetensors"),  # safetensors first, always
                                                    (".fp16." in n) != (dtype == torch.float16)))
    found = [folder / n for n in names if (folder / n).is_file()]
    if not found:
        listing = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"
        raise NotACheckpointError(
            tr(f"No VAE weights in the folder {folder} (it holds: {listing}). Expected a diffusers vae/ folder "
               f"with one of {', '.join(_DIFFUSERS_FILES)}, or a pipeline folder that has one.")
        )
    config_file = folder / "config.json"
    return found[0], (json.loads(config_file.read_text()) if config_file.is_file() else None)


def _refuse_other_models(shapes: Mapping, where: str) -> None:
    """A single file that also holds a UNet says which model it is: refuse SD 2.x and SDXL, as load_unet does.
    (A VAE alone cannot be told apart: SD 2.x has SD v1's VAE architecture and scale, SDXL only another scale.)"""
    if not any(k.startswith(_UNET_PREFIX) for k in shapes):
        return
    try:
        check_sd_v1(shapes, where=where)
    except ArchitectureError as error:
        raise ArchitectureError(
            f"{error}\n" + tr("The course loads every part of a pipeline from one SD v1.x checkpoint, so the VAE of this "
                              "file is refused too")
            + (tr(" (SDXL's VAE also needs scaling_factor 0.13025, not SD v1's 0.18215).") if "SDXL" in str(error) else ".")
        ) from None


def load_vae(path_or_dir, dtype: Optional[torch.dtype] = None, device=None,
             config: Optional[VAEConfig] = None) -> AutoencoderKL:
    """Load SD v1.x VAE weights into the course's `AutoencoderKL`, safely and strictly.

    path_or_dir: a single-file SD v1.x checkpoint (`v1-5-pruned-emaonly.safetensors`: its
        `first_stage_model.*`), a diffusers VAE folder (`vae/` with config.json, or the pipeline folder
        holding it) or its weights file, or a CompVis VAE file (bare `encoder.*`/`decoder.*` keys).
        `.safetensors` first; pickles only through `torch.load(weights_only=True)`, and a pickle that
        needs more is refused (UnsafeCheckpointError).
    dtype: default float16 on a CUDA device, float32 elsewhere. device: default CPU. One copy of the
        weights in memory: the model is built on `meta` and takes the loaded tensors as they are.
    config: the `VAEConfig`; default: from the diffusers `config.json` (any AutoencoderKL config with
        SD v1's block types), else SD v1's (checked against the shapes in the file).
    Raises CheckpointError (a ValueError) naming the problem: a missing, truncated or unsafe file, a
    single file of SD 2.x or SDXL, or a table of missing, unexpected and mis-shaped keys.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    dtype = dtype if dtype is not None else (torch.float16 if device.type == "cuda" else torch.float32)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            tr(f"load_vae: dtype must be a floating torch.dtype (torch.float16, torch.float32, ...), got {dtype!r}.")
        )
    if config is not None and not isinstance(config, VAEConfig):
        raise ValueError(tr(f"load_vae: config must be a sdcourse VAEConfig, got {type(config).__name__}."))
    path, config_json = _find_vae_weights(Path(path_or_dir), dtype)
    with read_checkpoint(path) as checkpoint:
        layout, vae_keys = vae_part(checkpoint.shapes)  # VAE key -> file key
        _refuse_other_models(checkpoint.shapes, path.name)
        as_meta = checkpoint.meta()
        meta = {k: as_meta[f] for k, f in vae_keys.items()}
        if config is None and config_json is not None and layout == "diffusers":
            config = config_from_diffusers_vae(config_json)
        if config is None:
            renamed = convert_diffusers_vae(meta)[0] if layout == "diffusers" else meta
            config = _config_from_shapes(renamed, path.name)
        meta, unmapped = _rename(meta, layout, config)
        with torch.device("meta"):
            model = AutoencoderKL(config)
        report = compare_state_dicts(model, meta)
        if unmapped or any(report.values()):
            report["unexpected"] = [f"{vae_keys[k]}  (file key, no place in the VAE)" for k in unmapped] + [
                f"{k}  (file key {vae_keys.get(k, k)})" if layout == "compvis" else k for k in report["unexpected"]]
            raise ArchitectureError(
                tr(f"The weights in {path.name} ({layout} layout) do not fit the course's VAE ({config}):")
                + f"\n{format_report(report)}\n"
                + tr("A renamed key shows up as one missing and one unexpected; mis-shaped "
                     "keys mean another configuration (pass config=...) or another model.")
            )
        # Now read the data, one tensor at a time, straight into the target dtype and device.
        tensors = {k: checkpoint.get(f).to(device=device, dtype=dtype) for k, f in vae_keys.items()}
    state, _ = _rename(tensors, layout, config)
    del tensors
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def _rename(state: Mapping[str, torch.Tensor], layout: str, config: VAEConfig):
    """(course state dict, file keys with no place in it). CompVis names are the course's; a projection
    stored as a Linear weight (C, C) by a converter becomes the 1x1 conv weight (C, C, 1, 1)."""
    if layout == "diffusers":
        return convert_diffusers_vae(state, config)
    fix = {k: v[:, :, None, None] for k, v in state.items()
           if k.endswith(".weight") and _is_projection(k[: -len(".weight")]) and v.ndim == 2}
    return {**state, **fix}, []
