"""How long does the tiny SD take to learn the toy shapes from scratch?

    python benchmarks/train_tiny.py --cpu-minutes 12 --out runs/bench_tiny

Trains with the shipped recipe (sdcourse.train.TrainConfig defaults; pass the same flags as the
recorded command in sdcourse/assets/README.md), and every --eval-every steps samples the 60
one-object prompts with the EMA weights and judges them (sdcourse.evaluate, no attention
recording). It prints the training throughput (images/s) and the training time, wall clock and
CPU, at which colour, position and shape first all reach --bar (0.9). Evaluation time is not
counted as training time.

    python benchmarks/train_tiny.py --from-snapshots runs/tiny

evaluates the EMA snapshots that `python -m sdcourse.train ... --snapshot-every N` saved along
an earlier run instead (same judge, same bar), so a run trained once gives both the shipped
checkpoint and its time to quality.

The CPU time of the training process is the number to compare: on a machine shared with other
jobs the wall clock mostly measures waiting. A GPU estimate from the measured FLOPs per image
is printed too (an estimate, not a measurement).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sdcourse.device import set_threads
from sdcourse.evaluate import evaluate
from sdcourse.train import TrainConfig, Trainer, save_checkpoint


def flops_per_training_image(config: TrainConfig) -> float:
    """FLOPs of one training example (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    from sdcourse.train import TinySD, diffusion_loss, training_batch

    model = TinySD(config)
    batch = training_batch(model, 0)
    counter = FlopCounterMode(display=False)
    with counter:
        diffusion_loss(model, **batch).backward()
    return counter.get_total_flops() / config.batch_size


def _quality(model) -> dict:
    report = evaluate(model, n_seeds=1, n_two=0, progress=False, attention=False)
    return {k: report[f"single.{k}"] for k in ("color", "position", "shape", "exact")}


def from_snapshots(folder: Path, bar: float) -> None:
    from sdcourse.train import load_checkpoint

    history, reached = [], None
    for path in sorted(folder.glob("ema_step*.safetensors")):
        model = load_checkpoint(path)
        info = model.training_info
        row = {**{k: info[k] for k in ("steps", "images", "train_seconds", "train_cpu_seconds")}, **_quality(model)}
        row["img_per_s_cpu"] = round(row["images"] / max(1e-9, row["train_cpu_seconds"]), 1)
        history.append(row)
        print(json.dumps(row), flush=True)
        if reached is None and all(row[k] >= bar for k in ("color", "position", "shape")):
            reached = row
    config = load_checkpoint(path).config
    flops = flops_per_training_image(config)
    _summary(folder, bar, reached, history, flops)


def _summary(out: Path, bar: float, reached, history, flops: float) -> None:
    last = history[-1]
    images = (reached or last)["images"]
    summary = {
        "bar": bar, "reached": reached, "history": history,
        "flops_per_training_image": flops,
        "cpu_training_gflops_per_s": round(flops * last["images"] / max(1e-9, last["train_cpu_seconds"]) / 1e9, 2),
        # An estimate, not a measurement: the same number of images on a T4-class GPU, bounded by
        # (a) ~3 TFLOP/s sustained fp32 on such small convs, (b) kernel launches, ~15 ms per step
        # of ~1000 small kernels at batch 256.
        "gpu_estimate_seconds": round(max(images * flops / 3e12, images / 256 * 0.015), 1),
    }
    (out / "benchmark.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench_tiny")
    p.add_argument("--cpu-minutes", type=float, default=12.0, help="training CPU-time budget")
    p.add_argument("--eval-every", type=int, default=150, help="steps between quality checks")
    p.add_argument("--bar", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--drop-color", type=float, default=0.3)
    p.add_argument("--drop-shape", type=float, default=0.15)
    p.add_argument("--drop-position", type=float, default=0.15)
    p.add_argument("--from-snapshots", default=None, help="evaluate the ema_step*.safetensors of this run folder")
    args = p.parse_args()
    set_threads(args.threads)
    if args.from_snapshots:
        return from_snapshots(Path(args.from_snapshots), args.bar)
    config = TrainConfig(seed=args.seed, batch_size=args.batch_size, drop_color=args.drop_color,
                         drop_shape=args.drop_shape, drop_position=args.drop_position)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config)
    history, reached = [], None
    while trainer.cpu_seconds < 60 * args.cpu_minutes:
        trainer.run(steps=trainer.step + args.eval_every, cpu_minutes=args.cpu_minutes, progress=False)
        row = {**trainer.info(), **_quality(trainer.ema.eval())}
        row["img_per_s_cpu"] = round(trainer.step * config.batch_size / max(1e-9, trainer.cpu_seconds), 1)
        history.append(row)
        print(json.dumps(row), flush=True)
        if reached is None and all(row[k] >= args.bar for k in ("color", "position", "shape")):
            reached = row
            save_checkpoint(out / "reached_bar.safetensors", trainer.ema, trainer.info())
            break
    _summary(out, args.bar, reached, history, flops_per_training_image(config))


if __name__ == "__main__":
    main()
