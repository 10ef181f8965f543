"""Run the course's GPU paths on one GPU and print one table: ready for a GPU, in under 5 minutes.

    python benchmarks/gpu_check.py                 # a CUDA machine: the full check (no network)
    python benchmarks/gpu_check.py --cpu-smoke     # anywhere: the same code paths, shrunk, on the CPU
    python benchmarks/gpu_check.py --skip notebooks --json gpu_check.json

What it measures (each part in its own section; a part that fails is a FAIL row with the error,
and the script exits with status 1):

1. widgets: each widget's picture as the widget redraws it (sdcourse.render's render_* functions,
   then PNG bytes, as `sdcourse.widgets` does), median time per redraw. The time embedding and
   the attention maps are computed on the device (the attention explorer's maps come from
   sampling the shipped tiny model on it with an AttentionRecorder); the shape ledger traces on
   the meta device, the sequence view is pure drawing.
2. UNet forward: sdcourse's Diffusion against diffusers' UNet2DConditionModel (SDPA attention) on
   the same random SD v1.5 weights, fp16 and bf16, a 64x64 latent, batch 2 (one prompt with
   classifier-free guidance), 77 context tokens, t = 981: median time of each (alternating who
   goes first), the ratio, the peak memory each forward adds, and the outputs compared.
3. training: the capstone model's training throughput (images/s) at batch 32 (the shipped recipe)
   and 256, and its peak memory.
4. notebooks: every notebook (00-11) executed top to bottom with nbclient, CUDA visible, offline:
   cells tagged `skip-execution` (the downloads) are skipped, SDCOURSE_QUICK=1 (the short
   training of 07), HF_HUB_OFFLINE=1. A probe cell at the end reports whether the kernel saw
   CUDA and how much GPU memory it used. Outputs are not written back.

--cpu-smoke shrinks everything (the tiny UNet at an 8x8 latent instead of SD v1.5 at 64x64, two
training steps at batch 4, fewer redraws, one notebook) and runs on the CPU, so the script itself
can be checked on any machine.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SECTIONS = ("widgets", "unet", "training", "notebooks")


class Table:
    """Rows of (section, item, device, measurement, status), printed as Markdown."""

    def __init__(self):
        self.rows, self.failed = [], False

    def add(self, section: str, item: str, device: str, measured: str, status: str = "ok") -> None:
        self.rows.append({"section": section, "item": item, "device": device, "measured": measured, "status": status})
        print(f"  [{status}] {section} / {item} ({device}): {measured}", flush=True)

    def fail(self, section: str, item: str, device: str, error: BaseException) -> None:
        self.failed = True
        message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:160]
        traceback.print_exc(limit=3)
        self.add(section, item, device, message, "FAIL")

    def markdown(self) -> str:
        lines = ["| section | item | device | measured | status |", "|---|---|---|---|---|"]
        cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731 - a "|" inside a cell would split it
        lines += ["| " + " | ".join(cell(r[k]) for k in ("section", "item", "device", "measured", "status")) + " |"
                  for r in self.rows]
        return "\n".join(lines)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def peak_mib(fn, device: torch.device) -> str:
    """Peak memory fn() adds (CUDA: torch.cuda.max_memory_allocated; CPU: not measured here)."""
    if device.type != "cuda":
        fn()
        return "n/a (CPU)"
    sync(device)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    sync(device)
    return f"{(torch.cuda.max_memory_allocated() - base) / 2**20:.0f} MiB"


# ----------------------------------------------------------------------------- 1. widgets

def check_widgets(table: Table, device: torch.device, smoke: bool) -> None:
    from sdcourse import UNetConfig, render
    from sdcourse.shapes import trace

    repeats = 2 if smoke else 10
    dev = device.type

    def redraw(fig):  # what a widget does on every change: draw, then PNG bytes for its Image
        render.figure_to_png(fig)

    steps = iter(range(10**6))
    cases = [
        ("time_embedding_view: render_time_embedding", dev,
         lambda: redraw(render.render_time_embedding(next(steps) % 1000, dim=320, device=device))),
        ("sequence_view: render_sequence (64x64, 320 ch)", "cpu (drawing only)",
         lambda: redraw(render.render_sequence(64, 64, 320, next(steps) % 64, 5))),
        ("shape_ledger: trace + ledger_html", "meta",
         lambda: render.ledger_html(trace(UNetConfig(), 512 + 64 * (next(steps) % 4), 512))),
        ("shape_ledger preview: render_ledger", "meta",
         lambda: redraw(render.render_ledger(trace(UNetConfig(), 512, 512)))),
    ]
    for item, where, fn in cases:
        try:
            table.add("widgets", item, where, f"{median_ms(fn, repeats, device):.0f} ms per redraw")
        except Exception as error:  # noqa: BLE001 - a failing part is a row, the rest still runs
            table.fail("widgets", item, where, error)

    item = "attention_explorer: render_attention (map + sample)"
    try:
        from sdcourse.record import AttentionRecorder
        from sdcourse.train import load_shipped

        model = load_shipped(device)
        prompt = "red circle top left"
        start = time.perf_counter()
        with AttentionRecorder(model.diffusion, kind="cross", cfg=True) as recorder:
            image = model.generate([prompt], steps=4 if smoke else 25, seed=0)[0]  # (3, 24, 24)
        sync(device)
        record_s = time.perf_counter() - start
        maps = recorder.maps
        tokens = model.tokenizer.words(prompt)
        ms = median_ms(lambda: redraw(render.render_attention(maps, token=1 + next(steps) % 4, image=image,
                                                              tokens=tokens)), repeats, device)
        table.add("widgets", "attention_explorer: sample + record (shipped model)", dev, f"{record_s:.2f} s")
        table.add("widgets", item, dev, f"{ms:.0f} ms per redraw")
        ms = median_ms(lambda: redraw(render.render_token_maps(maps, tokens=[1, 2, 3, 4], labels=tokens[1:5])),
                       repeats, device)
        table.add("widgets", "attention_explorer: render_token_maps (4 words)", dev, f"{ms:.0f} ms per redraw")
    except Exception as error:  # noqa: BLE001
        table.fail("widgets", item, dev, error)


# ----------------------------------------------------------------------------- 2. UNet forward

def check_unet(table: Table, device: torch.device, smoke: bool) -> None:
    import diffusers
    from diffusers import UNet2DConditionModel

    from sdcourse import Diffusion, UNetConfig, convert_diffusers_unet, diffusers_config, sinusoidal_embedding

    config = UNetConfig.tiny() if smoke else UNetConfig()
    size, batch, rounds = (8, 2, 2) if smoke else (64, 2, 10)
    torch.manual_seed(0)
    ref32 = UNet2DConditionModel(**diffusers_config(config)).eval()
    ref32.set_attn_processor(diffusers.models.attention_processor.AttnProcessor2_0())
    ours32 = Diffusion(config).eval()
    ours32.load_state_dict(convert_diffusers_unet(ref32.state_dict()))
    g = torch.Generator().manual_seed(size)
    latent32 = torch.randn(batch, config.in_channels, size, size, generator=g)
    context32 = torch.randn(batch, 77, config.d_context, generator=g)
    t = torch.tensor([981] * batch)
    name = "tiny UNet" if smoke else "SD v1.5 UNet"
    for dtype in (torch.float16, torch.bfloat16):
        item = f"{name}, latent {size}x{size}, batch {batch}, {str(dtype).replace('torch.', '')}"
        try:
            # each dtype from the same fp32 weights on the CPU
            ref, ours = copy.deepcopy(ref32).to(device, dtype), copy.deepcopy(ours32).to(device, dtype)
            latent, context = latent32.to(device, dtype), context32.to(device, dtype)
            t_dev = t.to(device)
            time_emb = sinusoidal_embedding(t, config.n_time_embd).to(device, dtype)  # (B, 320)

            @torch.inference_mode()
            def f_ours():
                return ours(latent, context, time_emb)

            @torch.inference_mode()
            def f_ref():
                return ref(latent, t_dev, context).sample

            a, b = f_ours().float(), f_ref().float()
            diff = (a - b).abs().max().item()
            scale = b.abs().max().item()
            mem_ours, mem_ref = peak_mib(f_ours, device), peak_mib(f_ref, device)
            times = {"ours": [], "ref": []}
            for r in range(rounds):  # alternate who goes first
                for which in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
                    fn = f_ours if which == "ours" else f_ref
                    sync(device)
                    start = time.perf_counter()
                    fn()
                    sync(device)
                    times[which].append(time.perf_counter() - start)
            mo, mr = statistics.median(times["ours"]), statistics.median(times["ref"])
            agree = diff <= 2e-2 * scale and scale > 0  # half precision: a few ulps of the output's scale
            table.add("unet", item, device.type,
                      f"sdcourse {1000 * mo:.1f} ms, diffusers {1000 * mr:.1f} ms, ratio {mo / mr:.3f}; peak "
                      f"{mem_ours} vs {mem_ref}; max |diff| {diff:.2e} (max |out| {scale:.2f})",
                      "ok" if agree else "FAIL")
            table.failed |= not agree
        except Exception as error:  # noqa: BLE001
            table.fail("unet", item, device.type, error)
        ref = ours = None  # free this dtype's copies before the next
        if device.type == "cuda":
            torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- 3. training

def check_training(table: Table, device: torch.device, smoke: bool) -> None:
    from sdcourse.train import TrainConfig, Trainer

    settings = [(4, 2)] if smoke else [(32, 30), (256, 15)]  # (batch, timed steps)
    for batch, steps in settings:
        item = f"capstone model, batch {batch}"
        try:
            config = TrainConfig(batch_size=batch)
            trainer = Trainer(config, device)
            trainer.run(steps=2, progress=False)  # warm-up: kernels chosen, memory allocated
            sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            trainer.run(steps=2 + steps, progress=False)
            sync(device)
            seconds = time.perf_counter() - start
            memory = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if device.type == "cuda" else "n/a (CPU)"
            table.add("training", item, device.type,
                      f"{steps * batch / seconds:.0f} img/s ({1000 * seconds / steps:.0f} ms/step, {steps} steps), "
                      f"peak {memory}; loss {trainer.losses[-1][1]:.3f}")
        except Exception as error:  # noqa: BLE001
            table.fail("training", item, device.type, error)


# ----------------------------------------------------------------------------- 4. notebooks

PROBE = """
import json, torch
print("GPU_CHECK " + json.dumps({"cuda": torch.cuda.is_available(),
      "peak_mib": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else 0}))
