"""sdcourse's Diffusion vs diffusers' UNet2DConditionModel (SDPA attention): one forward pass on the
same weights and the same inputs, interleaved in one process so that machine load hits both alike.

    python benchmarks/unet_forward.py                       # CPU (2 threads) and, if present, CUDA fp16
    python benchmarks/unet_forward.py --sizes 8 32 --rounds 3 --threads 1

Reports, per latent size: median seconds of each, the ratio sdcourse / diffusers (< 1: sdcourse is
faster) and the peak memory each forward adds on top of the weights (CPU: the process's peak RSS,
reset before each forward through /proc/self/clear_refs; CUDA: torch.cuda.max_memory_allocated).
"""
from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time

import torch
from diffusers import UNet2DConditionModel

from sdcourse import Diffusion, UNetConfig, convert_diffusers_unet, diffusers_config, sinusoidal_embedding


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def cpu_peak_mib(fn) -> float:
    """Peak resident memory that `fn` adds (MiB). Linux only."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (the peak) to the current RSS
    base = rss_kib("VmRSS")
    fn()
    return (rss_kib("VmHWM") - base) / 1024


def cuda_peak_mib(fn) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def build(device, dtype):
    config = UNetConfig()
    torch.manual_seed(0)
    ref = UNet2DConditionModel(**diffusers_config(config)).eval()
    ref.set_attn_processor(__import__("diffusers").models.attention_processor.AttnProcessor2_0())
    ours = Diffusion(config).eval()
    ours.load_state_dict(convert_diffusers_unet(ref.state_dict()))
    return ref.to(device, dtype), ours.to(device, dtype)


def run(device, dtype, sizes, rounds, batch):
    ref, ours = build(device, dtype)
    rows = []
    for size in sizes:
        g = torch.Generator().manual_seed(size)
        latent = torch.randn(batch, 4, size, size, generator=g).to(device, dtype)
        context = torch.randn(batch, 77, 768, generator=g).to(device, dtype)
        t = torch.tensor([981] * batch)
        time_emb = sinusoidal_embedding(t).to(device, dtype)
        t = t.to(device)

        @torch.inference_mode()
        def f_ours():
            return ours(latent, context, time_emb)

        @torch.inference_mode()
        def f_ref():
            return ref(latent, t, context).sample

        # same answer first (fp16 on GPU is looser)
        diff = (f_ours().float() - f_ref().float()).abs().max().item()
        peak = cuda_peak_mib if device.type == "cuda" else cpu_peak_mib
        mem_ours, mem_ref = peak(f_ours), peak(f_ref)
        times = {"ours": [], "ref": []}
        for r in range(rounds):  # alternate who goes first
            order = [("ours", f_ours), ("ref", f_ref)] if r % 2 == 0 else [("ref", f_ref), ("ours", f_ours)]
            for name, fn in order:
                times[name].append(timed(fn, device))
        med_ours, med_ref = statistics.median(times["ours"]), statistics.median(times["ref"])
        rows.append((size, med_ours, med_ref, med_ours / med_ref, mem_ours, mem_ref, diff))
        print(f"  {size}x{size}: sdcourse {med_ours:.3f} s, diffusers {med_ref:.3f} s, ratio {med_ours / med_ref:.3f}; "
              f"peak +{mem_ours:.0f} MiB vs +{mem_ref:.0f} MiB; max |diff| {diff:.1e}", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 64], help="latent sizes (multiples of 8)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2, help="2 = one prompt with classifier-free guidance")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-cuda", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads, batch {args.batch}, 77 context tokens, {args.rounds} rounds")
    tables = []
    print("CPU fp32")
    tables.append(("CPU fp32", run(torch.device("cpu"), torch.float32, args.sizes, args.rounds, args.batch)))
    gc.collect()
    if torch.cuda.is_available() and not args.no_cuda:
        print(f"CUDA fp16 ({torch.cuda.get_device_name()})")
        tables.append(("CUDA fp16", run(torch.device("cuda"), torch.float16, args.sizes, max(args.rounds, 10), args.batch)))
    print("\n| device | latent | sdcourse s | diffusers s | ratio | peak MiB sdcourse | peak MiB diffusers |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in tables:
        for size, mo, mr, ratio, po, pr, _ in rows:
            print(f"| {name} | {size}x{size} | {mo:.3f} | {mr:.3f} | {ratio:.3f} | {po:.0f} | {pr:.0f} |")


if __name__ == "__main__":
    main()
