"""Which UNet is this? Its layout (where the keys live) and architecture (SD v1, SD 2.x, SDXL).

    detect_layout(keys)       "compvis", "diffusers" or "course" (a saved `Diffusion`)
    unet_part(keys, layout)   UNet key without the file's prefix -> key in the file
    check_sd_v1(shapes)       refuses SD 2.x and SDXL with the reasons found, from names and shapes only
"""
from __future__ import annotations

from typing import Dict, Mapping

from .errors import ArchitectureError
from .report import shape_of
from .tables import COMPVIS_PREFIX
from ..i18n import tr

EMA_PREFIX = "model_ema."  # a CompVis training checkpoint's EMA copy of the UNet (ema.py)


def detect_layout(keys) -> str:
    """"compvis" (original single file, with or without `model.diffusion_model.`), "diffusers", or
    "course" (a saved `Diffusion` state dict). Raises ArchitectureError (a CheckpointError) when it holds no UNet."""
    keys = list(keys)
    if any(k.startswith((COMPVIS_PREFIX, EMA_PREFIX)) for k in keys):  # EMA_PREFIX: see ema.py
        return "compvis"
    if any(k.startswith(("input_blocks.", "middle_block.", "output_blocks.")) for k in keys):
        return "compvis"
    if any(k.startswith(("down_blocks.", "mid_block.", "up_blocks.", "conv_in.")) for k in keys):
        return "diffusers"
    if any(k.startswith(("unet.encoders.", "unet.decoders.")) for k in keys):
        return "course"
    shown = ", ".join(keys[:5]) or "(no tensors at all)"
    raise ArchitectureError(
        tr(f"No UNet weights found: the keys look like {shown} ... Expected an original single-file SD "
           "checkpoint (model.diffusion_model.*), a diffusers UNet (down_blocks.*, in unet/), or a saved "
           "course Diffusion (unet.encoders.*). A VAE or text-encoder file alone does not hold the UNet.")
    )


def unet_part(keys, layout: str) -> Dict[str, str]:
    """UNet key without prefix -> key in the file."""
    if layout == "compvis" and any(k.startswith(COMPVIS_PREFIX) for k in keys):
        return {k[len(COMPVIS_PREFIX):]: k for k in keys if k.startswith(COMPVIS_PREFIX)}
    return {k: k for k in keys}


def check_sd_v1(state_dict: Mapping, where: str = "this checkpoint") -> None:
    """Refuse an SD 2.x or SDXL UNet with a message saying which one it is and why it cannot load.

    Reads only key names and shapes: tensors, `meta` tensors or plain shapes (`read_checkpoint(...).shapes`)
    do. Accepts any layout.
    """
    keys = list(state_dict)
    unet = unet_part(keys, detect_layout(keys))
    contexts = {shape_of(state_dict[f])[-1] for k, f in unet.items() if k.endswith("attn2.to_k.weight")}
    xl, sd2 = [], []
    if any(k.startswith(("add_embedding.", "label_emb.")) for k in unet):
        xl.append(tr("an extra embedding of image size and crop (add_embedding / label_emb)"))
    if any(".transformer_blocks.1." in k for k in unet):
        xl.append(tr("more than one transformer layer in an attention block"))
    if 2048 in contexts:
        xl.append(tr("a 2048-wide text context (two text encoders)"))
    if any(k.startswith("conditioner.embedders.") for k in keys):
        xl.append(tr("two text encoders (conditioner.embedders)"))
    if any(k.endswith("proj_in.weight") and len(shape_of(state_dict[f])) == 2 for k, f in unet.items()):
        sd2.append(tr("linear proj_in/proj_out (SD v1 uses 1x1 convolutions)"))
    if 1024 in contexts:
        sd2.append(tr("a 1024-wide text context (OpenCLIP ViT-H; SD v1 uses CLIP ViT-L/14's 768)"))
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        sd2.append(tr("an OpenCLIP text encoder (cond_stage_model.model)"))
    use_v1 = tr("The course rebuilds the SD v1 UNet; use an SD v1.x checkpoint, e.g. "
                "stable-diffusion-v1-5/stable-diffusion-v1-5 (v1-5-pruned-emaonly.safetensors or its unet/ folder).")
    if xl:
        raise ArchitectureError(
            tr(f"{where} holds an SDXL UNet, not SD v1.x. Found: ") + "; ".join(xl)
            + tr(". SDXL's UNet has three "
                 "levels instead of four, up to 10 transformer layers per block, a 2048-wide context and size "
                 "conditioning: a different architecture whose weights cannot fit the course's UNet. ") + use_v1
        )
    if sd2:
        raise ArchitectureError(
            tr(f"{where} holds an SD 2.x UNet, not SD v1.x. Found: ") + "; ".join(sd2)
            + tr(". SD 2.x keeps the block "
                 "plan but changes the context width (1024), the projections (linear) and the heads (64 channels "
                 "each: 5/10/20 heads instead of 8), so its weights do not fit the course's UNet. ") + use_v1
        )
