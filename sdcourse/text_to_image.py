"""Text to image with only the course's code: prompt -> tokens -> CLIP -> UNet loop -> VAE decoder.

    prompt --tokenize--> input_ids (B, 77) --CLIPTextEncoder--> context (B, 77, 768)
    noise (B, 4, H/8, W/8) --[Diffusion + guidance + DDIM/DDPM step] x steps--> clean latents
    clean latents --(/ 0.18215)--> VAE decoder --(/ 2 + 0.5, clamp)--> images (B, 3, H, W) in [0, 1]

Only the tokenizer comes from a library (transformers' CLIPTokenizer); the text encoder, the UNet,
the sampler and the VAE are the course's modules. Classifier-free guidance runs one batch of two
halves, [uncond, cond], where "uncond" is the empty prompt "" (as diffusers' StableDiffusionPipeline
does when no negative prompt is given). img2img (the second use) starts from an image instead of
noise: encode it with the VAE encoder, noise it to the timestep that `strength` picks, denoise from
there (as diffusers' StableDiffusionImg2ImgPipeline does).

Random numbers are drawn as diffusers draws them, in the same order, so one seed gives the same image:
the starting noise on the generator's device (img2img: first the VAE's latent sample, then the noise),
then one draw per DDPM step.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch

from .device import progress_bar
from .sampling import ddim_step, ddpm_mean_std, ddpm_step, guided_noise, predict_x0
from .schedule import NoiseSchedule
from .text_encoder import CLIPTextEncoder, TextEncoderConfig, load_tokenizer, tokenize
from .text_encoder_weights import load_text_encoder
from .time_embedding import sinusoidal_embedding
from .unet import Diffusion, UNetConfig
from .vae import AutoencoderKL, VAEConfig
from .vae_latents import decode_latents, encode_image
from .vae_weights import load_vae
from .weights import load_unet
from .i18n import tr

SAMPLERS = ("ddim", "ddpm")


def initial_latents(shape, generator: Optional[torch.Generator] = None, dtype=torch.float32, device=None) -> torch.Tensor:
    """Gaussian noise (B, 4, h, w), drawn as diffusers' `randn_tensor` draws it: on the generator's device
    (a CPU generator gives the same numbers on every machine), in `dtype`, then moved to `device`."""
    where = generator.device if generator is not None else torch.device("cpu")
    noise = torch.randn(tuple(shape), generator=generator, device=where, dtype=dtype)
    return noise.to(device) if device is not None else noise


def prompt_contexts(tokenizer, text_encoder: CLIPTextEncoder, prompts: Sequence[str], guided: bool) -> torch.Tensor:
    """Prompts -> the UNet's context: (B, 77, d) or, with guidance, (2B, 77, d) in the order [uncond, cond].

    uncond is the embedding of the empty prompt "" (padded to 77 tokens like every prompt).
    """
    p = next(text_encoder.parameters())
    cond = text_encoder(tokenize(tokenizer, list(prompts)).to(p.device))  # (B, 77) -> (B, 77, d)
    if not guided:
        return cond
    uncond = text_encoder(tokenize(tokenizer, [""] * len(prompts)).to(p.device))  # (B, 77) -> (B, 77, d)
    return torch.cat([uncond, cond])  # 2 x (B, 77, d) -> (2B, 77, d): uncond first


def guided_eps(unet: Diffusion, x: torch.Tensor, context: torch.Tensor, t: int, guidance_scale: float) -> torch.Tensor:
    """The noise prediction of one step. x: (B, 4, h, w); context: (2B, 77, d) [uncond, cond] when guided
    (guidance_scale != 1), else (B, 77, d) -> eps (B, 4, h, w)."""
    p = next(unet.parameters())
    # the integer timestep -> (1, 320), computed in float32 like diffusers, then in the model's dtype
    time = sinusoidal_embedding(torch.tensor([int(t)]), dim=unet.config.n_time_embd).to(device=p.device, dtype=p.dtype)
    if guidance_scale == 1.0:
        return unet(x, context, time)  # (B, 4, h, w)
    if context.shape[0] != 2 * x.shape[0]:
        raise ValueError(tr(f"guided_eps: guidance needs the context [uncond, cond] of batch {2 * x.shape[0]}, "
                            f"got {tuple(context.shape)}; build it with prompt_contexts(..., guided=True)."))
    x_in = torch.cat([x, x])  # (B, 4, h, w) -> (2B, 4, h, w): the same latents for both halves
    return guided_noise(unet(x_in, context, time), guidance_scale)  # (2B, ...) -> (B, 4, h, w) [uncond, cond]


def denoise(unet: Diffusion, latents: torch.Tensor, context: torch.Tensor, timesteps: Sequence[int],
            schedule: NoiseSchedule, guidance_scale: float = 7.5, sampler: str = "ddim",
            generator: Optional[torch.Generator] = None, callback: Optional[Callable] = None,
            progress=True) -> torch.Tensor:
    """The sampling loop: latents at timesteps[0] -> clean latents (B, 4, h, w).

    timesteps: from noisy to clean (981, 961, ..., 1). Each step predicts eps (guided), then steps to
    the next timestep (after the last one: prev_t = -1, the clean end). callback(i, t, x, x0_hat) sees
    the new latents and the clean latent the step aimed at (the picture forming step by step).
    """
    timesteps = [int(t) for t in timesteps]
    x = latents
    for i, t in enumerate(progress_bar(timesteps, progress, desc=sampler)):
        prev_t = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        eps = guided_eps(unet, x, context, t, guidance_scale)  # (B, 4, h, w)
        x0_hat = predict_x0(schedule, eps, t, x)
        if sampler == "ddim":
            x = ddim_step(schedule, eps, t, x, prev_t)
        elif prev_t >= 0:
            x = ddpm_step(schedule, eps, t, x, prev_t=prev_t, generator=generator)
        else:  # the last DDPM step: the posterior mean (diffusers adds noise of std 1e-10 here)
            x = ddpm_mean_std(schedule, eps, t, x, prev_t=-1)[0]
        if callback is not None:
            callback(i, t, x, x0_hat)
    return x


def img2img_timesteps(timesteps: torch.Tensor, strength: float) -> torch.Tensor:
    """The last int(n * strength) of the n timesteps (diffusers' get_timesteps): strength 1 runs them
    all from (almost) pure noise, strength 0.5 noises the image to the middle timestep and runs half."""
    n = len(timesteps)
    kept = min(int(n * strength), n)
    if kept < 1:
        raise ValueError(
            tr(f"img2img: strength={strength} keeps int({n} * {strength}) = 0 of the {n} steps: nothing to denoise. "
               f"Raise strength to at least {1 / n:.3g} or num_inference_steps.")
        )
    return timesteps[n - kept:]


@dataclass
class TextToImage:
    """The course's Stable Diffusion v1 pipeline. `pipe(prompt)` -> images (B, 3, H, W) in [0, 1]."""

    tokenizer: object
    text_encoder: CLIPTextEncoder
    unet: Diffusion
    vae: AutoencoderKL
    schedule: NoiseSchedule
    spacing: str = "leading"  # SD v1's timestep spacing in diffusers (981, 961, ..., 1 for 50 steps)
    steps_offset: int = 1

    @torch.no_grad()
    def __call__(self, prompt: Union[str, Sequence[str]], height: int = 512, width: int = 512,
                 num_inference_steps: int = 50, guidance_scale: float = 7.5, sampler: str = "ddim",
                 generator: Optional[torch.Generator] = None, latents: Optional[torch.Tensor] = None,
                 callback: Optional[Callable] = None, progress=True) -> torch.Tensor:
        """Text to image. prompt: one string or a list (one image each). latents: the starting noise
        (B, 4, H/8, W/8) instead of drawing it from `generator`. Returns (B, 3, H, W) floats in [0, 1]."""
        prompts = self._check(prompt, height, width, num_inference_steps, guidance_scale, sampler)
        p = next(self.unet.parameters())
        shape = (len(prompts), self.unet.config.in_channels, height // 8, width // 8)
        if latents is None:
            latents = initial_latents(shape, generator, p.dtype, p.device)  # (B, 4, H/8, W/8)
        elif tuple(latents.shape) != shape:
            raise ValueError(tr(f"TextToImage: latents {tuple(latents.shape)} must be {shape} for {len(prompts)} "
                                f"prompt(s) at {height}x{width} (latents are 8x smaller than the image)."))
        context = prompt_contexts(self.tokenizer, self.text_encoder, prompts, guidance_scale != 1.0).to(p.dtype)
        timesteps = self.schedule.inference_timesteps(num_inference_steps, self.spacing, self.steps_offset)
        x = denoise(self.unet, latents.to(device=p.device, dtype=p.dtype), context, timesteps, self.schedule,
                    guidance_scale, sampler, generator, callback, progress)
        return decode_latents(self.vae, x)  # (B, 4, h, w) -> (B, 3, 8h, 8w) in [0, 1]

    @torch.no_grad()
    def img2img(self, prompt: Union[str, Sequence[str]], image: torch.Tensor, strength: float = 0.8,
                num_inference_steps: int = 50, guidance_scale: float = 7.5, sampler: str = "ddim",
                generator: Optional[torch.Generator] = None, callback: Optional[Callable] = None,
                progress=True) -> torch.Tensor:
        """Image + text -> image. image: (B, 3, H, W) or (3, H, W) in [0, 1], one per prompt, H and W
        multiples of 8. strength in (0, 1]: how far toward noise the image goes before denoising."""
        if not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
            raise ValueError(tr(f"img2img: strength must be a number in [0, 1] (0 keeps the image, 1 ignores it), "
                                f"got {strength!r}."))
        if not isinstance(image, torch.Tensor) or image.ndim not in (3, 4):
            raise ValueError(tr("img2img: image must be a tensor (B, 3, H, W) or (3, H, W) with values in [0, 1]."))
        image = image[None] if image.ndim == 3 else image  # (3, H, W) -> (1, 3, H, W)
        prompts = self._check(prompt, image.shape[2], image.shape[3], num_inference_steps, guidance_scale, sampler)
        if image.shape[0] != len(prompts):
            raise ValueError(tr(f"img2img: {image.shape[0]} image(s) for {len(prompts)} prompt(s); give one image per prompt."))
        p = next(self.unet.parameters())
        timesteps = img2img_timesteps(
            self.schedule.inference_timesteps(num_inference_steps, self.spacing, self.steps_offset), strength)
        z = encode_image(self.vae, image, generator=generator).to(p.dtype)  # (B, 3, H, W) -> (B, 4, H/8, W/8)
        noise = initial_latents(z.shape, generator, p.dtype, p.device)  # drawn after the VAE's sample, as diffusers
        x = self.schedule.add_noise(z, noise, timesteps[:1].expand(z.shape[0]))  # noised to the first kept step
        context = prompt_contexts(self.tokenizer, self.text_encoder, prompts, guidance_scale != 1.0).to(p.dtype)
        x = denoise(self.unet, x, context, timesteps, self.schedule, guidance_scale, sampler, generator,
                    callback, progress)
        return decode_latents(self.vae, x)  # (B, 4, h, w) -> (B, 3, 8h, 8w) in [0, 1]

    def _check(self, prompt, height, width, steps, guidance_scale, sampler) -> list:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt) if isinstance(prompt, (list, tuple)) else None
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(tr(f"TextToImage: prompt must be a string or a non-empty list of strings, got {prompt!r}."))
        for side, size in (("height", height), ("width", width)):
            if not isinstance(size, int) or size < 8 or size % 8:
                raise ValueError(tr(f"TextToImage: {side} must be a positive multiple of 8 (the VAE downsamples 8x), "
                                    f"got {size!r}; e.g. {max(8, int(size) // 8 * 8) if isinstance(size, (int, float)) else 512}."))
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(tr(f"TextToImage: num_inference_steps must be a positive int, got {steps!r}."))
        if not isinstance(guidance_scale, (int, float)) or guidance_scale < 1:
            raise ValueError(
                tr(f"TextToImage: guidance_scale must be >= 1, got {guidance_scale!r}. 1 means no guidance (one "
                   "pass per step); SD v1 is usually run at 7.5. (diffusers silently turns guidance off below 1; "
                   "the course refuses instead.)"))
        if sampler not in SAMPLERS:
            raise ValueError(tr(f"TextToImage: sampler must be one of {SAMPLERS}, got {sampler!r}."))
        return prompts


def schedule_from_config(config: dict) -> tuple:
    """A diffusers scheduler_config.json -> (NoiseSchedule, spacing, steps_offset); refuses what the course
    does not implement (another beta schedule, v-prediction, clipping, set_alpha_to_one)."""
    get = config.get
    odd = {k: get(k) for k, want in (("beta_schedule", "scaled_linear"), ("prediction_type", "epsilon"),
                                       ("clip_sample", False), ("set_alpha_to_one", False),
                                       ("thresholding", False), ("rescale_betas_zero_snr", False))
           if k in config and get(k) != want}
    if odd or get("timestep_spacing", "leading") not in ("leading", "trailing"):
        raise ValueError(tr(f"scheduler config: the course's sampler implements SD v1's settings (scaled_linear betas, "
                            f"epsilon prediction, no clipping, leading or trailing spacing); this config has {odd or config}."))
    schedule = NoiseSchedule.sd_v1(get("num_train_timesteps", 1000), get("beta_start", 0.00085), get("beta_end", 0.012))
    return schedule, get("timestep_spacing", "leading"), get("steps_offset", 1)


def save_single_file(pipe: TextToImage, path) -> Path:
    """Write the pipeline's three models as one SD v1.x single file (.safetensors): model.diffusion_model.*,
    first_stage_model.* and cond_stage_model.transformer.text_model.* (no tokenizer: keep its folder)."""
    from safetensors.torch import save_file

    from .text_encoder_weights import export_text_encoder
    from .weights import export_unet

    def cpu(state):
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    tensors = {**export_unet(cpu(pipe.unet.state_dict()), "compvis"),
               **{f"first_stage_model.{k}": v for k, v in cpu(pipe.vae.state_dict()).items()},  # CompVis names
               **export_text_encoder(cpu(pipe.text_encoder.state_dict()), "single_file")}
    save_file(tensors, str(path))
    return Path(path)


def load_text_to_image(path, dtype: Optional[torch.dtype] = None, device=None, tokenizer=None, *,
                       unet_config: Optional[UNetConfig] = None, vae_config: Optional[VAEConfig] = None,
                       text_encoder_config: Optional[TextEncoderConfig] = None) -> TextToImage:
    """The course pipeline from a diffusers pipeline folder (unet/, vae/, text_encoder/, tokenizer/,
    scheduler/) or an SD v1.x single file (`v1-5-pruned-emaonly.safetensors`, all three models in one).

    tokenizer: a tokenizer folder (or a pipeline folder holding tokenizer/) or a loaded CLIPTokenizer;
        needed for a single file (it carries no tokenizer), optional for a pipeline folder.
    dtype: default float16 on CUDA, float32 elsewhere. device: default CPU.
    *_config: the widths of models whose files cannot say them (a tiny single file); SD v1's by default.
    Every file is read with the course's safe, strict loaders (load_unet, load_vae, load_text_encoder).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(tr(f"load_text_to_image: {path} does not exist. Give a diffusers pipeline folder or an "
                            "SD v1.x single-file checkpoint (.safetensors)."))
    if path.is_dir():
        missing = [p for p in ("unet", "vae", "text_encoder") if not (path / p).is_dir()]
        if missing or (tokenizer is None and not (path / "tokenizer").is_dir()):
            raise ValueError(tr(f"load_text_to_image: {path} is not a diffusers pipeline folder: no "
                                f"{', '.join(p + '/' for p in missing or ['tokenizer'])}. Give the folder "
                                "save_pretrained / snapshot_download wrote, or a single file + tokenizer=."))
        tokenizer = path if tokenizer is None else tokenizer
    elif tokenizer is None:
        raise ValueError(tr("load_text_to_image: a single-file checkpoint holds no tokenizer. Pass tokenizer= a folder "
                            "with vocab.json and merges.txt (e.g. the tokenizer/ of stable-diffusion-v1-5, "
                            "snapshot_download(..., allow_patterns=['tokenizer/*']))."))
    if isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(Path(tokenizer))
    scheduler_file = path / "scheduler" / "scheduler_config.json" if path.is_dir() else None
    if scheduler_file is not None and scheduler_file.is_file():
        schedule, spacing, offset = schedule_from_config(json.loads(scheduler_file.read_text()))
    else:
        schedule, spacing, offset = NoiseSchedule.sd_v1(), "leading", 1  # SD v1's scheduler settings
    unet = load_unet(path, dtype=dtype, device=device, config=unet_config)
    vae = load_vae(path, dtype=dtype, device=device, config=vae_config)
    text_encoder = load_text_encoder(path, dtype=dtype, device=device, config=text_encoder_config)
    return TextToImage(tokenizer, text_encoder, unet, vae, schedule, spacing, offset)
