"""sdcourse's AutoencoderKL vs diffusers' AutoencoderKL: one `decode` on the same SD v1 VAE weights
(random, 83,653,863 parameters) and the same latents, interleaved in one process so that machine
load hits both alike.

    python benchmarks/vae_decode.py                       # CPU (2 threads) and, if present, CUDA fp16
    python benchmarks/vae_decode.py --sizes 16 --rounds 5 --threads 1

--sizes are latent sides (16 -> a 128 x 128 image, 64 -> SD's 512 x 512). Reports: median seconds
of each, the ratio sdcourse / diffusers (< 1: sdcourse is faster), the peak memory each decode adds
on top of the weights (CPU: the process's peak RSS, reset before each call through
/proc/self/clear_refs; CUDA: torch.cuda.max_memory_allocated) and the max |diff| of the images.
"""
from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL as DiffusersAutoencoderKL

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unet_forward import cpu_peak_mib, cuda_peak_mib, timed  # noqa: E402  (the same measuring helpers)

from sdcourse.vae import AutoencoderKL, VAEConfig  # noqa: E402
from sdcourse.vae_weights import convert_diffusers_vae, diffusers_vae_config  # noqa: E402


def build(device, dtype):
    config = VAEConfig()
    torch.manual_seed(0)
    ref = DiffusersAutoencoderKL(**diffusers_vae_config(config)).eval()  # default attention: SDPA
    ours = AutoencoderKL(config).eval()
    state, unmapped = convert_diffusers_vae(ref.state_dict(), config)
    assert not unmapped
    ours.load_state_dict(state, strict=True)
    return ref.to(device, dtype), ours.to(device, dtype)


def run(device, dtype, sizes, rounds, batch):
    ref, ours = build(device, dtype)
    rows = []
    for size in sizes:
        g = torch.Generator().manual_seed(size)
        latents = torch.randn(batch, 4, size, size, generator=g).to(device, dtype)

        @torch.inference_mode()
        def f_ours():
            return ours.decode(latents)

        @torch.inference_mode()
        def f_ref():
            return ref.decode(latents).sample

        diff = (f_ours().float() - f_ref().float()).abs().max().item()  # same answer first (and a warm-up)
        peak = cuda_peak_mib if device.type == "cuda" else cpu_peak_mib
        mem_ours, mem_ref = max(peak(f_ours), 0.0), max(peak(f_ref), 0.0)
        times = {"ours": [], "ref": []}
        for r in range(rounds):  # alternate who goes first
            order = [("ours", f_ours), ("ref", f_ref)] if r % 2 == 0 else [("ref", f_ref), ("ours", f_ours)]
            for name, fn in order:
                times[name].append(timed(fn, device))
        med_ours, med_ref = statistics.median(times["ours"]), statistics.median(times["ref"])
        print(f"  latent {size}x{size} -> image {8 * size}x{8 * size}: sdcourse {med_ours:.3f} s, diffusers "
              f"{med_ref:.3f} s, ratio {med_ours / med_ref:.3f}; peak +{mem_ours:.0f} MiB vs +{mem_ref:.0f} MiB; "
              f"max |diff| {diff:.1e}", flush=True)
        rows.append((size, med_ours, med_ref, med_ours / med_ref, mem_ours, mem_ref, diff))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16], help="latent sides (x8 = image sides)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-cuda", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads, batch {args.batch}, {args.rounds} rounds")
    print("CPU fp32")
    results = [("CPU fp32", run(torch.device("cpu"), torch.float32, args.sizes, args.rounds, args.batch))]
    gc.collect()
    if torch.cuda.is_available() and not args.no_cuda:
        print(f"CUDA fp16 ({torch.cuda.get_device_name()})")
        sizes = sorted(set(args.sizes) | {64})  # and SD's 512 x 512
        rounds = max(args.rounds, 20)
        results.append(("CUDA fp16", run(torch.device("cuda"), torch.float16, sizes, rounds, args.batch)))
    print("\n| device | latent | image | sdcourse s | diffusers s | ratio | peak MiB sdcourse | peak MiB diffusers | max diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rows in results:
        for size, mo, mr, ratio, po, pr, diff in rows:
            print(f"| {name} | {size}x{size} | {8 * size}x{8 * size} | {mo:.3f} | {mr:.3f} | {ratio:.3f} | "
                  f"{po:.0f} | {pr:.0f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
