"""sdcourse's CLIPTextEncoder vs transformers' CLIPTextModel (SDPA attention): one forward pass on
the same SD v1 weights (random, 123,060,480 parameters) and the same token ids, interleaved in one
process so that machine load hits both alike.

    python benchmarks/text_encoder.py                     # CPU (2 threads) and, if present, CUDA fp16
    python benchmarks/text_encoder.py --batch 2 --rounds 10 --threads 1

Reports: median seconds of each, the ratio sdcourse / transformers (< 1: sdcourse is faster), the
peak memory each forward adds on top of the weights (CPU: the process's peak RSS, reset before each
forward through /proc/self/clear_refs; CUDA: torch.cuda.max_memory_allocated) and the max |diff|.
"""
from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
from pathlib import Path

import torch
from transformers import CLIPTextConfig, CLIPTextModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unet_forward import cpu_peak_mib, cuda_peak_mib, timed  # noqa: E402  (the same measuring helpers)

from sdcourse.text_encoder import CLIPTextEncoder, TextEncoderConfig  # noqa: E402
from sdcourse.text_encoder_weights import transformers_config  # noqa: E402


def build(device, dtype):
    config = TextEncoderConfig()
    torch.manual_seed(0)
    ref = CLIPTextModel(CLIPTextConfig(**transformers_config(config), attn_implementation="sdpa")).eval()
    ours = CLIPTextEncoder(config).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)  # the same names
    return ref.to(device, dtype), ours.to(device, dtype)


def prompt_ids(batch: int, length: int = 77) -> torch.Tensor:
    """Rows like tokenized prompts: start token, 12 random tokens, then <|endoftext|> to the end."""
    g = torch.Generator().manual_seed(0)
    ids = torch.full((batch, length), 49407)
    ids[:, 0] = 49406
    ids[:, 1:13] = torch.randint(0, 49406, (batch, 12), generator=g)
    return ids


def run(device, dtype, rounds, batch):
    ref, ours = build(device, dtype)
    ids = prompt_ids(batch).to(device)

    @torch.inference_mode()
    def f_ours():
        return ours(ids)

    @torch.inference_mode()
    def f_ref():
        return ref(input_ids=ids).last_hidden_state

    diff = (f_ours().float() - f_ref().float()).abs().max().item()  # same answer first (and a warm-up)
    peak = cuda_peak_mib if device.type == "cuda" else cpu_peak_mib
    mem_ours, mem_ref = peak(f_ours), peak(f_ref)
    times = {"ours": [], "ref": []}
    for r in range(rounds):  # alternate who goes first
        order = [("ours", f_ours), ("ref", f_ref)] if r % 2 == 0 else [("ref", f_ref), ("ours", f_ours)]
        for name, fn in order:
            times[name].append(timed(fn, device))
    med_ours, med_ref = statistics.median(times["ours"]), statistics.median(times["ref"])
    print(f"  sdcourse {med_ours * 1000:.1f} ms, transformers {med_ref * 1000:.1f} ms, ratio {med_ours / med_ref:.3f}; "
          f"peak +{mem_ours:.0f} MiB vs +{mem_ref:.0f} MiB; max |diff| {diff:.1e}", flush=True)
    return med_ours, med_ref, med_ours / med_ref, mem_ours, mem_ref, diff


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=2, help="2 = one prompt and the empty prompt (guidance)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-cuda", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads, batch {args.batch} x 77 tokens, {args.rounds} rounds")
    rows = [("CPU fp32", run(torch.device("cpu"), torch.float32, args.rounds, args.batch))]
    gc.collect()
    if torch.cuda.is_available() and not args.no_cuda:
        print(f"CUDA fp16 ({torch.cuda.get_device_name()})")
        rows.append(("CUDA fp16", run(torch.device("cuda"), torch.float16, max(args.rounds, 20), args.batch)))
    print("\n| device | sdcourse ms | transformers ms | ratio | peak MiB sdcourse | peak MiB transformers | max diff |")
    print("|---|---|---|---|---|---|---|")
    for name, (mo, mr, ratio, po, pr, diff) in rows:
        print(f"| {name} | {mo * 1000:.1f} | {mr * 1000:.1f} | {ratio:.3f} | {po:.0f} | {pr:.0f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
