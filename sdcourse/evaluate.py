"""Judge what the tiny model draws, from the pixels alone, and measure where its words look.

    python -m sdcourse.evaluate --checkpoint sdcourse/assets/tiny_sd.safetensors

The judge (`judge_image`) knows nothing about the model. It finds the objects in an image
(connected regions of bright pixels), and measures each one:
- colour: the palette colour nearest to the region's mean RGB;
- position: the quadrant of the region's centroid;
- shape: each shape template (circle, square, triangle) is drawn with the region's area at the
  region's centroid; the template that overlaps the region best (IoU) wins, if it overlaps at
  least MIN_SHAPE_IOU (else "unclear": e.g. two touching objects that merged into one region).
It is checked on the generator's own images (tests/test_evaluate.py): it must be right there,
and wrong when the label is wrong.

Localisation (`localisation`): while sampling, the cross-attention of every step is recorded
(sdcourse.record.AttentionRecorder, cond half of the [uncond, cond] batch) and averaged over the
blocks of the finest grid (`LEVELS`; "localisation_all" averages every block). For each
word of the prompt, score = (share of its attention mass inside its object's mask) / (share
of the image the mask covers). 1 means "no better than spread evenly"; 2 means twice as
concentrated on the object as chance.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .device import progress_bar
from .toy import COLORS, SHAPES, all_single_prompts, coverage, parse_caption, two_object_prompts, word_kind
from .i18n import tr

# Localisation is measured on the maps of the finest grid (8 x 8 for the tiny model: the blocks
# at factor 8, which sdcourse.record labels "(H/3)" for this model: down.1, down.2, up.9, up.10, up.11), as attention-map tools use
# one resolution of SD's maps. The coarser grids (4 x 4, 2 x 2, 1 x 1) can hardly say where in a
# quadrant a word looks; upsampled they blur the average towards 1. Averages over the two finest
# grids ("fine_and_next") and over every block ("all") are reported too.
LEVELS = {"fine": (8,), "fine_and_next": (8, 16), "all": None}
FOREGROUND = 0.4  # a pixel is foreground when its brightest channel is above this (in [0, 1])
MIN_AREA = 12  # regions smaller than this many pixels are noise, not objects
MIN_SHAPE_IOU = 0.6  # below this overlap with every template the shape is "unclear" (e.g. two objects merged)
_PALETTE = np.array(list(COLORS.values()), dtype=np.float64)  # (n_colors, 3)
_AREA_PER_R2 = {"circle": math.pi, "square": 1.7 ** 2, "triangle": 0.5 * 2.2 * 2.0}  # area / radius^2, see toy.coverage
_CENTROID_BELOW_CENTER = {"circle": 0.0, "square": 0.0, "triangle": 1.0 / 3.0}  # (centroid row - centre row) / radius


def _to_unit(image) -> np.ndarray:
    """(3, S, S) tensor in [-1, 1] -> (S, S, 3) numpy in [0, 1]."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(tr(f"judge_image: expected an image tensor (3, S, S) in [-1, 1], got {getattr(image, 'shape', type(image))}."))
    return ((image.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def connected_regions(mask: np.ndarray) -> List[np.ndarray]:
    """4-connected regions of a (S, S) bool mask -> list of (S, S) bool masks, largest first."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    regions = []
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        label = len(regions) + 1
        labels[start] = label
        stack, pixels = [start], []
        while stack:
            r, c = stack.pop()
            pixels.append((r, c))
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] and not labels[rr, cc]:
                    labels[rr, cc] = label
                    stack.append((rr, cc))
        region = labels == label
        regions.append(region)
    return sorted(regions, key=lambda m: -int(m.sum()))


def _quadrant(row: float, col: float, size: int) -> str:
    return ("top" if row < size / 2 else "bottom") + " " + ("left" if col < size / 2 else "right")


def judge_shape(region: np.ndarray) -> Dict[str, float]:
    """IoU of a region (S, S) bool with each shape template of the same area and centroid."""
    size = region.shape[0]
    area = float(region.sum())
    rows, cols = np.nonzero(region)
    cy, cx = rows.mean() + 0.5, cols.mean() + 0.5  # pixel centres
    scores = {}
    for shape in SHAPES:
        r = math.sqrt(area / _AREA_PER_R2[shape])
        center = (cy - _CENTROID_BELOW_CENTER[shape] * r, cx)
        template = coverage(shape, center, r, size) >= 0.5
        scores[shape] = float((template & region).sum() / max(1, (template | region).sum()))
    return scores


def judge_image(image: torch.Tensor) -> List[Dict]:
    """The objects in an image (3, S, S) in [-1, 1], largest first: dicts with color, shape,
    position, area, centroid (row, col) and mask (S, S) bool."""
    rgb = _to_unit(image)  # (S, S, 3)
    size = rgb.shape[0]
    fg = rgb.max(axis=-1) > FOREGROUND  # (S, S)
    objects = []
    for region in connected_regions(fg):
        area = int(region.sum())
        if area < MIN_AREA:
            continue
        mean_rgb = rgb[region].mean(axis=0)  # (3,)
        color = list(COLORS)[int(np.argmin(((_PALETTE - mean_rgb) ** 2).sum(-1)))]
        rows, cols = np.nonzero(region)
        centroid = (rows.mean() + 0.5, cols.mean() + 0.5)
        shapes = judge_shape(region)
        objects.append({
            "color": color, "position": _quadrant(*centroid, size),
            "shape": max(shapes, key=shapes.get) if max(shapes.values()) >= MIN_SHAPE_IOU else "unclear",
            "area": area, "centroid": centroid, "mask": region, "shape_iou": shapes,
        })
    return objects


def match_prompt(caption: str, objects: List[Dict]) -> List[Dict[str, Optional[bool]]]:
    """For each object a caption asks for, was it drawn right? -> list of {attribute: True/False},
    plus "object": the judged object it was matched to (or None).

    One object asked for: the largest object found is judged. Several: each is looked for in
    its stated quadrant (the largest object there).
    """
    wanted = parse_caption(caption)
    results = []
    for k, want in enumerate(wanted):
        if len(wanted) == 1:
            found = objects[0] if objects else None
        else:
            here = [o for o in objects if o["position"] == want.get("position")]
            found = here[0] if here else None
        res: Dict = {"object": found}
        for attr in ("color", "shape", "position"):
            if attr in want:
                res[attr] = found is not None and found[attr] == want[attr]
        res["exact"] = all(res[a] for a in ("color", "shape", "position") if a in want)
        results.append(res)
    return results


# ----------------------------------------------------------------------------- localisation

def _cell_mask(mask: np.ndarray, grid: int) -> torch.Tensor:
    """(S, S) bool pixel mask -> (grid, grid) fraction of each attention cell covered."""
    m = torch.from_numpy(mask.astype(np.float32))[None, None]  # (1, 1, S, S)
    return F.adaptive_avg_pool2d(m, grid)[0, 0]  # (grid, grid)


def localisation_score(token_map: torch.Tensor, mask: np.ndarray) -> float:
    """(share of the map's mass inside the mask) / (share of the area the mask covers).

    token_map: (g, g) attention of one word over the latent grid; mask: (S, S) bool object mask.
    """
    cell = _cell_mask(mask, token_map.shape[-1])  # (g, g)
    mass_inside = float((token_map * cell).sum() / token_map.sum().clamp_min(1e-12))
    area_share = float(cell.mean())
    if area_share <= 0:
        raise ValueError(tr("localisation_score: the object mask is empty."))
    return mass_inside / area_share


def generate_with_attention(model, captions: Sequence[str], steps: int = 25, guidance_scale: float = 5.0,
                            seed: int = 0, sampler: str = "ddpm", levels: Sequence[Optional[Sequence[int]]] = (None,)):
    """Sample captions and record each one's cross-attention (all steps, cond half).

    levels: which blocks to average, one entry per set of maps wanted: None = every block, or
    the grid factors of the recorder's block names (8: the finest grid, 16: half of it, ...).
    Returns images (N, 3, S, S) and token maps (len(levels), N, L, g, g) at the latent grid g.
    """
    from contextlib import ExitStack

    from .record import AttentionRecorder

    recorders = [AttentionRecorder(model.diffusion, kind="cross", cfg=True, sample=i) for i in range(len(captions))]
    with ExitStack() as stack:
        for rec in recorders:
            stack.enter_context(rec)
        images = model.generate(list(captions), steps=steps, guidance_scale=guidance_scale, seed=seed, sampler=sampler)
    g = model.config.latent_size
    # (len(levels), N, L, g, g): coarser grids are upsampled bilinearly to g x g before averaging
    maps = torch.stack([torch.stack([rec.token_maps(size=(g, g), factors=f) for rec in recorders]) for f in levels])
    return images, maps


def evaluate(model, n_seeds: int = 2, n_two: int = 40, steps: int = 25, guidance_scale: float = 5.0,
             seed: int = 0, batch: int = 40, progress=True, attention: bool = True,
             sampler: str = "ddpm", single_prompts: Optional[Sequence[str]] = None) -> Dict:
    """Generate every single-object prompt n_seeds times and n_two two-object prompts, judge them,
    and (attention=True) score the attention of every content word. Returns a JSON-ready dict.
    single_prompts: the one-object prompts to use (default: all 60, `toy.all_single_prompts()`).
    progress: True, False or "live" (see sdcourse.device.progress_bar)."""
    from .toy import Tokenizer

    if n_seeds < 1 or n_two < 0 or batch < 1:
        raise ValueError(tr(f"evaluate: need n_seeds >= 1, n_two >= 0, batch >= 1; got {n_seeds}, {n_two}, {batch}."))
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(tr(f"evaluate: sampler must be 'ddpm' or 'ddim', got {sampler!r}."))
    tok = Tokenizer()
    singles = [p for p in (all_single_prompts() if single_prompts is None else single_prompts) for _ in range(n_seeds)]
    twos = two_object_prompts(n_two, seed=seed + 1)
    jobs = [(p, "single") for p in singles] + [(p, "two") for p in twos]
    counts = defaultdict(lambda: [0, 0])  # key -> [right, total]
    loc = defaultdict(list)  # word kind -> scores
    loc_word = defaultdict(list)
    for start in progress_bar(range(0, len(jobs), batch), progress, desc="evaluate"):
        chunk = jobs[start: start + batch]
        captions = [p for p, _ in chunk]
        if attention:
            images, maps = generate_with_attention(model, captions, steps, guidance_scale, seed + start, sampler,
                                                   levels=[LEVELS[k] for k in LEVELS])
            maps = maps.transpose(0, 1)  # (levels, N, ...) -> (N, levels, ...)
        else:
            images = model.generate(captions, steps=steps, guidance_scale=guidance_scale, seed=seed + start,
                                    sampler=sampler)
            maps = [None] * len(captions)
        for (prompt, kind), image, token_maps in zip(chunk, images, maps):
            objects = judge_image(image)
            results = match_prompt(prompt, objects)
            if kind == "single":  # did it draw one object, as asked, and no extra one (also not merged into it)?
                counts["single.one_object"][0] += int(len(objects) == 1 and objects[0]["shape"] != "unclear")
                counts["single.one_object"][1] += 1
            for res in results:
                for attr in ("color", "shape", "position", "exact"):
                    if attr in res:
                        counts[f"{kind}.{attr}"][0] += int(res[attr])
                        counts[f"{kind}.{attr}"][1] += 1
            if kind == "two":
                counts["two.both_exact"][0] += int(all(r["exact"] for r in results))
                counts["two.both_exact"][1] += 1
            if token_maps is None:
                continue
            # localisation: each content word against the mask of the object it describes
            words = tok.words(prompt)
            phrase = 0
            for i, w in enumerate(words):
                if w == "and":
                    phrase += 1
                kind_w = word_kind(w)
                found = results[phrase]["object"] if phrase < len(results) else None
                if kind_w is None or found is None:
                    continue
                for level, level_maps in zip(LEVELS, token_maps):
                    score = localisation_score(level_maps[i], found["mask"])
                    loc[(level, f"{kind}.{kind_w}")].append(score)
                    loc_word[(level, w)].append(score)
    report = {k: round(r / t, 3) for k, (r, t) in sorted(counts.items())}
    report["n_images"] = {"single": len(singles), "two": len(twos)}
    if attention:
        for level in LEVELS:
            suffix = "" if level == "fine" else f"_{level}"
            report["localisation" + suffix] = {k: round(float(np.mean(v)), 2) for (lv, k), v in sorted(loc.items()) if lv == level}
            report["localisation_per_word" + suffix] = {
                k: round(float(np.mean(v)), 2) for (lv, k), v in sorted(loc_word.items()) if lv == level}
    report["settings"] = {"sampler": sampler, "steps": steps, "guidance_scale": guidance_scale, "seed": seed,
                          "n_seeds": n_seeds}
    return report


def main(argv=None) -> None:
    from .device import set_threads
    from .train import load_checkpoint

    p = argparse.ArgumentParser(description="Judge samples of a tiny SD checkpoint and score its attention.")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--seeds", type=int, default=2, help="samples per single-object prompt (60 prompts)")
    p.add_argument("--two", type=int, default=40, help="two-object prompts")
    p.add_argument("--sampler", default="ddpm", choices=["ddpm", "ddim"])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the report here")
    args = p.parse_args(argv)
    set_threads(args.threads)
    model = load_checkpoint(args.checkpoint)
    start = time.perf_counter()
    report = evaluate(model, n_seeds=args.seeds, n_two=args.two, steps=args.steps,
                      guidance_scale=args.guidance, seed=args.seed, sampler=args.sampler)
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["checkpoint"] = args.checkpoint
    report["training"] = getattr(model, "training_info", {})
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
