"""The training loop: `Trainer` (model, EMA copy, AdamW, warm-up, resumable state) and `train`,
which trains into a run folder and writes the checkpoints.

A run stopped and resumed from `state.safetensors` continues exactly as if it had never stopped:
the batches are seeded by (seed, step) (see `loss.training_batch`), and the state holds the
weights, the EMA weights, AdamW's moments, the step and the time spent.
"""
from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from ..device import progress_bar
from .checkpoints import checkpoint_metadata, read_metadata, save_checkpoint
from .config import TrainConfig
from .loss import training_step
from .model import TinySD


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
        """Linear warm-up over warmup_steps, then the constant learning rate."""
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

    def run(self, steps: Optional[int] = None, minutes: Optional[float] = None, progress=True,
            log=None, log_every: int = 25, snapshot=None, snapshot_every: int = 0,
            cpu_minutes: Optional[float] = None) -> None:
        """Train until `steps` total steps, `minutes` of wall-clock training time or `cpu_minutes` of
        this process's CPU time (whichever comes first). On a machine shared with other jobs the CPU
        time is the fairer measure: it is what the training costs, however long it waited.

        progress: True, False or "live" (see sdcourse.device.progress_bar: in a notebook, one
        finished line at the end). log: a text file that gets a JSON line every `log_every` steps.
        snapshot(trainer) is called every `snapshot_every` steps (0: never), e.g. to save the EMA weights."""
        if steps is None and minutes is None and cpu_minutes is None:
            raise ValueError("Trainer.run: give steps=..., minutes=... or cpu_minutes=... (or several).")
        bar = progress_bar(progress=progress, total=steps, initial=self.step, desc="train", unit="step")
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
        """The training record saved in checkpoints: steps, images, time, threads, command lines."""
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
        meta = checkpoint_metadata(self.config, {**self.info(), "seconds_exact": repr(self.seconds),
                                                 "cpu_seconds_exact": repr(self.cpu_seconds)})
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = str(path) + ".tmp"
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)

    def load_state(self, path) -> None:
        """Continue from `save_state`'s file; the config must be the one it was trained with."""
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
          resume: bool = True, progress=True, device: torch.device | str = "cpu",
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
