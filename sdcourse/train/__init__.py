"""Train the course's own `Diffusion` classes, in the capstone's configuration, on the toy shapes.

The model is not a separate toy: it is `sdcourse.Diffusion(UNetConfig.capstone())`, the same
residual blocks, attention blocks and skip connections as SD v1, with a small learned
`TextEncoder` instead of CLIP and a lossless stand-in for the VAE (see `model`).

One idea per module, each readable top to bottom:

    config.py        TrainConfig: every setting of a run (saved in every checkpoint)
    text_encoder.py  TextEncoder: token ids -> context vectors (word + position, phrase mixing)
    model.py         TinySD: UNet + text encoder + "VAE" + schedule; generate, predict_noise
    loss.py          training_batch, diffusion_loss, loss_weight: what one step computes
    checkpoints.py   save/load checkpoints, the shipped one (load_shipped)
    trainer.py       Trainer (AdamW, warm-up, EMA, resumable state) and train(out, config)
    cli.py           python -m sdcourse.train

    python -m sdcourse.train --out runs/tiny --cpu-minutes 12 --seed 0   # see sdcourse/assets/README.md
"""
from .checkpoints import (checkpoint_metadata, load_checkpoint, load_shipped, read_metadata, save_checkpoint,
                          shipped_checkpoint_path)
from .cli import main
from .config import LEGACY, TrainConfig
from .loss import diffusion_loss, loss_weight, step_generator, training_batch, training_step
from .model import TinySD
from .text_encoder import TextEncoder
from .trainer import Trainer, train

__all__ = [
    "TrainConfig", "LEGACY", "TextEncoder", "TinySD",
    "step_generator", "training_batch", "diffusion_loss", "loss_weight", "training_step",
    "checkpoint_metadata", "save_checkpoint", "read_metadata", "load_checkpoint", "shipped_checkpoint_path",
    "load_shipped", "Trainer", "train", "main",
]
