"""Checkpoints of the capstone model: safetensors files holding the weights to sample with, the
`TrainConfig` and the training record as JSON metadata; and the checkpoint the course ships."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional

import torch

from ..toy import VOCAB
from .config import TrainConfig
from .model import TinySD


def checkpoint_metadata(config: TrainConfig, extra: Optional[Dict] = None) -> Dict[str, str]:
    """The metadata strings of a checkpoint: the config, the vocabulary and (extra) the training record."""
    meta = {"sdcourse_config": json.dumps(asdict(config)), "vocab": json.dumps(VOCAB)}
    if extra:
        meta["training"] = json.dumps(extra)
    return meta


def save_checkpoint(path, model: TinySD, extra: Optional[Dict] = None, dtype: torch.dtype = torch.float32) -> None:
    """The weights to sample with (model + text encoder) and the config as metadata JSON."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=checkpoint_metadata(model.config, extra))


def read_metadata(path) -> Dict:
    """{"config": the TrainConfig as a dict, "training": the training record (when saved)}."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "sdcourse_config" not in meta:
        raise ValueError(f"{path}: not an sdcourse tiny checkpoint (no 'sdcourse_config' in its metadata).")
    out = {"config": json.loads(meta["sdcourse_config"])}
    if "training" in meta:
        out["training"] = json.loads(meta["training"])
    return out


def load_checkpoint(path, device: torch.device | str = "cpu") -> TinySD:
    """A TinySD in eval mode, float32, from `save_checkpoint`'s file."""
    from safetensors.torch import load_file

    if not Path(path).exists():
        raise ValueError(f"load_checkpoint: {path} does not exist. Train one with `python -m sdcourse.train --out DIR`.")
    meta = read_metadata(path)
    model = TinySD(TrainConfig.from_dict(meta["config"], saved=True))
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    model.training_info = meta.get("training", {})
    return model.to(device).eval()


def shipped_checkpoint_path() -> Path:
    """sdcourse/assets/tiny_sd.safetensors: the capstone model trained for notebook 07."""
    return Path(__file__).resolve().parent.parent / "assets" / "tiny_sd.safetensors"


def load_shipped(device: torch.device | str = "cpu") -> TinySD:
    """The checkpoint that ships with the course (see sdcourse/assets/README.md)."""
    return load_checkpoint(shipped_checkpoint_path(), device)
