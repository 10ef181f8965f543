"""Train the course's own `Diffusion` classes, in a tiny configuration, on the toy shapes.

The model is not a separate toy: it is `sdcourse.Diffusion(UNetConfig.tiny(...))`, the same
residual blocks, attention blocks and skip connections as SD v1, and a small learned
`TextEncoder` instead of CLIP. The text reaches the image only through cross-attention, as in
SD. Instead of SD's VAE latents (4 x 64 x 64 for a 512 px image) the UNet sees 24 x 24 RGB
images folded losslessly into 27 x 8 x 8 "latents" (`pixel_unshuffle` by 3): an 8 x 8 grid,
so that a CPU can train it in minutes.

    python -m sdcourse.train --out runs/tiny --cpu-minutes 12 --seed 0   # see sdcourse/assets/README.md
    python -m sdcourse.train --out runs/tiny --steps 40 --seed 0         # a quick look

What one step does (`training_step`): draw a batch of captioned images, a random timestep and
noise for each, noise the images with the schedule (q(x_t | x_0)), replace ~10% of the captions
by the empty caption (so that the same model also learns the unconditional prediction that
classifier-free guidance needs), predict the noise and take the (weighted, see `loss_weight`)
mean squared error. `--minutes` limits the wall-clock time, `--cpu-minutes` this process's CPU
time (the fair measure on a shared machine).

Everything is seeded per step (data, timesteps, noise, caption dropout), so a run stopped and
resumed from `state.safetensors` continues exactly as if it had never stopped.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
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
    image_size: int = 24
    patch: int = 3  # the "VAE": pixel_unshuffle by 3, (3, 24, 24) images <-> (27, 8, 8) latents
    # The first width carries the 27 latent channels to the output through SiLUs: it needs about
    # twice as many (silu(v) - silu(-v) = v), else the model cannot even copy its input (t ~ T).
    channels: Tuple[int, int, int] = (64, 48, 32)
    n_head: int = 4
    n_groups: int = 8
    d_context: int = 64
    schedule: str = "cosine"
    text_mixing: str = "phrase"  # each word also carries its phrase (see TextEncoder); "none": words alone
    prediction: str = "v"  # what the UNet outputs: "epsilon" (SD v1) or "v" (SD 2.x), see TinySD.predict_noise
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0  # nearly clean steps weigh min(SNR, gamma) / SNR (Hang et al. 2023); 0 = off
    max_noise_weight: float = 20.0  # very noisy steps weigh min(1 / SNR, this) (>= 1); 0 = off
    p_uncond: float = 0.1  # captions replaced by "" for classifier-free guidance
    p_two: float = 0.3  # images with two objects
    drop_color: float = 0.3  # captions that leave out the colour words ...
    drop_shape: float = 0.15  # ... the shape words
    drop_position: float = 0.15  # ... the position words (see toy.make_batch)

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
        if self.prediction not in ("epsilon", "v"):
            raise ValueError(f"TrainConfig: prediction must be 'epsilon' or 'v', got {self.prediction!r}.")
        if self.patch < 1 or self.image_size % self.patch or (self.image_size // self.patch) % 8:
            raise ValueError(
                f"TrainConfig: image_size / patch must be a whole multiple of 8 (the UNet halves the latent 3 times); "
                f"got image_size={self.image_size}, patch={self.patch}. E.g. image_size=24 with patch=3 (latent 8x8)."
            )

    @classmethod
    def from_dict(cls, d: Dict, saved: bool = False) -> "TrainConfig":
        """A config from a dict; saved=True for a checkpoint's: settings it lacks were added to the
        course later, and such a checkpoint was trained without them (LEGACY), not with today's default."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"TrainConfig: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}.")
        d = ({k: v for k, v in LEGACY.items() if k not in d} if saved else {}) | dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


# What a checkpoint saved before a setting existed was trained with.
LEGACY = {"prediction": "epsilon", "text_mixing": "none", "max_noise_weight": 0.0, "min_snr_gamma": 0.0}


