"""The course's TextToImage vs diffusers' StableDiffusionPipeline: one image from a prompt, same weights,
same scheduler (DDIM), same seed, interleaved in one process so that machine load hits both alike.

    python benchmarks/text_to_image.py                              # tiny random pipeline, 128 x 128, CPU
    python benchmarks/text_to_image.py --model sd_v1 --size 64      # SD v1's full config (random), 64 x 64
    python benchmarks/text_to_image.py --model sd_v1 --size 512 --device cuda --steps 20   # GPU, fp16

--model tiny: sdcourse.pipeline.tiny_pipeline() (random, small). --model sd_v1: random weights in SD v1's
full configs (UNet 859,520,964, VAE 83,653,863, CLIP text 123,060,480 parameters; ~4.3 GB in fp32)
with the tiny offline tokenizer. The course pipeline holds the same tensors (text_encoder_from_transformers,
diffusion_from_unet share them; the VAE is converted). Reports: median seconds per image of each, the
ratio sdcourse / diffusers (< 1: sdcourse is faster), the peak memory one image adds on top of the weights
(CPU: peak RSS via /proc/self/clear_refs; CUDA: torch.cuda.max_memory_allocated) and the max |diff| of
the images (values in [0, 1]).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unet_forward import cpu_peak_mib, cuda_peak_mib, timed  # noqa: E402  (the same measuring helpers)

from sdcourse.pipeline import diffusion_from_unet, tiny_pipeline  # noqa: E402
from sdcourse.schedule import NoiseSchedule  # noqa: E402
from sdcourse.text_encoder_weights import text_encoder_from_transformers  # noqa: E402
from sdcourse.text_to_image import TextToImage  # noqa: E402
from sdcourse.unet import UNetConfig  # noqa: E402
from sdcourse.vae import AutoencoderKL  # noqa: E402
from sdcourse.vae_weights import config_from_diffusers_vae, convert_diffusers_vae  # noqa: E402

PROMPT = "a photo of a red cat on the grass"


def sd_v1_pipeline():
    """A StableDiffusionPipeline with SD v1's full configs and random weights (no download)."""
    from diffusers import AutoencoderKL as DiffusersVAE
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from sdcourse.text_encoder import TextEncoderConfig
    from sdcourse.text_encoder_weights import transformers_config
    from sdcourse.vae import VAEConfig
    from sdcourse.vae_weights import diffusers_vae_config
    from sdcourse.weights import diffusers_config

    tiny = tiny_pipeline()  # for its tokenizer and scheduler
    torch.manual_seed(0)
    text = CLIPTextModel(CLIPTextConfig(**transformers_config(TextEncoderConfig()))).eval()
    vae = DiffusersVAE(**diffusers_vae_config(VAEConfig())).eval()
    unet = UNet2DConditionModel(**diffusers_config(UNetConfig())).eval()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tiny.tokenizer, unet=unet,
                                   scheduler=tiny.scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def course_of(pipe) -> TextToImage:
    """The course pipeline on the same weights (tensors shared; the VAE converted)."""
    config = config_from_diffusers_vae(pipe.vae.config)
    vae = AutoencoderKL(config)
    state, unmapped = convert_diffusers_vae(pipe.vae.state_dict(), config)
    assert not unmapped
    vae.load_state_dict(state, strict=True)
    p = next(pipe.unet.parameters())
    return TextToImage(pipe.tokenizer, text_encoder_from_transformers(pipe.text_encoder), diffusion_from_unet(pipe.unet),
                       vae.to(p.device, p.dtype).eval(), NoiseSchedule.sd_v1())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "sd_v1"), default="tiny")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (a multiple of 8)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    pipe = sd_v1_pipeline() if args.model == "sd_v1" else tiny_pipeline()
    if device.type != "cpu" or dtype != torch.float32:
        pipe = pipe.to(device, dtype)
    course = course_of(pipe)
    settings = dict(height=args.size, width=args.size, num_inference_steps=args.steps, guidance_scale=7.5)

    @torch.inference_mode()
    def f_ours():
        return course(PROMPT, generator=torch.Generator().manual_seed(0), progress=False, **settings)

    @torch.inference_mode()
    def f_ref():
        return pipe(PROMPT, generator=torch.Generator().manual_seed(0), output_type="pt", **settings).images

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {device} {dtype}, "
          f"{torch.get_num_threads()} CPU threads, model {args.model}, {args.size}x{args.size}, {args.steps} DDIM "
          f"steps, guidance 7.5, {args.rounds} rounds", flush=True)
    diff = (f_ours().float() - f_ref().float()).abs().max().item()  # the same image first (and a warm-up)
    peak = cuda_peak_mib if device.type == "cuda" else cpu_peak_mib
    mem_ours, mem_ref = max(peak(f_ours), 0.0), max(peak(f_ref), 0.0)
    times = {"ours": [], "ref": []}
    for r in range(args.rounds):  # alternate who goes first
        order = [("ours", f_ours), ("ref", f_ref)] if r % 2 == 0 else [("ref", f_ref), ("ours", f_ours)]
        for name, fn in order:
            times[name].append(timed(fn, device))
    med_ours, med_ref = statistics.median(times["ours"]), statistics.median(times["ref"])
    print("\n| model | device | image | steps | sdcourse s/image | diffusers s/image | ratio | peak MiB sdcourse "
          "| peak MiB diffusers | max diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.model} | {device.type} {str(dtype).replace('torch.', '')} | {args.size}x{args.size} | {args.steps} | "
          f"{med_ours:.3f} | {med_ref:.3f} | {med_ours / med_ref:.3f} | {mem_ours:.0f} | {mem_ref:.0f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
