"""Train the course's own `Diffusion` classes, in a tiny configuration, on the toy shapes.

The model is not a separate toy: it is `sdcourse.Diffusion(UNetConfig.tiny(...))`, the same
residual blocks, attention blocks and skip connections as SD v1, with RGB pixels (3 channels)
instead of VAE latents and a small learned `TextEncoder` instead of CLIP. The text reaches the
image only through cross-attention, as in SD.

    python -m sdcourse.train --out runs/tiny --minutes 8 --seed 0
    python -m sdcourse.train --out runs/tiny --steps 40 --seed 0     # a quick look

What one step does (`training_step`): draw a batch of captioned images, a random timestep and
noise for each, noise the images with the schedule (q(x_t | x_0)), replace ~10% of the captions
by the empty caption (so that the same model also learns the unconditional prediction that
classifier-free guidance needs), predict the noise and take the mean squared error.

Everything is seeded per step (data, timesteps, noise, caption dropout), so a run stopped and
resumed from `state.safetensors` continues exactly as if it had never stopped.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .device import set_threads
from .schedule import NoiseSchedule
from .time_embedding import sinusoidal_embedding
from .toy import MAX_TOKENS, VOCAB, Tokenizer, make_batch
from .unet import Diffusion, UNetConfig


@dataclass
class TrainConfig:
    """Everything that defines a run. Saved as JSON in every checkpoint."""

    seed: int = 0
    image_size: int = 32
    patch: int = 4  # the "VAE": pixel_unshuffle by 4, (3, 32, 32) images <-> (48, 8, 8) latents
    channels: Tuple[int, int, int] = (32, 64, 64)
    n_head: int = 4
    n_groups: int = 8
    d_context: int = 64
    schedule: str = "cosine"
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    ema_decay: float = 0.999
    p_uncond: float = 0.1  # captions replaced by "" for classifier-free guidance
    p_two: float = 0.3  # images with two objects
    drop_color: float = 0.0  # captions that leave out the colour words ...
    drop_shape: float = 0.0  # ... the shape words
    drop_position: float = 0.0  # ... the position words

    def unet_config(self) -> UNetConfig:
        return UNetConfig.tiny(
            channels=tuple(self.channels), n_head=self.n_head, d_context=self.d_context,
            n_groups=self.n_groups, in_channels=self.latent_channels, out_channels=self.latent_channels,
        )

    @property
    def latent_channels(self) -> int:
        return 3 * self.patch * self.patch

    @property
    def latent_size(self) -> int:
        return self.image_size // self.patch

    def __post_init__(self):
        if self.patch < 1 or self.image_size % self.patch or (self.image_size // self.patch) % 8:
            raise ValueError(
                f"TrainConfig: image_size / patch must be a whole multiple of 8 (the UNet halves the latent 3 times); "
                f"got image_size={self.image_size}, patch={self.patch}. E.g. image_size=32 with patch=4 (latent 8x8)."
            )

    @classmethod
    def from_dict(cls, d: Dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"TrainConfig: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}.")
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


class TextEncoder(nn.Module):
    """Token ids (B, L) -> context (B, L, d_context): a learned embedding per word plus a learned
    embedding per position, then LayerNorm. No token mixing: each context vector knows only its
    own word and slot, so what a pixel reads from a token is that word alone."""

    def __init__(self, vocab_size: int = len(VOCAB), max_tokens: int = MAX_TOKENS, d_context: int = 64):
        super().__init__()
        self.vocab_size, self.max_tokens, self.d_context = vocab_size, max_tokens, d_context
        self.token_embedding = nn.Embedding(vocab_size, d_context)
        self.position_embedding = nn.Parameter(torch.zeros(max_tokens, d_context))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.02)
        self.layernorm = nn.LayerNorm(d_context)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.shape[1] != self.max_tokens or ids.dtype != torch.long:
            raise ValueError(
                f"TextEncoder: expected token ids (batch, {self.max_tokens}) int64, got {tuple(ids.shape)} {ids.dtype}. "
                "Make them with sdcourse.toy.Tokenizer()(captions)."
            )
        # (B, L) -> (B, L, D), plus (L, D) broadcast over the batch
        x = self.token_embedding(ids) + self.position_embedding
        return self.layernorm(x)  # (B, L, D)


class TinySD(nn.Module):
    """The trainable pair: `diffusion` (sdcourse.Diffusion) and `text_encoder`, plus the tokenizer,
    the noise schedule and the image size needed to use them."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        self.diffusion = Diffusion(config.unet_config())
        self.text_encoder = TextEncoder(len(VOCAB), MAX_TOKENS, config.d_context)
        self.tokenizer = Tokenizer()
        self.schedule = NoiseSchedule.from_name(config.schedule)

    def to_latent(self, images: torch.Tensor) -> torch.Tensor:
        """The tiny model's "VAE" encoder: lossless space-to-depth. (B, 3, S, S) -> (B, 3 p^2, S/p, S/p)."""
        return F.pixel_unshuffle(images, self.config.patch)

    def to_image(self, latents: torch.Tensor) -> torch.Tensor:
        """The "VAE" decoder, the exact inverse: (B, 3 p^2, S/p, S/p) -> (B, 3, S, S)."""
        return F.pixel_shuffle(latents, self.config.patch)

    def encode(self, captions) -> torch.Tensor:
        """list of N captions -> context (N, L, d_context)."""
        device = self.text_encoder.position_embedding.device
        return self.text_encoder(self.tokenizer(captions).to(device))

    def predict_noise(self, x: torch.Tensor, context: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (B, 3p^2, S/p, S/p) latent, context (B, L, D), t (B,) ints -> predicted noise, same shape as x."""
        time = sinusoidal_embedding(t, dim=self.diffusion.config.n_time_embd).to(x.device)  # (B, 32)
        return self.diffusion(x, context, time)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random stream of one training step: same (seed, step), same draws."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def training_step(model: TinySD, step: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """One batch's loss (a scalar): MSE between the true and the predicted noise."""
    cfg = model.config
    batch = make_batch(
        cfg.batch_size, seed=cfg.seed * 1_000_003 + step, size=cfg.image_size, p_two=cfg.p_two,
        drop_color=cfg.drop_color, drop_shape=cfg.drop_shape, drop_position=cfg.drop_position,
    )
    g = step_generator(cfg.seed, step)
    x0 = model.to_latent(batch.images)  # (B, 3, S, S) -> (B, 48, S/4, S/4)
    b = x0.shape[0]
    t = torch.randint(0, model.schedule.num_train_timesteps, (b,), generator=g)  # (B,)
    noise = torch.randn(x0.shape, generator=g)  # (B, 48, S/4, S/4)
    ids = model.tokenizer(batch.captions)  # (B, L)
    drop = torch.rand(b, generator=g) < cfg.p_uncond  # (B,)
    ids[drop] = model.tokenizer.encode("")  # the empty caption: <start> <end> <pad> ...
    x_t = model.schedule.add_noise(x0, noise, t).float()  # (B, 48, S/4, S/4)
    x_t, noise, ids, t = x_t.to(device), noise.to(device), ids.to(device), t.to(device)
    context = model.text_encoder(ids)  # (B, L, D)
    predicted = model.predict_noise(x_t, context, t)  # (B, 48, S/4, S/4)
    return F.mse_loss(predicted, noise)


# ----------------------------------------------------------------------------- checkpoints

def _metadata(config: TrainConfig, extra: Optional[Dict] = None) -> Dict[str, str]:
    meta = {"sdcourse_config": json.dumps(asdict(config)), "vocab": json.dumps(VOCAB)}
    if extra:
        meta["training"] = json.dumps(extra)
    return meta


def save_checkpoint(path, model: TinySD, extra: Optional[Dict] = None, dtype: torch.dtype = torch.float32) -> None:
    """The weights to sample with (model + text encoder) and the config as metadata JSON."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=_metadata(model.config, extra))


def read_metadata(path) -> Dict:
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
    model = TinySD(TrainConfig.from_dict(meta["config"]))
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    model.training_info = meta.get("training", {})
    return model.to(device).eval()


def shipped_checkpoint_path() -> Path:
    return Path(__file__).parent / "assets" / "tiny_sd.safetensors"


def load_shipped(device: torch.device | str = "cpu") -> TinySD:
    """The checkpoint that ships with the course (see sdcourse/assets/README.md)."""
    return load_checkpoint(shipped_checkpoint_path(), device)


# ----------------------------------------------------------------------------- the loop

class Trainer:
    """Model, EMA copy, AdamW and the step counter; `run` trains, `save_state`/`load_state` resume."""

    def __init__(self, config: TrainConfig, device: torch.device | str = "cpu"):
        torch.manual_seed(config.seed)
        self.config, self.device = config, torch.device(device)
        self.model = TinySD(config).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.seconds = 0.0  # training time so far, over all resumed runs
        self.losses = []  # (step, loss) every step

    def lr_at(self, step: int) -> float:
        return self.config.lr * min(1.0, (step + 1) / max(1, self.config.warmup_steps))

    @torch.no_grad()
    def update_ema(self) -> None:
        # warm-up: short memory at first, then ema_decay (0.999: about the last 1000 steps)
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p, 1 - decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    def train_step(self) -> float:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        loss = training_step(self.model, self.step, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.step += 1
        self.update_ema()
        value = float(loss.detach())
        self.losses.append((self.step, value))
        return value

    def run(self, steps: Optional[int] = None, minutes: Optional[float] = None, progress: bool = True,
            log=None, log_every: int = 25, snapshot=None, snapshot_every: int = 0) -> None:
        """Train until `steps` total steps or `minutes` total training time (whichever comes first).

        snapshot(trainer) is called every `snapshot_every` steps (0: never), e.g. to save the EMA weights."""
        if steps is None and minutes is None:
            raise ValueError("Trainer.run: give steps=... or minutes=... (or both).")
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=self.step, disable=not progress, desc="train", unit="step",
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
        start, start_seconds, start_step = time.perf_counter(), self.seconds, self.step
        while (steps is None or self.step < steps) and (minutes is None or self.seconds < 60 * minutes):
            loss = self.train_step()
            self.seconds = start_seconds + time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if log is not None and (self.step % log_every == 0):
                recent = [v for _, v in self.losses[-log_every:]]
                img_s = (self.step - start_step) * self.config.batch_size / max(1e-9, self.seconds - start_seconds)
                log.write(json.dumps({"step": self.step, "loss": round(sum(recent) / len(recent), 5),
                                      "seconds": round(self.seconds, 1), "img_per_s": round(img_s, 1)}) + "\n")
                log.flush()
            if snapshot is not None and snapshot_every and self.step % snapshot_every == 0:
                snapshot(self)
        bar.close()

    def info(self) -> Dict:
        return {"steps": self.step, "images": self.step * self.config.batch_size, "train_seconds": round(self.seconds, 1)}

    def save_state(self, path) -> None:
        """Everything needed to resume: weights, EMA weights, AdamW moments, step, time."""
        from safetensors.torch import save_file

        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        opt = self.optimizer.state_dict()
        for i, s in opt["state"].items():
            for k, v in s.items():
                tensors[f"optim.{i}.{k}"] = v if isinstance(v, torch.Tensor) else torch.tensor(v)
        tensors["losses"] = torch.tensor(self.losses, dtype=torch.float64).reshape(-1, 2)
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        meta = _metadata(self.config, {**self.info(), "seconds_exact": repr(self.seconds)})
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = str(path) + ".tmp"
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)

    def load_state(self, path) -> None:
        from safetensors.torch import load_file

        meta = read_metadata(path)
        saved = TrainConfig.from_dict(meta["config"])
        if saved != self.config:
            raise ValueError(
                f"Trainer.load_state: {path} was trained with a different config:\n  saved {saved}\n  given {self.config}\n"
                "Resume with the same settings, or train into a new --out folder."
            )
        tensors = load_file(str(path))
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        opt = self.optimizer.state_dict()
        state: Dict[int, Dict] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v
        opt["state"] = state
        self.optimizer.load_state_dict(opt)
        self.step = int(meta["training"]["steps"])
        self.seconds = float(meta["training"]["seconds_exact"])
        self.losses = [(int(s), float(v)) for s, v in tensors["losses"].tolist()]


def train(out, config: TrainConfig = TrainConfig(), steps: Optional[int] = None, minutes: Optional[float] = None,
          resume: bool = True, progress: bool = True, device: torch.device | str = "cpu",
          export: Optional[str] = None, export_dtype: torch.dtype = torch.float16,
          snapshot_every: int = 0, command: Optional[str] = None) -> Trainer:
    """Train into the folder `out` (state.safetensors for resuming, tiny_sd.safetensors with the
    EMA weights, log.jsonl). Resumes from out/state.safetensors when it exists and resume=True."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config, device)
    state_path = out / "state.safetensors"
    if resume and state_path.exists():
        trainer.load_state(state_path)

    def snapshot(tr: Trainer) -> None:  # the EMA weights along the way, to see quality against time
        save_checkpoint(out / f"ema_step{tr.step:06d}.safetensors", tr.ema, tr.info())

    with open(out / "log.jsonl", "a") as log:
        trainer.run(steps=steps, minutes=minutes, progress=progress, log=log, snapshot=snapshot, snapshot_every=snapshot_every)
    trainer.save_state(state_path)
    info = {**trainer.info(), "command": command}
    save_checkpoint(out / "tiny_sd.safetensors", trainer.ema, info)
    if export:
        save_checkpoint(export, trainer.ema, info, dtype=export_dtype)
    return trainer


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train the tiny text-conditioned SD UNet on the toy shapes.")
    p.add_argument("--out", required=True, help="run folder (state.safetensors, tiny_sd.safetensors, log.jsonl)")
    p.add_argument("--steps", type=int, default=None, help="stop at this many steps in total")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much training time in total")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: SDCOURSE_THREADS or torch's)")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds a state")
    p.add_argument("--export", default=None, help="also write the EMA weights as fp16 to this .safetensors path")
    p.add_argument("--snapshot-every", type=int, default=0, help="save the EMA weights every N steps (0: never)")
    for f in fields(TrainConfig):
        if f.name in ("seed",):
            continue
        if f.name == "channels":
            p.add_argument("--channels", type=int, nargs=3, default=None)
        else:
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None)
    args = p.parse_args(argv)
    if args.steps is None and args.minutes is None:
        p.error("give --steps N or --minutes M")
    set_threads(args.threads)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if f.name != "seed" and getattr(args, f.name) is not None}
    config = TrainConfig.from_dict({**asdict(TrainConfig()), **overrides, "seed": args.seed})
    print(f"config: {config}", flush=True)
    command = " ".join(["python -m sdcourse.train"] + list(sys.argv[1:] if argv is None else argv))
    trainer = train(args.out, config, steps=args.steps, minutes=args.minutes, resume=not args.no_resume,
                    export=args.export, snapshot_every=args.snapshot_every, command=command)
    info = trainer.info()
    print(json.dumps({**info, "img_per_s": round(info["images"] / max(1e-9, info["train_seconds"]), 1)}), flush=True)


if __name__ == "__main__":
    main()
