"""Where the UNet's attention blocks sit, and how their image tokens lay out on a grid.

Two facts about the structure of `sdcourse.UNET`, used by the attention recorder, the shape
ledger and the widgets:

1. Names. Blocks are named after where they sit in the UNet, with the image-to-grid factor of
   their level:
       unet.encoders.i  -> "down.i (H/8)"  (i = 1, 2 at H/8; 4, 5 at H/16; 7, 8 at H/32)
       unet.bottleneck  -> "mid (H/64)"
       unet.decoders.i  -> "up.i (H/32)"   (i = 3, 4, 5 at H/32; 6, 7, 8 at H/16; 9, 10, 11 at H/8)
   H is the image height: a 512 px image has a 64 x 64 latent (H/8) and an 8 x 8 bottleneck (H/64).
   The factors assume SD's VAE (8 image pixels per latent pixel); a model that says otherwise
   (`Diffusion.latent_factor`, 3 for the capstone) gets its own labels: "down.1 (H/3)".

2. Tokens <-> grid. `UNET_AttentionBlock` turns a (B, C, rows, cols) feature map into the
   sequence (B, rows*cols, C) with `view(B, C, rows*cols).transpose(1, 2)`: pixel (r, c) becomes
   token r*cols + c, row after row. `sequence_index` and `sequence_pixel` convert between the two;
   `block_grid` finds (rows, cols) from a token count; `latent_to_grid` maps a latent pixel to
   the cell of a coarser grid that holds it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from torch import nn

from .attention import CrossAttention, SelfAttention
from .unet import UNET, Diffusion, Upsample
from .i18n import tr


@dataclass
class BlockInfo:
    """One attention module of the UNet.

    name: display name, e.g. "down.1 (H/8)"; key: "down.1"; group: "down" | "mid" | "up" | "other";
    factor: image size / this block's grid size (8, 16, 32, 64), None when unknown;
    path: the module's path in the model; kind: "self" | "cross"; n_heads: its heads;
    grid: (rows, cols) of its token grid, known once a forward has been seen.
    """

    name: str
    key: str
    group: str
    factor: Optional[int]
    path: str
    kind: str
    n_heads: int
    grid: Optional[Tuple[int, int]] = None


# --------------------------------------------------------------------------- names
def find_unet(model: nn.Module) -> Optional[UNET]:
    """The first course UNET inside `model` (the model itself, Diffusion.unet, TinySD.diffusion.unet, ...)."""
    return next((m for m in model.modules() if isinstance(m, UNET)), None)


def find_entry(model: nn.Module) -> nn.Module:
    """The module whose forward receives (latent, context, time): the first Diffusion, else the first UNET."""
    for cls in (Diffusion, UNET):
        found = next((m for m in model.modules() if isinstance(m, cls)), None)
        if found is not None:
            return found
    return model


def _levels(unet: UNET) -> Dict[int, Tuple[str, str, int]]:
    """id(attention module) -> (key, group, factor), walking the UNet's stages in order.

    The factor starts at 8 (the latent is H/8), doubles after every stride-2 conv of the
    encoders, and halves after every Upsample of the decoders.
    """
    out: Dict[int, Tuple[str, str, int]] = {}
    factor = 8
    for i, stage in enumerate(unet.encoders):
        for m in stage.modules():
            if isinstance(m, (SelfAttention, CrossAttention)):
                out[id(m)] = (f"down.{i}", "down", factor)
        if any(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in stage.modules()):
            factor *= 2
    for m in unet.bottleneck.modules():
        if isinstance(m, (SelfAttention, CrossAttention)):
            out[id(m)] = ("mid", "mid", factor)
    for i, stage in enumerate(unet.decoders):
        for m in stage.modules():
            if isinstance(m, (SelfAttention, CrossAttention)):
                out[id(m)] = (f"up.{i}", "up", factor)
        if any(isinstance(m, Upsample) for m in stage.modules()):
            factor //= 2
    return out


def resolution_label(factor: int, latent_factor: int = 8) -> str:
    """A level's factor (8 = the latent's own grid, 16, 32, 64) -> 'H/8', ... for a model whose
    latent is 1/latent_factor of the image (SD: 8, so the label is the factor itself)."""
    return f"H/{factor * latent_factor // 8}"


def attention_blocks(model: nn.Module, kind: str = "cross") -> List[Tuple[BlockInfo, nn.Module]]:
    """Every attention module of `kind` ("self" or "cross") in `model`, in forward order, with its BlockInfo."""
    if kind not in ("self", "cross"):
        raise ValueError(tr(f"attention_blocks: kind must be 'self' or 'cross', got {kind!r}."))
    cls = SelfAttention if kind == "self" else CrossAttention
    unet = find_unet(model)
    levels = _levels(unet) if unet is not None else {}
    latent_factor = getattr(find_entry(model), "latent_factor", 8)
    found = []
    for path, m in model.named_modules():
        if not isinstance(m, cls):
            continue
        if id(m) in levels:
            key, group, factor = levels[id(m)]
            name = f"{key} ({resolution_label(factor, latent_factor)})"
        else:  # not inside a UNET (e.g. a lone UNET_AttentionBlock): the path is the name
            key, group, factor = path or kind, "other", None
            name = key
        found.append((BlockInfo(name, key, group, factor, path, kind, m.n_heads), m))
    return found


# --------------------------------------------------------------------------- tokens <-> grid
def sequence_index(row: int, col: int, width: int) -> int:
    """Pixel (row, col) of a map `width` pixels wide -> its token index after (B,C,H,W)->(B,H*W,C): row*width+col."""
    if not 0 <= col < width or row < 0:
        raise ValueError(tr(f"sequence_index: pixel ({row}, {col}) is outside a map {width} pixels wide."))
    return row * width + col


def sequence_pixel(index: int, width: int) -> Tuple[int, int]:
    """Token index -> pixel (row, col): (index // width, index % width)."""
    if index < 0:
        raise ValueError(tr(f"sequence_pixel: token index must be >= 0, got {index}."))
    return index // width, index % width


def block_grid(length: int, latent_hw: Optional[Tuple[int, int]] = None,
               factor: Optional[int] = None) -> Tuple[int, int]:
    """Token count L -> (rows, cols) of the block's grid.

    latent_hw: the latent's (height, width); factor: the block's image/grid factor (8 = the
    latent's own grid, 16 = half of it, ...). Each stride-2 conv maps a side n to ceil(n / 2),
    so the grid at factor f is ceil(h / (f/8)) x ceil(w / (f/8)). Without the factor the grid
    keeps the latent's aspect ratio; without the latent it must be square.
    """
    if latent_hw is not None:
        h, w = latent_hw
        if factor is not None:
            s = factor // 8
            rows, cols = -(-h // s), -(-w // s)  # ceil: a stride-2 conv rounds up
            if rows * cols == length:
                return rows, cols
        s = math.sqrt(h * w / length)
        rows, cols = round(h / s), round(w / s)
        if rows * cols == length:
            return rows, cols
    side = math.isqrt(length)
    if side * side != length:
        raise ValueError(
            tr(f"cannot tell the grid of {length} tokens: it is not square. Pass latent_hw=(height, width) of the latent.")
        )
    return side, side


def latent_to_grid(pixel: Tuple[int, int], latent_hw: Tuple[int, int], grid: Tuple[int, int]) -> Tuple[int, int]:
    """A latent pixel (row, col) -> the cell of a (rows, cols) grid that holds it (r*rows//h, c*cols//w)."""
    h, w = latent_hw
    r, c = int(pixel[0]), int(pixel[1])
    if not (0 <= r < h and 0 <= c < w):
        raise ValueError(tr(f"query {tuple(pixel)} is outside the latent grid {h} x {w}; rows 0..{h - 1}, cols 0..{w - 1}."))
    return r * grid[0] // h, c * grid[1] // w
