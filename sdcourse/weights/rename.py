"""Renaming a checkpoint's keys to the notes' names (and back), with the tables of `tables.py`.

    rename_keys(state, blocks)        -> (renamed, unmapped keys); fuses q/k/v into one in_proj
    convert_diffusers_unet(state)     diffusers UNet state dict -> `Diffusion` state dict
    convert_compvis_unet(state)       original single-file state dict -> `Diffusion` state dict
    source_keys(notes_key, layout)    where one `Diffusion` key lives in a file of `layout`
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Tuple, Union

import torch

from .errors import unknown_keys_error
from .tables import BLOCKS_COMPVIS, BLOCKS_DIFFUSERS, COMPVIS_PREFIX, LAYOUTS
from ..i18n import tr


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

    Raises ArchitectureError (a CheckpointError, a ValueError) listing any key it does not know
    (e.g. an SD 2.x/SDXL-only layer).
    """
    out, unmapped = rename_keys(state_dict, BLOCKS_DIFFUSERS)
    if unmapped:
        raise unknown_keys_error(unmapped, tr("this diffusers checkpoint"))
    return out


def convert_compvis_unet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """An original single-file checkpoint's state dict -> a `Diffusion` state dict (notes names).

    Keys may carry the `model.diffusion_model.` prefix (then every key without it, e.g. the VAE and
    the text encoder, is ignored) or be bare UNet keys (`input_blocks.0.0.weight`, ...).
    Raises ArchitectureError (a CheckpointError, a ValueError) listing any UNet key it does not know.
    """
    unet_keys = {k[len(COMPVIS_PREFIX):]: v for k, v in state_dict.items() if k.startswith(COMPVIS_PREFIX)}
    out, unmapped = rename_keys(unet_keys or state_dict, BLOCKS_COMPVIS)
    if unmapped:
        raise unknown_keys_error(unmapped, tr("this CompVis checkpoint"))
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
        raise ValueError(tr(f"source_keys: layout must be one of {sorted(LAYOUTS)}, got {layout!r}."))
    module, _, param = notes_key.rpartition(".")
    src = _INVERSE[layout].get(module)
    if src is None:
        raise ValueError(tr(f"source_keys: {notes_key!r} is not a key of the SD v1 `Diffusion` model."))
    prefix = COMPVIS_PREFIX if layout == "compvis" else ""
    return [f"{prefix}{s}.{param}" for s in ([src] if isinstance(src, str) else src)]
