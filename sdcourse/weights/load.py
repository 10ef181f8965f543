"""`load_unet`: SD v1.x UNet weights from any layout into the course's `Diffusion`, safely and strictly.

The steps, each in its own module: find the weights file (`find_weights`, here), open it, names
and shapes first (`files.read_checkpoint`), tell the layout and refuse SD 2.x / SDXL from names and
shapes (`detect`), pick EMA or raw weights in a CompVis training checkpoint (`ema`), rename to the
notes' names (`rename`), check every key and shape against the model built on the `meta` device
(`report`), and only then read the tensors, one at a time, straight into the target dtype and device.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Tuple

import torch

from ..unet import Diffusion, UNetConfig
from .config import config_from_diffusers, config_from_shapes
from .detect import check_sd_v1, detect_layout, unet_part
from .ema import EMA_PREFIX, choose_unet_keys, ema_key
from .errors import ArchitectureError, CheckpointError, NotACheckpointError
from .files import read_checkpoint
from .rename import rename_keys, source_keys
from .report import compare_state_dicts, format_report
from .tables import COMPVIS_PREFIX, LAYOUTS
from ..i18n import tr

_DIFFUSERS_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                    "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin")


def find_weights(path: Path, dtype: torch.dtype) -> Tuple[Path, Optional[dict]]:
    """A file or a diffusers folder (a pipeline folder or its unet/) -> (weights file, config.json or None)."""
    if not path.exists():
        raise CheckpointError(
            tr(f"{path} does not exist. Download the weights first, e.g. huggingface_hub.snapshot_download("
               "'stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['unet/*']) or hf_hub_download(..., "
               "'v1-5-pruned-emaonly.safetensors').")
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
            raise NotACheckpointError(
                tr(f"No UNet weights in the folder {folder} (it holds: {listing}). Expected one of "
                   f"{', '.join(_DIFFUSERS_FILES)}") + (tr(" (sharded checkpoints are not supported)") if shards else "") + "."
            )
        path = found[0]
    config_file = path.parent / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else None
    return path, config


def load_unet(path_or_dir, dtype: Optional[torch.dtype] = None, device=None,
              config: Optional[UNetConfig] = None, ema: Optional[bool] = None) -> Diffusion:
    """Load SD v1.x UNet weights into the course's `Diffusion`, safely and strictly.

    path_or_dir: an original single-file checkpoint (`v1-5-pruned-emaonly.safetensors`, keys
        `model.diffusion_model.*`), a diffusers UNet file or folder (`unet/diffusion_pytorch_model.safetensors`
        + `config.json`), a whole diffusers pipeline folder (its `unet/` is used), or a saved course
        `Diffusion`. `.safetensors` is preferred; a `.ckpt/.bin/.pt/.pth` pickle is refused when its
        instructions ask for more than tensors (UnsafeCheckpointError), else read with
        `torch.load(weights_only=True)`; nothing in a file is ever executed (see `read_checkpoint`).
    dtype: default float16 on a CUDA device, float32 elsewhere.
    device: where the weights go (default CPU). The model is built on `meta` and takes the loaded tensors
        as they are (`assign=True`): one copy of the weights in memory, in the target dtype.
    config: the `UNetConfig`; default: read from the diffusers `config.json`, else SD v1 (checked
        against the shapes in the file).
    ema: for a CompVis training checkpoint holding the UNet twice (`model.diffusion_model.*` and its
        EMA copy `model_ema.*`): None (default) loads the EMA weights, the copy meant for sampling;
        True insists on them; False loads the raw training weights. A printed line says which.
    Raises CheckpointError (a ValueError) naming the problem; its subclasses say which kind:
    NotACheckpointError, TruncatedCheckpointError, UnsafeCheckpointError, ArchitectureError (an SD 2.x
    or SDXL UNet, or a table of missing, unexpected and mis-shaped keys).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    dtype = dtype if dtype is not None else (torch.float16 if device.type == "cuda" else torch.float32)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            tr(f"load_unet: dtype must be a floating torch.dtype (torch.float16, torch.float32, ...), got {dtype!r}.")
        )
    if config is not None and not isinstance(config, UNetConfig):
        raise ValueError(tr(f"load_unet: config must be a sdcourse.UNetConfig, got {type(config).__name__}."))
    if ema not in (None, True, False):
        raise ValueError(tr(f"load_unet: ema must be None (EMA weights when present), True or False, got {ema!r}."))
    path, config_json = find_weights(Path(path_or_dir), dtype)
    with read_checkpoint(path) as checkpoint:
        shapes = checkpoint.shapes
        if checkpoint.dropped:
            print(tr(f"load_unet: {path.name}: left out {len(checkpoint.dropped)} non-tensor entries of the pickle: ")
                  + ", ".join(f"{k} ({t})" for k, t in list(checkpoint.dropped.items())[:8])
                  + (" ..." if len(checkpoint.dropped) > 8 else ""))
        layout = detect_layout(shapes)
        check_sd_v1(shapes, where=path.name)
        if layout == "compvis":
            unet_keys, note = choose_unet_keys(shapes, ema, path.name)  # UNet key -> file key
            if note:
                print(f"load_unet: {note}")
        else:
            if ema:
                raise ArchitectureError(tr(f"ema=True, but {path.name} ({layout} layout) has no EMA copy of the UNet."))
            unet_keys = unet_part(list(shapes), layout)
        as_meta = checkpoint.meta()  # empty tensors of the file's shapes: renaming fuses q/k/v, with no data
        meta, unmapped = _rename({k: as_meta[f] for k, f in unet_keys.items()}, layout)
        if config is None and config_json is not None and layout == "diffusers":
            config = config_from_diffusers(config_json)
        if config is None:
            config = config_from_shapes(meta, path.name)
        with torch.device("meta"):
            model = Diffusion(config)
        report = compare_state_dicts(model, meta)
        if unmapped or any(report.values()):
            report["missing"] = [_with_file_key(k, layout, unet_keys) for k in report["missing"]]
            unmapped = [f"{unet_keys.get(k, k)}  (file key, no place in the SD v1 UNet)" for k in unmapped]
            report["unexpected"] = unmapped + report["unexpected"]
            raise ArchitectureError(
                tr(f"The weights in {path.name} ({layout} layout) do not fit the course's UNet "
                   f"({config}):") + f"\n{format_report(report)}\n"
                + tr("A renamed key shows up as one missing and one unexpected; mis-shaped keys mean another "
                     "configuration (pass config=...) or another model.")
            )
        # Now read the data, one tensor at a time, straight into the target dtype and device.
        tensors = {k: checkpoint.get(f).to(device=device, dtype=dtype) for k, f in unet_keys.items()}
    state, _ = _rename(tensors, layout)
    del tensors
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def _rename(state_dict, layout: str):
    if layout == "course":
        return dict(state_dict), []
    return rename_keys(state_dict, LAYOUTS[layout])


def _with_file_key(key: str, layout: str, unet_keys) -> str:
    """A missing model key, with the file key it was looked for under."""
    if layout == "course":
        return key
    try:
        files = source_keys(key, layout)  # compvis keys come with COMPVIS_PREFIX
    except ValueError:
        return key
    first = files[0]
    if layout == "compvis":
        in_file = list(unet_keys.values())
        if any(f.startswith(EMA_PREFIX) for f in in_file):  # the EMA copy was read
            first = ema_key(first)
        elif not any(f.startswith(COMPVIS_PREFIX) for f in in_file):  # a file of bare UNet keys
            first = first[len(COMPVIS_PREFIX):]
    return f"{key}  <- file key {first}" + (" (+ k, v)" if len(files) > 1 else "")
