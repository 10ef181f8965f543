"""The course's UNet inside diffusers' `StableDiffusionPipeline`.

diffusers calls its UNet as `unet(latents, t, encoder_hidden_states=..., return_dict=False)[0]` and
reads a few fields of `unet.config` (in_channels, sample_size, time_cond_proj_dim). `CourseUNet`
wraps the course's `Diffusion` to answer exactly that, so the tokenizer, text encoder, scheduler
and VAE stay diffusers' while every noise prediction comes from the course's code:

    pipe = StableDiffusionPipeline.from_pretrained(...)
    course_pipe = with_course_unet(pipe, load_unet(folder))   # shares everything but the UNet
    image = course_pipe("a photo of a cat").images[0]

`tiny_pipeline()` builds a random, tiny pipeline of the same classes with no download (its own
tokenizer files, text encoder, VAE and UNet), so the same code runs offline and in tests.

Needs `diffusers` and `transformers` (pip install diffusers transformers).
"""
from __future__ import annotations

import inspect
import tempfile
from typing import Optional

import torch
from torch import nn

from .i18n import tr

try:
    from transformers.utils import logging as _hf_logging

    # Importing the pipeline touches transformers' CLIPImageProcessor (for the safety checker), which
    # logs a notice when torchvision is missing and it falls back to PIL. That is harmless here (the
    # course never uses the image processor), so keep the import quiet.
    _level = _hf_logging.get_verbosity()
    _hf_logging.set_verbosity_error()
    try:
        from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
        from diffusers.configuration_utils import FrozenDict
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput
    finally:
        _hf_logging.set_verbosity(_level)
except ImportError as error:  # pragma: no cover - only without the optional dependency
    raise ImportError(
        tr("sdcourse.pipeline needs diffusers and transformers: pip install diffusers transformers")
    ) from error

from .perturb import perturb_
from .tiny_tokenizer import TINY_WORDS, write_tiny_tokenizer  # noqa: F401 - re-exported
from .time_embedding import sinusoidal_embedding
from .unet import Diffusion, UNetConfig
from .weights import config_from_diffusers, convert_diffusers_unet, diffusers_config, load_state_dict_strict


def timestep_embedding(timestep, batch: int, dim: int = 320, device=None, dtype=torch.float32) -> torch.Tensor:
    """diffusers' timestep (a number, a 0-d tensor or a (B,) tensor) -> the (1|B, dim) sinusoidal embedding.

    Computed in float32 like diffusers, then cast to `dtype` (the model's).
    """
    t = torch.as_tensor(timestep, device=device)
    if t.ndim == 0:
        t = t[None]  # () -> (1,)
    if t.ndim != 1 or t.shape[0] not in (1, batch):
        raise ValueError(
            tr(f"timestep must be a number, a 0-d tensor, or one per sample ({batch},); got shape {tuple(t.shape)}.")
        )
    # (1|B,) -> (1|B, dim)
    return sinusoidal_embedding(t, dim).to(dtype)


class CourseUNet(nn.Module):
    """A course `Diffusion` with the calling convention of diffusers' `UNet2DConditionModel`.

    forward(sample (B, 4, h, w), timestep (number | () | (B,)), encoder_hidden_states (B, 77, 768))
        -> UNet2DConditionOutput(sample=(B, 4, h, w)), or the tuple (sample,) with return_dict=False.
    Features of other UNets (ControlNet residuals, LCM's timestep_cond, IP-Adapter, LoRA scales,
    class labels, attention masks) are refused with a ValueError instead of being ignored silently.
    """

    def __init__(self, diffusion: Diffusion, sample_size: int = 64):
        super().__init__()
        if not isinstance(diffusion, Diffusion):
            raise ValueError(tr(f"CourseUNet wraps a sdcourse.Diffusion, got {type(diffusion).__name__}."))
        self.diffusion = diffusion
        # What pipelines read from unet.config: the diffusers config of the same architecture.
        self.config = FrozenDict({
            **diffusers_config(diffusion.config), "sample_size": sample_size, "time_cond_proj_dim": None,
            "addition_embed_type": None, "class_embed_type": None, "encoder_hid_dim_type": None,
        })

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self,
        sample: torch.Tensor,
        timestep,
        encoder_hidden_states: torch.Tensor,
        class_labels=None,
        timestep_cond=None,
        attention_mask=None,
        cross_attention_kwargs=None,
        added_cond_kwargs=None,
        down_block_additional_residuals=None,
        mid_block_additional_residual=None,
        down_intrablock_additional_residuals=None,
        encoder_attention_mask=None,
        return_dict: bool = True,
    ):
        extras = dict(
            class_labels=class_labels, timestep_cond=timestep_cond, attention_mask=attention_mask,
            cross_attention_kwargs=cross_attention_kwargs, added_cond_kwargs=added_cond_kwargs,
            down_block_additional_residuals=down_block_additional_residuals,
            mid_block_additional_residual=mid_block_additional_residual,
            down_intrablock_additional_residuals=down_intrablock_additional_residuals,
            encoder_attention_mask=encoder_attention_mask,
        )
        used = sorted(name for name, value in extras.items()
                      if value is not None and not (isinstance(value, dict) and not value))  # {} asks for nothing
        if used:
            raise ValueError(
                tr(f"CourseUNet: {', '.join(used)} belong to other UNets (ControlNet, LCM, IP-Adapter, LoRA, ...); "
                   "the course's SD v1 UNet takes only sample, timestep and encoder_hidden_states. "
                   "Use diffusers' own UNet for those features.")
            )
        # (B|1,) timesteps -> (B|1, 320)
        time = timestep_embedding(timestep, sample.shape[0], self.diffusion.config.n_time_embd,
                                  device=sample.device, dtype=sample.dtype)
        # (B, 4, h, w), (B, 77, 768), (B|1, 320) -> (B, 4, h, w)
        noise = self.diffusion(sample, encoder_hidden_states, time)
        return UNet2DConditionOutput(sample=noise) if return_dict else (noise,)


