"""`python -m sdcourse.train`: train the capstone model from a terminal (see sdcourse/assets/README.md).

    python -m sdcourse.train --out runs/tiny --cpu-minutes 12 --seed 0   # the shipped recipe
    python -m sdcourse.train --out runs/tiny --steps 40 --seed 0         # a quick look

Every `TrainConfig` setting is a flag (--batch-size 16, --channels 64 48 32, ...). `--minutes`
limits the wall-clock time, `--cpu-minutes` this process's CPU time (the fair measure on a
shared machine). Running the same command again resumes from the run folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields

from ..device import set_threads
from .config import TrainConfig
from .trainer import train


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m sdcourse.train",
                                description="Train the tiny text-conditioned SD UNet on the toy shapes.")
    p.add_argument("--out", required=True, help="run folder (state.safetensors, tiny_sd.safetensors, log.jsonl)")
    p.add_argument("--steps", type=int, default=None, help="stop at this many steps in total")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much (wall-clock) training time in total")
    p.add_argument("--cpu-minutes", type=float, default=None,
                   help="stop after this much CPU time of this process in total (fair on a shared machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: SDCOURSE_THREADS or torch's)")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds a state")
    p.add_argument("--export", default=None, help="also write the EMA weights as fp16 to this .safetensors path")
    p.add_argument("--snapshot-every", type=int, default=0, help="save the EMA weights every N steps (0: never)")
    for f in fields(TrainConfig):
        if f.name in ("seed",):
            continue
        if f.name == "channels":
            p.add_argument("--channels", type=int, nargs=3, default=None)
        else:
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None)
    args = p.parse_args(argv)
    if args.steps is None and args.minutes is None and args.cpu_minutes is None:
        p.error("give --steps N, --minutes M or --cpu-minutes M")
    set_threads(args.threads)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if f.name != "seed" and getattr(args, f.name) is not None}
    config = TrainConfig.from_dict({**asdict(TrainConfig()), **overrides, "seed": args.seed})
    print(f"config: {config}", flush=True)
    command = " ".join(["python -m sdcourse.train"] + list(sys.argv[1:] if argv is None else argv))
    trainer = train(args.out, config, steps=args.steps, minutes=args.minutes, cpu_minutes=args.cpu_minutes,
                    resume=not args.no_resume,
                    export=args.export, snapshot_every=args.snapshot_every, command=command)
    info = trainer.info()
    print(json.dumps({**info, "img_per_s": round(info["images"] / max(1e-9, info["train_seconds"]), 1)}), flush=True)