class TextEncoder(nn.Module):
    """Token ids (B, L) -> context (B, L, d_context): a learned embedding per word plus a learned
    embedding per position, then LayerNorm.

    mixing="none": no token mixing; each context vector knows only its own word and slot.
    mixing="phrase": each content word also gets the mean embedding of the content words of its
        phrase (the words between <start>, "and" and <end>), so "circle" in "red circle top left"
        carries "red" too, the way the later tokens of CLIP's text encoder carry the earlier ones.
        A pixel then finds its whole object behind any word of the phrase.
    """

    def __init__(self, vocab_size: int = len(VOCAB), max_tokens: int = MAX_TOKENS, d_context: int = 64,
                 mixing: str = "none", separator_id: Optional[int] = None, special_ids=()):
        super().__init__()
        if mixing not in ("none", "phrase"):
            raise ValueError(f"TextEncoder: mixing must be 'none' or 'phrase', got {mixing!r}.")
        if mixing == "phrase" and separator_id is None:
            raise ValueError("TextEncoder: mixing='phrase' needs separator_id (the id of 'and') and special_ids.")
        self.vocab_size, self.max_tokens, self.d_context, self.mixing = vocab_size, max_tokens, d_context, mixing
        self.separator_id, self.special_ids = separator_id, tuple(special_ids)
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
        words = self.token_embedding(ids)  # (B, L) -> (B, L, D)
        x = words + self.position_embedding  # (B, L, D) + (L, D)
        if self.mixing == "phrase":
            x = x + self.phrase_mean(ids, words)
        return self.layernorm(x)  # (B, L, D)

    def phrase_mean(self, ids: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """(B, L) ids, (B, L, D) word embeddings -> (B, L, D): for each content word, the mean
        embedding of the content words of its phrase; zero for <start>, <end>, <pad> and "and"."""
        content = ~torch.isin(ids, torch.tensor(self.special_ids + (self.separator_id,), device=ids.device))  # (B, L)
        phrase = torch.cumsum(ids == self.separator_id, dim=1)  # (B, L): 0 for the first phrase, 1 after "and", ...
        # (B, L, 1) == (B, 1, L) -> (B, L, L): token i and token j are content words of the same phrase
        same = (phrase[:, :, None] == phrase[:, None, :]) & content[:, :, None] & content[:, None, :]
        weights = same.float() / same.sum(dim=-1, keepdim=True).clamp(min=1)  # rows average over the phrase
        return weights @ words  # (B, L, L) @ (B, L, D) -> (B, L, D)


class TinySD(nn.Module):
    """The trainable pair: `diffusion` (sdcourse.Diffusion) and `text_encoder`, plus the tokenizer,
    the noise schedule and the image size needed to use them."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        self.diffusion = Diffusion(config.unet_config())
        tok = Tokenizer()
        self.text_encoder = TextEncoder(len(VOCAB), MAX_TOKENS, config.d_context, mixing=config.text_mixing,
                                        separator_id=tok.index["and"], special_ids=(tok.pad_id, tok.start_id, tok.end_id))
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

    @torch.no_grad()
    def generate(self, captions, steps: int = 25, guidance_scale: float = 5.0, seed: int = 0,
                 progress: bool = False, sampler: str = "ddpm", callback=None) -> torch.Tensor:
        """Images for captions: list of N strings -> (N, 3, S, S) in [-1, 1].

        DDPM (or DDIM) from pure noise with classifier-free guidance (batch [uncond, cond]). The
        cosine schedule uses "trailing" timesteps (999, 959, ...): sampling starts where training
        saw pure noise. DDPM's fresh noise at every step forgives small errors of a tiny model;
        deterministic DDIM keeps them (a few % lower accuracy, see sdcourse/assets/README.md). The predicted clean image is clipped to [-1, 1] at every step (pixels have
        that range; the space-to-depth latent keeps it). Same seed, same images.
        """
        from .sampling import sample

        cfg = self.config
        device = self.text_encoder.position_embedding.device
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn((len(captions), cfg.latent_channels, cfg.latent_size, cfg.latent_size), generator=g)
        spacing = "trailing" if cfg.schedule == "cosine" else "leading"
        latents = sample(
            self.diffusion, self.encode(captions), self.encode([""]), schedule=self.schedule,
            num_inference_steps=steps, guidance_scale=guidance_scale, sampler=sampler, spacing=spacing,
            latents=noise.to(device), generator=g, progress=progress, callback=callback, clip=1.0,
            prediction=cfg.prediction,
        )  # (N, 27, S/3, S/3)
        return self.to_image(latents).clamp(-1, 1)  # (N, 3, S, S)

    def predict_noise(self, x: torch.Tensor, context: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (B, 3p^2, S/p, S/p) latent, context (B, L, D), t (B,) ints -> predicted noise, same shape as x."""
        # (B,) -> (B, n_time_embd): the first width (64 here) sines and cosines of t
        time = sinusoidal_embedding(t, dim=self.diffusion.config.n_time_embd).to(x.device)
        out = self.diffusion(x, context, time)  # (B, 27, h, w)
        if self.config.prediction == "v":
            # eps = sqrt(abar) v + sqrt(1 - abar) x_t (sdcourse.sampling.eps_from_v), per image
            abar = self.schedule.alphas_cumprod[t.cpu()].to(x)[:, None, None, None]  # (B,) -> (B, 1, 1, 1)
            out = abar.sqrt() * out + (1 - abar).sqrt() * x
        return out


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random stream of one training step: same (seed, step), same draws."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def training_batch(model: TinySD, step: int) -> Dict[str, torch.Tensor]:
    """What step `step` trains on, all drawn from (seed, step): latents x0 (B, 27, S/3, S/3), token
    ids (B, L) with ~p_uncond of them replaced by the empty caption, timesteps t (B,), noise like x0."""
    cfg = model.config
    batch = make_batch(
        cfg.batch_size, seed=cfg.seed * 1_000_003 + step, size=cfg.image_size, p_two=cfg.p_two,
        drop_color=cfg.drop_color, drop_shape=cfg.drop_shape, drop_position=cfg.drop_position,
    )
    g = step_generator(cfg.seed, step)
    x0 = model.to_latent(batch.images)  # (B, 3, S, S) -> (B, 27, S/3, S/3)
    b = x0.shape[0]
    t = torch.randint(0, model.schedule.num_train_timesteps, (b,), generator=g)  # (B,)
    noise = torch.randn(x0.shape, generator=g)  # (B, 27, S/3, S/3)
    ids = model.tokenizer(batch.captions)  # (B, L)
    drop = torch.rand(b, generator=g) < cfg.p_uncond  # (B,)
    ids[drop] = model.tokenizer.encode("")  # the empty caption: <start> <end> <pad> ...
    return {"x0": x0, "ids": ids, "t": t, "noise": noise}


def diffusion_loss(model: TinySD, x0: torch.Tensor, ids: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The epsilon objective on one batch -> a scalar.

    x0: (B, 27, h, w) clean latents; ids: (B, L) tokens; t: (B,) timesteps; noise: like x0.
    """
    device = model.text_encoder.position_embedding.device
    x_t = model.schedule.add_noise(x0, noise, t).float()  # (B, 27, h, w): q(x_t | x_0)
    x_t, noise, ids, t = x_t.to(device), noise.to(device), ids.to(device), t.to(device)
    context = model.text_encoder(ids)  # (B, L) -> (B, L, D)
    predicted = model.predict_noise(x_t, context, t)  # (B, 27, h, w)
    per_image = (predicted - noise).pow(2).mean(dim=(1, 2, 3))  # (B,)
    return (per_image * loss_weight(model, t).to(per_image)).mean()


def loss_weight(model: TinySD, t: torch.Tensor) -> torch.Tensor:
    """Weight of each image's noise MSE, (B,) timesteps -> (B,).

    The caption decides the layout (which colour and shape, where) at high noise: there an error
    in eps is an error in the image divided by sqrt(SNR), so plain eps-MSE barely notices a wrong
    layout and the text is learned last. Two clamps fix that on this budget:
    - nearly clean steps (SNR > min_snr_gamma): weight min(SNR, gamma) / SNR < 1 (Min-SNR,
      Hang et al. 2023): they teach little about what goes where;
    - very noisy steps (SNR < 1): weight min(1 / SNR, max_noise_weight): the image error counts
      as much as at SNR = 1 (as an x0 objective would), up to a cap.
    """
    cfg = model.config
    snr = model.schedule.signal_to_noise()[t.cpu()].float()  # (B,)
    weight = torch.ones_like(snr)
    if cfg.min_snr_gamma > 0:
        weight = weight * snr.clamp(max=cfg.min_snr_gamma) / snr
    if cfg.max_noise_weight > 0:
        weight = weight * (1 / snr).clamp(min=1.0, max=cfg.max_noise_weight)
    return weight


def training_step(model: TinySD, step: int) -> torch.Tensor:
    """One batch's loss (a scalar): weighted MSE between the true and the predicted noise (on the
    model's device)."""
    return diffusion_loss(model, **training_batch(model, step))


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
    model = TinySD(TrainConfig.from_dict(meta["config"], saved=True))
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
        self.seconds = 0.0  # training (wall-clock) time so far, over all resumed runs
        self.cpu_seconds = 0.0  # CPU time of this process spent training, over all resumed runs
        self.losses = []  # (step, loss) every step
        self.commands = []  # the command line of each (resumed) run, first one first

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
        loss = training_step(self.model, self.step)
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
            log=None, log_every: int = 25, snapshot=None, snapshot_every: int = 0,
            cpu_minutes: Optional[float] = None) -> None:
        """Train until `steps` total steps, `minutes` of wall-clock training time or `cpu_minutes` of
        this process's CPU time (whichever comes first). On a machine shared with other jobs the CPU
        time is the fairer measure: it is what the training costs, however long it waited.

        snapshot(trainer) is called every `snapshot_every` steps (0: never), e.g. to save the EMA weights."""
        if steps is None and minutes is None and cpu_minutes is None:
            raise ValueError("Trainer.run: give steps=..., minutes=... or cpu_minutes=... (or several).")
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=self.step, disable=not progress, desc="train", unit="step",
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
        start, start_seconds, start_step = time.perf_counter(), self.seconds, self.step
        cpu_start, start_cpu_seconds = time.process_time(), self.cpu_seconds
        while ((steps is None or self.step < steps) and (minutes is None or self.seconds < 60 * minutes)
               and (cpu_minutes is None or self.cpu_seconds < 60 * cpu_minutes)):
            loss = self.train_step()
            self.seconds = start_seconds + time.perf_counter() - start
            self.cpu_seconds = start_cpu_seconds + time.process_time() - cpu_start
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if log is not None and (self.step % log_every == 0):
                recent = [v for _, v in self.losses[-log_every:]]
                img_s = (self.step - start_step) * self.config.batch_size / max(1e-9, self.seconds - start_seconds)
                log.write(json.dumps({"step": self.step, "loss": round(sum(recent) / len(recent), 5),
                                      "seconds": round(self.seconds, 1), "cpu_seconds": round(self.cpu_seconds, 1),
                                      "img_per_s": round(img_s, 1)}) + "\n")
                log.flush()
            if snapshot is not None and snapshot_every and self.step % snapshot_every == 0:
                snapshot(self)
        bar.close()

    def info(self) -> Dict:
        return {"steps": self.step, "images": self.step * self.config.batch_size, "train_seconds": round(self.seconds, 1),
                "train_cpu_seconds": round(self.cpu_seconds, 1), "threads": torch.get_num_threads(),
                "command": self.commands[0] if self.commands else None, "commands": list(self.commands)}

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
        meta = _metadata(self.config, {**self.info(), "seconds_exact": repr(self.seconds),
                                       "cpu_seconds_exact": repr(self.cpu_seconds)})
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = str(path) + ".tmp"
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)

    def load_state(self, path) -> None:
        from safetensors.torch import load_file

        meta = read_metadata(path)
        saved = TrainConfig.from_dict(meta["config"], saved=True)
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
        self.cpu_seconds = float(meta["training"]["cpu_seconds_exact"])
        self.commands = list(meta["training"].get("commands") or [])
        self.losses = [(int(s), float(v)) for s, v in tensors["losses"].tolist()]


