"""`load_text_encoder`: CLIP text encoder weights into the course's `CLIPTextEncoder`, safely and strictly.

The course's module names are transformers' `CLIPTextModel` names, so each source maps by cutting
a prefix (no renaming table):

    SD v1.x single file        cond_stage_model.transformer.text_model.embeddings.token_embedding.weight
    text_encoder/ (transformers 4)                   text_model.embeddings.token_embedding.weight
    text_encoder/ (transformers 5), a course model                  embeddings.token_embedding.weight

Files written by older transformers also hold `embeddings.position_ids`, the buffer 0, 1, ..., 76:
it is no weight (the course always uses positions 0..L-1) and is left out without a word.
Refused with the reason: SD 2.x single files (OpenCLIP ViT-H, `cond_stage_model.model.*`: another
model with another layout), SDXL single files (two text encoders, `conditioner.embedders.*`), and
anything whose names or shapes do not fit, with one table of missing, unexpected and mis-shaped keys.
Reading goes through `sdcourse.weights.read_checkpoint` (safetensors first; pickles only after their
instructions were checked, then with `torch.load(weights_only=True)`).

    load_text_encoder(path, dtype=None, device=None, config=None)   a folder or a file -> CLIPTextEncoder
    text_encoder_from_transformers(model)     a transformers CLIPTextModel in memory -> CLIPTextEncoder
    config_from_transformers(cfg) / transformers_config(config)     the two configs, both ways
    export_text_encoder(state_dict, layout)   the course's keys -> a single file's or text_model.* keys
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import torch

from .text_encoder import ACTIVATIONS, CLIPTextEncoder, TextEncoderConfig
from .weights import (
    ArchitectureError,
    CheckpointError,
    NotACheckpointError,
    compare_state_dicts,
    format_report,
    load_state_dict_strict,
    read_checkpoint,
)
from .i18n import tr

# Where the text encoder's keys start, most specific first.
SINGLE_FILE_PREFIX = "cond_stage_model.transformer.text_model."
PREFIXES = (SINGLE_FILE_PREFIX, "text_model.", "")
POSITION_IDS = "embeddings.position_ids"

# What transformers' `save_pretrained` writes in a `text_encoder/` folder, safetensors first.
_FOLDER_FILES = ("model.safetensors", "model.fp16.safetensors", "pytorch_model.bin", "pytorch_model.fp16.bin")

# transformers' CLIPTextConfig defaults (the text model of openai/clip-vit-base-patch32), used for a
# key a config.json leaves out, as transformers itself would.
CLIP_TEXT_CONFIG_DEFAULTS = dict(
    vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
    max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=49407,
)


def config_from_transformers(config) -> TextEncoderConfig:
    """A transformers `CLIPTextConfig` (or its config.json as a dict) -> the course's TextEncoderConfig."""
    c = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    model_type = c.get("model_type", "clip_text_model")
    if model_type != "clip_text_model":
        raise ArchitectureError(
            tr(f"config.json describes a {model_type!r} model, not a CLIP text model ('clip_text_model'). "
               "Give the pipeline's text_encoder/ folder (SD v1: CLIP ViT-L/14's text model).")
        )
    c = {**CLIP_TEXT_CONFIG_DEFAULTS, **{k: v for k, v in c.items() if v is not None}}
    if c["hidden_act"] not in ACTIVATIONS:
        raise ArchitectureError(
            tr(f"config.json asks for the activation {c['hidden_act']!r}; the course's CLIP text encoder builds "
               f"{ACTIVATIONS} (SD v1's CLIP ViT-L/14 uses 'quick_gelu').")
        )
    eos = c["eos_token_id"]
    return TextEncoderConfig(
        vocab_size=c["vocab_size"], n_positions=c["max_position_embeddings"], n_embd=c["hidden_size"],
        n_layer=c["num_hidden_layers"], n_head=c["num_attention_heads"], d_mlp=c["intermediate_size"],
        layer_norm_eps=c["layer_norm_eps"], activation=c["hidden_act"],
        eos_token_id=eos[0] if isinstance(eos, (list, tuple)) else eos,
    )


