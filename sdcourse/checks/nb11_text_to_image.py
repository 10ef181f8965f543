"""Checkers of notebook 11: the glue of the text-to-image pipeline.

- `check_guided_context`: prompts -> the context batch [uncond, cond], uncond = the empty prompt "";
- `check_decode`: the UNet's latents -> pictures (/ 0.18215, the VAE decoder, [-1, 1] -> [0, 1]);
- `check_denoise`: the sampling loop with classifier-free guidance and DDIM steps.

Each is run on tiny random models (the course's, weights perturbed) and compared with
`sdcourse.text_to_image`; the mistakes are written out here, one switch each, so a wrong answer is named.
"""
from __future__ import annotations

import tempfile
from typing import Callable

import torch

from .core import CheckResult, _named, _run, _seeded, compare, exercise, perturb_
from .hints import register

# --- typical mistakes, by name ------------------------------------------------------------------
COND_FIRST = "halves in the order [cond, uncond]"
ZERO_UNCOND = "zeros as the unconditional context (SD v1 uses the embedding of the empty prompt)"
PROMPT_TWICE = "the prompt in both halves (guidance then does nothing)"
NO_UNSCALE = "latents not divided by 0.18215"
TIMES_SCALE = "latents multiplied by 0.18215 instead of divided"
NO_RANGE_MAP = "the decoder's [-1, 1] not mapped to [0, 1]"
NO_CLAMP = "no clamp to [0, 1]"
GUIDANCE_REVERSED = "guidance computed as cond + scale * (uncond - cond) (halves swapped)"
NO_GUIDANCE = "guidance ignored (the conditional prediction only)"
PREV_T_MINUS_ONE = "prev_t = t - 1 instead of the next timestep of the list"
LAST_TO_ONE = "last step to abar = 1 (SD v1 ends at abar_0, set_alpha_to_one=False)"

ADVICE = {
    COND_FIRST: "The course (and diffusers) put the empty prompt FIRST: torch.cat([uncond, cond]).",
    ZERO_UNCOND: "Encode the empty prompt: text_encoder(tokenize(tokenizer, [''] * len(prompts))).",
    PROMPT_TWICE: "The first half is the empty prompt '' (one per prompt), not the prompt again.",
    NO_UNSCALE: "The UNet works on z * 0.18215: divide by vae.scaling_factor before vae.decode.",
    TIMES_SCALE: "Undo the scale: latents / vae.scaling_factor (it was multiplied in on the way in).",
    NO_RANGE_MAP: "vae.decode gives about [-1, 1]: images / 2 + 0.5, then clamp.",
    NO_CLAMP: "The decoder overshoots a little: .clamp(0, 1) after mapping to [0, 1].",
    GUIDANCE_REVERSED: "eps_uncond, eps_cond = eps.chunk(2) (uncond first); eps_uncond + s * (eps_cond - eps_uncond).",
    NO_GUIDANCE: "Run the doubled batch and combine the halves: uncond + scale * (cond - uncond).",
    PREV_T_MINUS_ONE: "With 3 of 1000 steps the next timestep is timesteps[i + 1] (e.g. 667 -> 334), not t - 1.",
    LAST_TO_ONE: "After the last timestep pass prev_t = -1: ddim_step then uses abar_0, as SD v1 does.",
}


# --- 1. the guided context ------------------------------------------------------------------------

def _tiny_text_parts():
    from ..pipeline import write_tiny_tokenizer
    from ..text_encoder import CLIPTextEncoder, TextEncoderConfig, load_tokenizer

    with tempfile.TemporaryDirectory() as folder:
        tokenizer = load_tokenizer(write_tiny_tokenizer(folder))
    with _seeded(111):
        config = TextEncoderConfig.tiny(vocab_size=len(tokenizer))
        encoder = perturb_(CLIPTextEncoder(config), seed=111).eval()
    return tokenizer, encoder


def _guided_context_reference():
    from ..text_to_image import prompt_contexts
    return lambda text_encoder, tokenizer, prompts: prompt_contexts(tokenizer, text_encoder, prompts, guided=True)


@exercise("guided_context", todo="the (2B, 77, 768) context for guidance, in the course's [uncond, cond] order.",
          reference=_guided_context_reference)