def diffusion_from_unet(unet: UNet2DConditionModel) -> Diffusion:
    """The course's `Diffusion` holding a diffusers UNet's weights (same dtype and device).

    The tensors are shared with `unet` (only the fused self-attention q/k/v are new), so this costs
    almost no memory; do not train one of the two and expect the other to stay as it was.
    """
    config = config_from_diffusers(unet.config)
    with torch.device("meta"):
        diffusion = Diffusion(config)
    state = convert_diffusers_unet({k: v.detach() for k, v in unet.state_dict().items()})
    return load_state_dict_strict(diffusion, state, assign=True).eval()


def with_course_unet(pipe: StableDiffusionPipeline, diffusion: Optional[Diffusion] = None) -> StableDiffusionPipeline:
    """A new pipeline of the same class sharing `pipe`'s components, with the course's UNet.

    diffusion: the course model to use (e.g. from `load_unet`); default: `pipe.unet`'s weights in the
    course's classes (`diffusion_from_unet`). `pipe` itself is left unchanged.
    """
    if diffusion is None:
        diffusion = diffusion_from_unet(pipe.unet)
    components = dict(pipe.components)
    components["unet"] = CourseUNet(diffusion, sample_size=pipe.unet.config.sample_size)
    if "requires_safety_checker" in inspect.signature(type(pipe).__init__).parameters:
        components["requires_safety_checker"] = pipe.config.get("requires_safety_checker", False)
    course_pipe = type(pipe)(**components)
    course_pipe.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {}))
    return course_pipe


# ---------------------------------------------------------------------------------------------
# Offline stand-ins: a tiny random pipeline of the real classes, built without any download.
# ---------------------------------------------------------------------------------------------

def tiny_pipeline(seed: int = 0, config: UNetConfig = UNetConfig.tiny(),
                  perturb: float = 0.1) -> StableDiffusionPipeline:
    """A random `StableDiffusionPipeline` of the real classes, small enough for a CPU, no downloads.

    Tokenizer: `write_tiny_tokenizer` (77 tokens). Text encoder: CLIP, 2 layers, width config.d_context.
    VAE: 4 levels (downsamples 8x like SD's) of 8-16 channels. UNet: diffusers' `UNet2DConditionModel`
    in `config` with sample_size 16 (images of 128 x 128), its norm weights and biases moved by
    `perturb_(..., scale=perturb)` so that a mapping mistake in them shows (0: left at 1 and 0).
    Scheduler: DDIM with SD v1's betas. No safety checker. Uses its own random generators: the
    global seed is left as it was.
    """
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with tempfile.TemporaryDirectory() as folder:
        tokenizer = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(folder))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=config.d_context, intermediate_size=2 * config.d_context,
            num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ))
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=config.in_channels, block_out_channels=(8, 16, 16, 16),
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1, norm_num_groups=8, sample_size=128,
        )
        unet = UNet2DConditionModel(**{**diffusers_config(config), "sample_size": 16})
        perturb_(unet, seed=seed, scale=perturb, only_1d=True)  # norms off 1, biases off 0: mapping mistakes show
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=tokenizer, unet=unet.eval(),
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