def transformers_config(config: TextEncoderConfig = TextEncoderConfig()) -> dict:
    """Keyword arguments for transformers' `CLIPTextConfig` that build the same model as `config`."""
    return dict(
        vocab_size=config.vocab_size, max_position_embeddings=config.n_positions, hidden_size=config.n_embd,
        num_hidden_layers=config.n_layer, num_attention_heads=config.n_head, intermediate_size=config.d_mlp,
        layer_norm_eps=config.layer_norm_eps, hidden_act=config.activation, eos_token_id=config.eos_token_id,
    )


def check_sd_v1_text_encoder(keys, where: str = "this checkpoint") -> None:
    """Refuse single files of SD 2.x and SDXL, whose text encoders are other models in other layouts."""
    keys = list(keys)
    if any(k.startswith("conditioner.embedders.") for k in keys):
        raise ArchitectureError(
            tr(f"{where} is an SDXL checkpoint (its text encoders live under conditioner.embedders.*): SDXL uses "
               "two text encoders (CLIP ViT-L/14 and OpenCLIP ViT-bigG) and reads their penultimate layers, not "
               "SD v1's single CLIP text encoder. Use an SD v1.x checkpoint, e.g. v1-5-pruned-emaonly.safetensors.")
        )
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        raise ArchitectureError(
            tr(f"{where} is an SD 2.x checkpoint: its text encoder is OpenCLIP ViT-H/14 (cond_stage_model.model.*: "
               "1024 wide, 24 layers, GELU, fused q/k/v in_proj, names like transformer.resblocks.0.attn), not SD v1's "
               "CLIP ViT-L/14 (cond_stage_model.transformer.*, 768 wide). Use an SD v1.x checkpoint, e.g. "
               "v1-5-pruned-emaonly.safetensors.")
        )


def text_encoder_part(keys, where: str = "this checkpoint") -> Tuple[str, Dict[str, str]]:
    """(the prefix found, {course key: file key}) for the text encoder's keys; position_ids left out.

    Keys outside the prefix (a single file's UNet and VAE) are not the text encoder's and are skipped.
    """
    keys = list(keys)
    check_sd_v1_text_encoder(keys, where)
    for prefix in PREFIXES:
        if prefix + "embeddings.token_embedding.weight" in keys:
            part = {k[len(prefix):]: k for k in keys if k.startswith(prefix)}
            part.pop(POSITION_IDS, None)  # the buffer 0..76: no weight
            return prefix, part
    shown = ", ".join(keys[:5]) or "(no tensors at all)"
    raise ArchitectureError(
        tr(f"No CLIP text encoder weights in {where}: no key ends in embeddings.token_embedding.weight "
           f"(the keys look like {shown} ...). Expected an SD v1.x single file ({SINGLE_FILE_PREFIX}*) or the "
           "pipeline's text_encoder/ folder (text_model.* or bare names).")
    )


def find_text_encoder_file(path: Path) -> Tuple[Path, Optional[dict]]:
    """A file, a `text_encoder/` folder or a pipeline folder -> (weights file, config.json or None)."""
    if not path.exists():
        raise CheckpointError(
            tr(f"{path} does not exist. Download the weights first, e.g. huggingface_hub.snapshot_download("
               "'stable-diffusion-v1-5/stable-diffusion-v1-5', allow_patterns=['text_encoder/*', 'tokenizer/*']).")
        )
    if path.is_dir():
        folder = path / "text_encoder" if (path / "text_encoder").is_dir() else path
        found = [folder / name for name in _FOLDER_FILES if (folder / name).is_file()]
        if not found:
            sharded = any(folder.glob("*.index.json"))
            listing = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"
            raise NotACheckpointError(
                tr(f"No text encoder weights in the folder {folder} (it holds: {listing}). Expected one of "
                   f"{', '.join(_FOLDER_FILES)}") + (tr(" (sharded checkpoints are not supported)") if sharded else "") + "."
            )
        path = found[0]
    config_file = path.parent / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else None
    return path, config


