"""Reading checkpoints safely and fitting them to the course's models.

Public API for reading any weights file (used by the UNet loader, and reusable for a VAE or a
text encoder):

    read_checkpoint(path) -> Checkpoint
        Opens a .safetensors / .ckpt / .bin / .pt / .pth file without reading tensor data.
        `shapes, get = read_checkpoint(path)`: shapes is {key: torch.Size} (tuples), get(key) reads one
        tensor (CPU, the file's dtype). Also `with read_checkpoint(path) as ckpt:` (ckpt.shapes, ckpt.get,
        ckpt.meta(): meta tensors, ckpt.dropped: non-tensor pickle entries that were left out).
        Safetensors first; a pickle's instructions are checked for anything beyond tensors before
        `torch.load(weights_only=True)` reads it; nothing from a file is ever executed.
    CheckpointError (a ValueError) and the cause, as a subclass:
        NotACheckpointError       not a weights file at all (HTML page, Git LFS pointer, unknown type)
        TruncatedCheckpointError  cut off or damaged bytes (an interrupted download)
        UnsafeCheckpointError     a pickle that could run code: refused, nothing executed
        ArchitectureError         readable weights of another model or configuration
        A MemoryError passes through as itself.
    report_mismatch(model_or_shapes, weights_or_shapes) -> str
        Missing, unexpected and mis-shaped keys as one readable table ("" when all fit). Built on
        compare_state_dicts (the report as lists) and format_report (the table).
    load_state_dict_strict(model, state_dict, assign=False)
        model.load_state_dict that raises ArchitectureError with that table first.
    unsafe_globals(path) -> list of str
        The Python objects a pickle would call beyond weights_only's allowlist (reads, runs nothing).

The SD v1 UNet:
    load_unet(path_or_dir, dtype=None, device=None, config=None, ema=None) -> Diffusion
    save_unet(model, path, layout="compvis"), export_unet(state_dict, layout)
    convert_diffusers_unet, convert_compvis_unet, rename_keys, source_keys
    detect_layout, check_sd_v1, config_from_diffusers, diffusers_config
    tables: RESNET_NAMES, RESNET_NAMES_COMPVIS, ATTENTION_NAMES, BLOCKS_DIFFUSERS, BLOCKS_COMPVIS,
            LAYOUTS, COMPVIS_PREFIX; EMA naming: ema_key, EMA_PREFIX

Modules, one idea each: errors (the exception classes), tables (key tables), rename (renaming),
export (writing), report (mismatch tables), pickles (safe pickle reading), files (read_checkpoint),
detect (layout, SD 2.x / SDXL detection), config (UNetConfig <-> diffusers config), ema (EMA or raw
weights in CompVis checkpoints), load (load_unet).
"""
from .config import config_from_diffusers, config_from_shapes, diffusers_config
from .detect import check_sd_v1, detect_layout, unet_part
from .ema import EMA_PREFIX, choose_unet_keys, ema_key
from .errors import (
    ArchitectureError,
    CheckpointError,
    NotACheckpointError,
    TruncatedCheckpointError,
    UnsafeCheckpointError,
)
from .export import export_unet, save_unet
from .files import PICKLE_SUFFIXES, Checkpoint, read_checkpoint
from .load import find_weights, load_unet
from .pickles import unsafe_globals
from .rename import convert_compvis_unet, convert_diffusers_unet, rename_keys, source_keys
from .report import compare_state_dicts, format_report, load_state_dict_strict, report_mismatch, shape_of
from .tables import (
    ATTENTION_NAMES,
    BLOCKS_COMPVIS,
    BLOCKS_DIFFUSERS,
    COMPVIS_PREFIX,
    LAYOUTS,
    RESNET_NAMES,
    RESNET_NAMES_COMPVIS,
)

__all__ = [
    "read_checkpoint", "Checkpoint", "PICKLE_SUFFIXES", "unsafe_globals",
    "CheckpointError", "NotACheckpointError", "TruncatedCheckpointError", "UnsafeCheckpointError", "ArchitectureError",
    "report_mismatch", "compare_state_dicts", "format_report", "load_state_dict_strict", "shape_of",
    "load_unet", "find_weights", "save_unet", "export_unet",
    "convert_diffusers_unet", "convert_compvis_unet", "rename_keys", "source_keys",
    "detect_layout", "unet_part", "check_sd_v1", "config_from_diffusers", "config_from_shapes", "diffusers_config",
    "choose_unet_keys", "ema_key", "EMA_PREFIX",
    "RESNET_NAMES", "RESNET_NAMES_COMPVIS", "ATTENTION_NAMES", "BLOCKS_DIFFUSERS", "BLOCKS_COMPVIS", "LAYOUTS",
    "COMPVIS_PREFIX",
]