"""


def notebook_paths(smoke: bool, wanted=None):
    """The full editions (notebooks/solutions/) when present, else the notebooks beside them."""
    folder = ROOT / "notebooks" / "solutions"
    if not any(folder.glob("[0-9][0-9]_*.ipynb")):
        folder = ROOT / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if wanted:
        paths = [p for p in paths if p.name[:2] in wanted]
    elif smoke:
        paths = paths[:1]
    return paths


def check_notebooks(table: Table, device: torch.device, smoke: bool, wanted=None, timeout: int = 600) -> None:
    import nbformat
    from nbclient import NotebookClient

    env_before = dict(os.environ)
    os.environ.update({"SDCOURSE_QUICK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    if device.type == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the smoke run: the kernel sees no GPU, as it should
    try:
        for path in notebook_paths(smoke, wanted):
            item = f"{path.parent.name}/{path.name}"
            try:
                nb = nbformat.read(path, as_version=4)
                nb.cells.append(nbformat.v4.new_code_cell(PROBE))
                start = time.perf_counter()
                NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                               resources={"metadata": {"path": str(path.parent)}}).execute()
                seconds = time.perf_counter() - start
                probe = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
                facts = json.loads(probe[0]["text"].split("GPU_CHECK ", 1)[1]) if probe else {}
                skipped = sum("skip-execution" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
                saw = f"kernel saw CUDA: {facts.get('cuda')}, peak {facts.get('peak_mib')} MiB"
                table.add("notebooks", item, device.type, f"{seconds:.0f} s, {skipped} download cells skipped; {saw}")
            except Exception as error:  # noqa: BLE001
                table.fail("notebooks", item, device.type, error)
    finally:
        os.environ.clear()
        os.environ.update(env_before)


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="shrink everything and run on the CPU")
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS, help="sections to leave out")
    parser.add_argument("--notebooks", nargs="*", default=None, help="notebook numbers to run, e.g. 00 05")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.cpu_smoke:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        print("gpu_check: no CUDA device is visible. On a GPU machine check `nvidia-smi` and that torch is a "
              "CUDA build; anywhere else run `python benchmarks/gpu_check.py --cpu-smoke`.", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    from sdcourse.device import describe_device

    import diffusers

    print(f"gpu_check{' --cpu-smoke' if args.cpu_smoke else ''}: {describe_device(device)}, torch {torch.__version__} "
          f"(CUDA {torch.version.cuda}), diffusers {diffusers.__version__}, Python {platform.python_version()}",
          flush=True)
    table, start = Table(), time.perf_counter()
    parts = {"widgets": lambda: check_widgets(table, device, args.cpu_smoke),
             "unet": lambda: check_unet(table, device, args.cpu_smoke),
             "training": lambda: check_training(table, device, args.cpu_smoke),
             "notebooks": lambda: check_notebooks(table, device, args.cpu_smoke, args.notebooks)}
    for name in SECTIONS:
        if name in args.skip:
            continue
        section_start = time.perf_counter()
        print(f"{name} ...", flush=True)
        try:
            parts[name]()
        except Exception as error:  # noqa: BLE001 - e.g. an import that fails: the other sections still run
            table.fail(name, "(section)", device.type, error)
        print(f"{name}: {time.perf_counter() - section_start:.0f} s", flush=True)
    total = time.perf_counter() - start
    print(f"\n{describe_device(device)}, {total:.0f} s in all\n")
    print(table.markdown())
    if args.json:
        Path(args.json).write_text(json.dumps({"device": describe_device(device), "seconds": round(total),
                                               "rows": table.rows}, indent=1) + "\n")
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
