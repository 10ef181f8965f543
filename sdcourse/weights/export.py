"""Writing the course's `Diffusion` back out in the layouts it was read from.

    export_unet(state, layout)      `Diffusion` state dict -> "compvis" or "diffusers" names
    save_unet(model, path, layout)  the same, written as one .safetensors file
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping

import torch

from .rename import source_keys
from ..i18n import tr


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
        raise ValueError(tr(f"save_unet: write a .safetensors file (safe to share), got {path.name!r}."))
    tensors = export_unet({k: v.detach().cpu() for k, v in model.state_dict().items()}, layout)
    save_file(tensors, str(path), metadata={"format": "pt", "written_by": "sdcourse", "layout": layout})
    return path