def check_guided_context(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """fn(text_encoder, tokenizer, prompts) -> (2B, 77, d): [uncond, cond], uncond = embeddings of ""."""
    from ..text_encoder import tokenize

    tokenizer, encoder = _tiny_text_parts()
    prompts = ["a red cat", "a photo of a blue house on the grass"]  # i18n: no
    name = "guided_context(text_encoder, tokenizer, 2 prompts)"
    got = _run(lambda: fn(encoder, tokenizer, list(prompts)), name,
               hint="fn(text_encoder, tokenizer, prompts) with prompts a list of strings.")
    with torch.no_grad():
        cond = encoder(tokenize(tokenizer, prompts))  # (2, 77, d)
        uncond = encoder(tokenize(tokenizer, [""] * len(prompts)))  # (2, 77, d)
    mistakes = {COND_FIRST: torch.cat([cond, uncond]), ZERO_UNCOND: torch.cat([torch.zeros_like(cond), cond]),
                PROMPT_TWICE: torch.cat([cond, cond])}
    return compare(name, got, torch.cat([uncond, cond]), mistakes, _named(ADVICE),
                   general_hint="Two calls of the text encoder (prompts, then [''] * B), joined along the batch.",
                   atol=1e-5, raise_on_failure=raise_on_failure)


# --- 2. decode ------------------------------------------------------------------------------------

def _decode_reference():
    from ..vae_latents import decode_latents
    return decode_latents


@exercise("decode", todo="latents (B, 4, h, w) -> images (B, 3, 8h, 8w) in [0, 1].",
          reference=_decode_reference)
def check_decode(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """fn(vae, latents (B, 4, h, w)) -> pictures (B, 3, 8h, 8w) in [0, 1]."""
    from ..vae import AutoencoderKL, VAEConfig

    with _seeded(112):
        vae = perturb_(AutoencoderKL(VAEConfig.tiny()), seed=112, scale=0.5).eval()
        latents = torch.randn(2, 4, 2, 3) * 2.0  # (B, 4, h, w), about the spread of real UNet latents
    name = "decode(vae, latents (2, 4, 2, 3))"
    got = _run(lambda: fn(vae, latents.clone()), name, hint="fn(vae, latents) -> images (B, 3, 8h, 8w).")
    with torch.no_grad():
        raw = vae.decode(latents / 0.18215)
        mistakes = {NO_UNSCALE: (vae.decode(latents) / 2 + 0.5).clamp(0, 1),
                    TIMES_SCALE: (vae.decode(latents * 0.18215) / 2 + 0.5).clamp(0, 1),
                    NO_RANGE_MAP: raw.clamp(0, 1), NO_CLAMP: raw / 2 + 0.5}
        expected = (raw / 2 + 0.5).clamp(0, 1)
    return compare(name, got, expected, mistakes, _named(ADVICE), atol=1e-5, raise_on_failure=raise_on_failure)


# --- 3. the guided sampling loop ------------------------------------------------------------------

def _denoise_reference():
    from ..text_to_image import denoise

    def loop(unet, latents, context, timesteps, schedule, guidance_scale):
        return denoise(unet, latents, context, timesteps, schedule, guidance_scale, "ddim", progress=False)
    return loop


def _loop(unet, x, context, timesteps, schedule, scale, mistake=None):
    """The DDIM loop with guidance, with one mistake switched on (None: the right loop)."""
    from ..sampling import ddim_step
    from ..time_embedding import sinusoidal_embedding

    ts = [int(t) for t in timesteps]
    for i, t in enumerate(ts):
        prev_t = ts[i + 1] if i + 1 < len(ts) else -1
        if mistake == PREV_T_MINUS_ONE:
            prev_t = t - 1
        time = sinusoidal_embedding(torch.tensor([t]), dim=unet.config.n_time_embd)  # (1, n_time)
        eps_uncond, eps_cond = unet(torch.cat([x, x]), context, time).chunk(2)  # (2B, ...) -> 2 x (B, ...)
        eps = {GUIDANCE_REVERSED: eps_cond + scale * (eps_uncond - eps_cond), NO_GUIDANCE: eps_cond}.get(
            mistake, eps_uncond + scale * (eps_cond - eps_uncond))
        x = ddim_step(schedule, eps, t, x, prev_t, set_alpha_to_one=(mistake == LAST_TO_ONE))
    return x


@exercise("denoise", todo="the sampling loop: from noise to the final latents, with guidance and DDIM steps.",
          reference=_denoise_reference)
def check_denoise(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """fn(unet, latents (B, 4, h, w), context (2B, L, d) [uncond, cond], timesteps, schedule, guidance_scale)
    -> the clean latents (B, 4, h, w), with DDIM (eta = 0) steps."""
    from ..schedule import NoiseSchedule
    from ..unet import Diffusion, UNetConfig

    config = UNetConfig.tiny()
    with _seeded(113):
        unet = perturb_(Diffusion(config), seed=113, only_1d=True).eval()
        latents = torch.randn(1, config.in_channels, 8, 8)  # (B, 4, h, w)
        context = torch.randn(2, 5, config.d_context)  # (2B, L, d): [uncond, cond]
    schedule, timesteps = NoiseSchedule.sd_v1(), torch.tensor([667, 334, 1])
    name = "denoise(unet, latents, context, timesteps=[667, 334, 1], schedule, guidance_scale=7.5)"  # i18n: no
    got = _run(lambda: fn(unet, latents.clone(), context.clone(), timesteps.clone(), schedule, 7.5), name,
               hint="fn(unet, latents, context, timesteps, schedule, guidance_scale) -> latents.")
    with torch.no_grad():
        expected = _loop(unet, latents, context, timesteps, schedule, 7.5)
        mistakes = {m: _loop(unet, latents, context, timesteps, schedule, 7.5, m)
                    for m in (GUIDANCE_REVERSED, NO_GUIDANCE, PREV_T_MINUS_ONE, LAST_TO_ONE)}
    return compare(name, got, expected, mistakes, _named(ADVICE),
                   general_hint="Per step: eps = guided noise of unet(cat([x, x]), context, embedding of t); "
                                "x = ddim_step(schedule, eps, t, x, prev_t).", atol=1e-5,
                   raise_on_failure=raise_on_failure)


register("guided_context", "The UNet sees one batch: the first half steers towards 'anything', the second towards "
                           "the prompt.", "What does diffusers encode when you give no negative prompt?")
register("decode", "Three things happened on the way in (pixels -> [-1, 1], encode, scale): undo them in reverse.")
register("denoise", "Each step needs the timestep AFTER this one in the list; what comes after the last?",
         "The model runs once per step on twice the batch: torch.cat([x, x]) with the [uncond, cond] context.")