def train(out, config: TrainConfig = TrainConfig(), steps: Optional[int] = None, minutes: Optional[float] = None,
          cpu_minutes: Optional[float] = None,
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
    if command:
        trainer.commands.append(command)

    def snapshot(tr: Trainer) -> None:  # the EMA weights along the way, to see quality against time
        save_checkpoint(out / f"ema_step{tr.step:06d}.safetensors", tr.ema, tr.info())

    with open(out / "log.jsonl", "a") as log:
        trainer.run(steps=steps, minutes=minutes, cpu_minutes=cpu_minutes, progress=progress, log=log,
                    snapshot=snapshot, snapshot_every=snapshot_every)
    trainer.save_state(state_path)
    info = trainer.info()
    save_checkpoint(out / "tiny_sd.safetensors", trainer.ema, info)
    if export:
        save_checkpoint(export, trainer.ema, info, dtype=export_dtype)
    return trainer


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train the tiny text-conditioned SD UNet on the toy shapes.")
    p.add_argument("--out", required=True, help="run folder (state.safetensors, tiny_sd.safetensors, log.jsonl)")
    p.add_argument("--steps", type=int, default=None, help="stop at this many steps in total")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much (wall-clock) training time in total")
    p.add_argument("--cpu-minutes", type=float, default=None,
                   help="stop after this much CPU time of this process in total (fair on a shared machine)")
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
    if args.steps is None and args.minutes is None and args.cpu_minutes is None:
        p.error("give --steps N, --minutes M or --cpu-minutes M")
    set_threads(args.threads)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if f.name != "seed" and getattr(args, f.name) is not None}
    config = TrainConfig.from_dict({**asdict(TrainConfig()), **overrides, "seed": args.seed})
    print(f"config: {config}", flush=True)
    command = " ".join(["python -m sdcourse.train"] + list(sys.argv[1:] if argv is None else argv))
    trainer = train(args.out, config, steps=args.steps, minutes=args.minutes, cpu_minutes=args.cpu_minutes,
                    resume=not args.no_resume,
                    export=args.export, snapshot_every=args.snapshot_every, command=command)
    info = trainer.info()
    print(json.dumps({**info, "img_per_s": round(info["images"] / max(1e-9, info["train_seconds"]), 1)}), flush=True)


if __name__ == "__main__":
    main()
