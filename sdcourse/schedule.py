"""Noise schedules: how much signal is left at each of the T = 1000 training timesteps.

Forward noising (the "q" process) in one jump from the clean image x_0:

    x_t = sqrt(alpha_bar_t) * x_0 + sqrt(1 - alpha_bar_t) * noise,   noise ~ N(0, I)
    alpha_bar_t = prod_{s <= t} (1 - beta_s)

Two schedules:
- `NoiseSchedule.sd_v1()`: Stable Diffusion v1's "scaled linear" betas,
  betas = linspace(sqrt(0.00085), sqrt(0.012), 1000) ** 2 (diffusers' beta_schedule="scaled_linear").
  It was tuned for 64x64 VAE latents.
- `NoiseSchedule.cosine()`: Nichol & Dhariwal (2021), alpha_bar_t = cos^2(((t/T + s)/(1 + s)) * pi/2).
  The tiny course model works on 24x24 RGB pixels. Small images lose their content at lower
  noise than large ones (the noise averages out less over few pixels), and SD's schedule still
  leaves sqrt(alpha_bar_999) = 0.068 of the signal at the last step, a gap between the last
  training step and the pure noise that sampling starts from. The cosine schedule goes to
  (almost) zero signal at t = T-1 and spends more of its steps at the medium noise levels
  where the layout (which colour, which shape, where) is decided.

Timestep indices are 0-based, 0 .. T-1, as in diffusers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from .i18n import tr


@dataclass
class NoiseSchedule:
    """betas (T,) float64 -> alphas (T,), alphas_cumprod (T,). `name` is recorded in checkpoints."""

    betas: torch.Tensor
    name: str = "custom"

    def __post_init__(self):
        b = self.betas
        if not isinstance(b, torch.Tensor) or b.ndim != 1 or len(b) < 2:
            raise ValueError(tr("NoiseSchedule: betas must be a 1-D tensor with one beta per timestep (e.g. 1000)."))
        if not bool(((b > 0) & (b < 1)).all()):
            raise ValueError(tr("NoiseSchedule: every beta must be in (0, 1); check the schedule's start and end values."))
        self.betas = b.to(torch.float64)
        self.alphas = 1.0 - self.betas  # (T,)
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)  # (T,)

    @property
    def num_train_timesteps(self) -> int:
        return len(self.betas)

    @classmethod
    def sd_v1(cls, num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> "NoiseSchedule":
        """SD v1's scaled linear schedule: linear in sqrt(beta), then squared."""
        betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=torch.float64) ** 2
        return cls(betas, name="sd_v1")

    @classmethod
    def cosine(cls, num_train_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        """Nichol & Dhariwal's cosine schedule (diffusers' "squaredcos_cap_v2")."""
        def alpha_bar(u: float) -> float:
            return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

        T = num_train_timesteps
        betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)]
        return cls(torch.tensor(betas, dtype=torch.float64), name="cosine")

    @classmethod
    def from_name(cls, name: str, num_train_timesteps: int = 1000) -> "NoiseSchedule":
        if name == "sd_v1":
            return cls.sd_v1(num_train_timesteps)
        if name == "cosine":
            return cls.cosine(num_train_timesteps)
        raise ValueError(tr(f"NoiseSchedule.from_name: unknown schedule {name!r}; use 'sd_v1' or 'cosine'."))

    def _check_t(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t)
        if t.dtype.is_floating_point:
            raise ValueError(tr("NoiseSchedule: timesteps are integer indices 0 .. T-1; got a float tensor. Use t.long()."))
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_train_timesteps):
            raise ValueError(
                tr(f"NoiseSchedule: timesteps must be in 0 .. {self.num_train_timesteps - 1}, got min {int(t.min())} max {int(t.max())}.")
            )
        return t.long()

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0) in one jump. x0, noise: (B, C, H, W); t: (B,) ints -> x_t (B, C, H, W)."""
        if x0.shape != noise.shape:
            raise ValueError(tr(f"add_noise: x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must have the same shape."))
        t = self._check_t(t).to(self.alphas_cumprod.device)
        if t.ndim == 0:
            t = t[None].expand(x0.shape[0])  # () -> (B,)
        if t.shape != (x0.shape[0],):
            raise ValueError(tr(f"add_noise: t must be one timestep per image, shape ({x0.shape[0]},); got {tuple(t.shape)}."))
        ab = self.alphas_cumprod[t].to(device=x0.device, dtype=x0.dtype)  # (B,)
        # (B,) -> (B, 1, 1, 1): broadcast over channels and pixels
        ab = ab.view(-1, *([1] * (x0.ndim - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def signal_to_noise(self) -> torch.Tensor:
        """SNR_t = alpha_bar_t / (1 - alpha_bar_t), (T,)."""
        return self.alphas_cumprod / (1 - self.alphas_cumprod)

    def inference_timesteps(self, num_inference_steps: int, spacing: str = "leading", steps_offset: int = 1) -> torch.Tensor:
        """The timesteps a sampler visits, from noisy to clean: (num_inference_steps,) int64.

        "leading" with steps_offset=1 is SD v1's setting in diffusers: step_ratio = T // n,
        timesteps = arange(n) * step_ratio + 1, reversed; for n = 50: 981, 961, ..., 21, 1.
        "trailing" (T - 1 down in steps of T / n) starts at the very noisiest timestep; the tiny
        model uses it with the cosine schedule so that sampling starts where training saw pure noise.
        """
        T = self.num_train_timesteps
        if not 1 <= num_inference_steps <= T:
            raise ValueError(tr(f"inference_timesteps: num_inference_steps must be in 1 .. {T}, got {num_inference_steps}."))
        if spacing == "leading":
            step_ratio = T // num_inference_steps
            ts = torch.arange(num_inference_steps, dtype=torch.float64).mul(step_ratio).round().long() + steps_offset
            if int(ts.max()) >= T:
                raise ValueError(tr(f"inference_timesteps: steps_offset={steps_offset} pushes a timestep past T-1; use 0 or 1."))
            return ts.flip(0)
        if spacing == "trailing":
            ts = torch.arange(T, 0, -T / num_inference_steps, dtype=torch.float64).round().long() - 1
            return ts
        raise ValueError(tr(f"inference_timesteps: spacing must be 'leading' or 'trailing', got {spacing!r}."))