def load_text_encoder(path, dtype: Optional[torch.dtype] = None, device=None,
                      config: Optional[TextEncoderConfig] = None) -> CLIPTextEncoder:
    """Load CLIP text encoder weights into the course's `CLIPTextEncoder`, safely and strictly.

    path: a diffusers pipeline folder (its `text_encoder/` is used), a `text_encoder/` folder
        (`model.safetensors` + `config.json`, as transformers' save_pretrained writes it), one such model
        file, or an SD v1.x single-file checkpoint (`v1-5-pruned-emaonly.safetensors`, keys
        `cond_stage_model.transformer.text_model.*`). `.safetensors` is preferred; `.ckpt/.bin/.pt/.pth` are
        read only with `torch.load(weights_only=True)`; a pickle that needs more is refused.
    dtype: default float16 on a CUDA device, float32 elsewhere.
    device: where the weights go (default CPU); the model is built on `meta` and takes the tensors as
        they are read: one copy of the weights in memory.
    config: the TextEncoderConfig; default: from the folder's config.json (any CLIPTextConfig transformers
        writes), else SD v1's (checked against the shapes in the file).
    Raises CheckpointError (a ValueError) naming the problem; its subclasses say which kind:
    NotACheckpointError, TruncatedCheckpointError, UnsafeCheckpointError, ArchitectureError (SD 2.x, SDXL,
    or a table of missing, unexpected and mis-shaped keys).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    dtype = dtype if dtype is not None else (torch.float16 if device.type == "cuda" else torch.float32)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            tr(f"load_text_encoder: dtype must be a floating torch.dtype (torch.float16, torch.float32, ...), got {dtype!r}.")
        )
    if config is not None and not isinstance(config, TextEncoderConfig):
        raise ValueError(
            tr(f"load_text_encoder: config must be a sdcourse TextEncoderConfig, got {type(config).__name__}.")
        )
    path, config_json = find_text_encoder_file(Path(path))
    with read_checkpoint(path) as checkpoint:
        prefix, part = text_encoder_part(checkpoint.shapes, where=path.name)
        if config is None and config_json is not None and prefix != SINGLE_FILE_PREFIX:
            config = config_from_transformers(config_json)
        config = config if config is not None else TextEncoderConfig()
        with torch.device("meta"):
            model = CLIPTextEncoder(config)
        report = compare_state_dicts(model, {k: checkpoint.shapes[f] for k, f in part.items()})
        if any(report.values()):
            report["unexpected"] = [f"{part[k]}  (file key)" for k in report["unexpected"]]
            hint = (tr("text_projection belongs to CLIPTextModelWithProjection (e.g. SDXL's text_encoder_2), "
                       "not SD v1's CLIPTextModel. ") if "text_projection.weight" in part else "")
            raise ArchitectureError(
                tr(f"The weights in {path.name} do not fit the course's CLIP text encoder ({config}):")
                + f"\n{format_report(report)}\n" + hint
                + tr("A renamed key shows up as one missing and one unexpected; "
                     "mis-shaped keys mean another configuration (pass config=...) or another model.")
            )
        # Now read the data, one tensor at a time, straight into the target dtype and device.
        state = {k: checkpoint.get(f).to(device=device, dtype=dtype) for k, f in part.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def text_encoder_from_transformers(model) -> CLIPTextEncoder:
    """The course's `CLIPTextEncoder` holding the weights of a transformers `CLIPTextModel` in memory
    (e.g. `pipe.text_encoder`), same dtype and device. The tensors are shared, not copied."""
    state = {}
    for key, value in model.state_dict().items():
        key = key[len("text_model."):] if key.startswith("text_model.") else key
        if key != POSITION_IDS:  # the buffer 0..76: no weight
            state[key] = value.detach()
    with torch.device("meta"):
        encoder = CLIPTextEncoder(config_from_transformers(model.config))
    return load_state_dict_strict(encoder, state, assign=True).eval()


def export_text_encoder(state_dict: Mapping[str, torch.Tensor], layout: str = "single_file") -> Dict[str, torch.Tensor]:
    """A course `CLIPTextEncoder` state dict -> the keys of a file: "single_file" (SD v1.x,
    `cond_stage_model.transformer.text_model.*`) or "transformers" (`text_model.*`, what transformers 4
    wrote and every SD v1.x text_encoder/ folder on the Hub holds)."""
    prefixes = {"single_file": SINGLE_FILE_PREFIX, "transformers": "text_model."}
    if layout not in prefixes:
        raise ValueError(tr(f"export_text_encoder: layout must be one of {sorted(prefixes)}, got {layout!r}."))
    return {prefixes[layout] + k: v for k, v in state_dict.items()}
