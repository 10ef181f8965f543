"""`TrainConfig`: everything that defines a training run of the capstone model, saved as JSON in
every checkpoint, and `LEGACY`: what checkpoints saved before a setting existed were trained with."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, Tuple

from ..unet import UNetConfig


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
    # what the UNet outputs: "epsilon" (as SD v1) or "v" (as SD 2.x's 768-px models), see TinySD.predict_noise
    prediction: str = "v"
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
        """The UNet this run trains: `UNetConfig.capstone()` with this run's widths and latent channels."""
        return UNetConfig.capstone(
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
