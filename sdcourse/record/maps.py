"""Recorded attention and the arithmetic on it: one map per block, averaged, picked, resized.

An `AttentionMaps` holds, per attention block, the running sum of the attention weights kept
while recording (see `sdcourse.record.recorder`) and how many calls went into it. Reading a map
divides by that count (or not: time_reduce="sum"), picks a head or averages them, turns a
block's token axis back into its grid (`sdcourse.blocks`) and resizes the grids of different
blocks to one size before averaging them:

    maps.get("up.9 (H/8)")                       # (Lq, Lk): mean over calls and heads
    maps.token_maps([1, 2], size=(64, 64))       # (2, 64, 64): cross-attention per token
    maps.query_map("mid (H/64)", query=(3, 5))   # (rows, cols): where one pixel looks
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch.nn import functional as F

from ..blocks import BlockInfo, block_grid, latent_to_grid, resolution_label, sequence_index
from .timestep import Timestep
from ..i18n import tr

NORMALIZATIONS = ("none", "max", "minmax", "sum")


@dataclass
class AttentionMaps:
    """Recorded attention, reduced and summed online. All tensors are float32 on the CPU
    (or on the recording device while a recorder is still adding to them).

    kind: "cross" or "self". heads: "mean" (stored head axis has size 1) or "all".
    query: for self-attention, the latent pixel (row, col) whose row of weights was kept, or None
        when all query rows were kept.
    latent_hw: the latent's (height, width) the model saw.
    blocks: name -> BlockInfo, in forward order.
    sums[(name, t)]: (heads_kept, Q, Lk) sum of the kept weights; t is None for "all timesteps
        summed" (the default) or the timestep when recorded per timestep.
    counts[(name, t)]: how many calls went into that sum.
    timesteps: the timesteps seen, in order (tags only, no tensors).
    tokens: optional labels of the context tokens (for plots).
    """

    kind: str
    heads: str = "mean"
    query: Optional[Tuple[int, int]] = None
    latent_hw: Optional[Tuple[int, int]] = None
    blocks: Dict[str, BlockInfo] = field(default_factory=dict)
    sums: Dict[Tuple[str, Timestep], torch.Tensor] = field(default_factory=dict)
    counts: Dict[Tuple[str, Timestep], int] = field(default_factory=dict)
    timesteps: List[Timestep] = field(default_factory=list)
    per_timestep: bool = False
    tokens: Optional[List[str]] = None
    latent_factor: int = 8  # image pixels per latent pixel of the recorded model (for labels only)

    def resolution_label(self, factor: int) -> str:
        """'H/8', ... for a level's factor, in the recorded model's own image pixels."""
        return resolution_label(factor, self.latent_factor)

    def __repr__(self) -> str:
        steps = f"{len(self.timesteps)} timestep(s)" + (", kept apart" if self.per_timestep else ", summed")
        query = f", query {self.query}" if self.query is not None else ""
        return (f"AttentionMaps({self.kind}, {len(self.names())} block(s), heads={self.heads}{query}, {steps}, "
                f"{self.n_tensors()} tensor(s), {self.nbytes() / 2 ** 20:.2f} MiB)")

    # ---- building from plain tensors (notebooks that computed weights themselves)
    @classmethod
    def from_weights(cls, weights, kind: str = "cross", latent_hw=None, tokens=None) -> "AttentionMaps":
        """Wrap attention weights you computed yourself.

        weights: a tensor (Lq, Lk), (H, Lq, Lk) or (B, H, Lq, Lk) (batch is averaged), or a dict
        block name -> such a tensor. All heads are kept (heads="all").
        """
        if kind not in ("self", "cross"):
            raise ValueError(tr(f"AttentionMaps.from_weights: kind must be 'self' or 'cross', got {kind!r}."))
        items = weights.items() if isinstance(weights, dict) else [("attention", weights)]
        maps = cls(kind=kind, heads="all", latent_hw=tuple(latent_hw) if latent_hw else None,
                   tokens=list(tokens) if tokens is not None else None)
        for name, w in items:
            w = torch.as_tensor(w).detach().float().cpu()
            if w.ndim == 2:
                w = w[None]  # (Lq, Lk) -> (1, Lq, Lk)
            elif w.ndim == 4:
                w = w.mean(0)  # (B, H, Lq, Lk) -> (H, Lq, Lk)
            if w.ndim != 3:
                raise ValueError(
                    tr(f"AttentionMaps.from_weights: block {name!r} has shape {tuple(w.shape)}; "
                       "give (Lq, Lk), (H, Lq, Lk) or (B, H, Lq, Lk) weights.")
                )
            if kind == "self" and w.shape[-1] != w.shape[-2]:
                raise ValueError(tr(f"AttentionMaps.from_weights: self-attention weights must be square, got {tuple(w.shape)}."))
            grid = block_grid(w.shape[1], maps.latent_hw, None)
            if maps.latent_hw is None:
                maps.latent_hw = grid
            maps.blocks[name] = BlockInfo(name, name, "other", None, name, kind, w.shape[0], grid)
            maps.sums[(name, None)] = w
            maps.counts[(name, None)] = 1
        return maps

    # ---- what is there
    def names(self, groups: Optional[Iterable[str]] = None, factors: Optional[Iterable[int]] = None) -> List[str]:
        """Recorded block names (in forward order), optionally only some groups / factors."""
        seen = {name for name, _ in self.sums}
        out = []
        for name, info in self.blocks.items():
            if name not in seen:
                continue
            if groups is not None and info.group not in set(groups):
                continue
            if factors is not None and info.factor not in set(factors):
                continue
            out.append(name)
        return out

    def factors(self) -> List[int]:
        """The resolutions recorded, as image/grid factors (8, 16, 32, 64)."""
        return sorted({self.blocks[n].factor for n in self.names() if self.blocks[n].factor is not None})

    @property
    def n_heads(self) -> int:
        return max((b.n_heads for b in self.blocks.values()), default=1)

    def n_tensors(self) -> int:
        return len(self.sums)

    def nbytes(self) -> int:
        """Bytes held by the stored sums."""
        return sum(t.numel() * t.element_size() for t in self.sums.values())

    def to(self, device) -> "AttentionMaps":
        """A copy with the tensors on `device` (the sums are shared when already there)."""
        return replace(self, sums={k: v.to(device) for k, v in self.sums.items()},
                       blocks={k: replace(v) for k, v in self.blocks.items()},
                       counts=dict(self.counts), timesteps=list(self.timesteps))

    # ---- reading one block
    def get(self, block: str, timestep: Timestep = None, head: Optional[int] = None,
            time_reduce: str = "mean") -> torch.Tensor:
        """The kept weights of one block -> (Q, Lk): Q = Lq, or 1 when one query row was kept.

        timestep: None = all recorded timesteps together; else the timestep (needs per_timestep=True).
        head: None = mean over heads; an int picks a head (needs heads="all").
        time_reduce: "mean" (average over the calls, rows still sum to 1) or "sum" (total over calls).
        """
        if block not in self.blocks:
            raise ValueError(tr(f"AttentionMaps: no block {block!r}. Recorded blocks: {self.names()}."))
        if time_reduce not in ("mean", "sum"):
            raise ValueError(tr(f"AttentionMaps: time_reduce must be 'mean' or 'sum', got {time_reduce!r}."))
        if timestep is None:
            keys = [k for k in self.sums if k[0] == block]
        else:
            if not self.per_timestep:
                raise ValueError(
                    tr("AttentionMaps: timesteps were summed while recording; record with "
                       "AttentionRecorder(..., per_timestep=True) to look at one timestep.")
                )
            keys = [(block, timestep)] if (block, timestep) in self.sums else []
        if not keys:
            raise ValueError(tr(f"AttentionMaps: nothing recorded for block {block!r} at timestep {timestep!r}."))
        total = sum(self.sums[k] for k in keys)  # (heads_kept, Q, Lk)
        if time_reduce == "mean":
            total = total / sum(self.counts[k] for k in keys)
        if head is None:
            return total.mean(0)  # (heads_kept, Q, Lk) -> (Q, Lk)
        if self.heads != "all":
            raise ValueError(tr("AttentionMaps: heads were averaged while recording; record with heads='all' to pick a head."))
        if not 0 <= head < total.shape[0]:
            raise ValueError(tr(f"AttentionMaps: head {head} out of range; this block has {total.shape[0]} heads (0..{total.shape[0] - 1})."))
        return total[head]  # (Q, Lk)

    def _blocks(self, blocks, groups, factors) -> List[str]:
        if isinstance(blocks, str):
            blocks = [blocks]
        names = list(blocks) if blocks is not None else self.names(groups, factors)
        if not names:
            raise ValueError(
                tr(f"AttentionMaps: no recorded block matches groups={groups} factors={factors}. "
                   f"Recorded: {self.names()}.")
            )
        return names

    # ---- cross-attention: one heat map per token
    def token_maps(self, tokens: Optional[Sequence[int]] = None, blocks=None, groups=None, factors=None,
                   timestep: Timestep = None, head: Optional[int] = None, time_reduce: str = "mean",
                   size: Optional[Tuple[int, int]] = None, normalize: str = "none") -> torch.Tensor:
        """Cross-attention per context token as images -> (T, rows, cols).

        tokens: token indices (None = all Lk). blocks: names (or one name) to average; else all
        recorded blocks, optionally only `groups` ("down", "mid", "up") and `factors` (8, 16, 32, 64).
        Each block's (Lq, T) map becomes (T, grid rows, grid cols), is upsampled bilinearly to `size`
        (default: the finest grid among them) and the blocks are averaged.
        normalize: "none" | "max" (each map / its max) | "minmax" (to [0, 1]) | "sum" (each map sums to 1).
        """
        if self.kind != "cross":
            raise ValueError(tr("AttentionMaps.token_maps: these are self-attention maps; use query_map."))
        names = self._blocks(blocks, groups, factors)
        if size is None:
            size = max((self.blocks[n].grid for n in names), key=lambda g: g[0] * g[1])
        out = None
        for name in names:
            w = self.get(name, timestep, head, time_reduce)  # (Lq, Lk)
            if tokens is not None:
                idx = list(tokens)
                bad = [i for i in idx if not -w.shape[1] <= i < w.shape[1]]
                if bad:
                    raise ValueError(tr(f"AttentionMaps.token_maps: token index {bad} out of range for {w.shape[1]} context tokens."))
                w = w[:, idx]  # (Lq, Lk) -> (Lq, T)
            rows, cols = self.blocks[name].grid
            # (Lq, T) -> (T, Lq) -> (1, T, rows, cols)
            img = w.t().reshape(1, w.shape[1], rows, cols)
            if (rows, cols) != tuple(size):
                # (1, T, rows, cols) -> (1, T, size_h, size_w)
                img = F.interpolate(img, size=tuple(size), mode="bilinear", align_corners=False)
            out = img[0] if out is None else out + img[0]  # (1, T, h, w) -> (T, h, w), summed over blocks
        return normalize_maps(out / len(names), normalize)

    # ---- self-attention: where one pixel looks
    def query_map(self, block: str, query: Optional[Tuple[int, int]] = None, timestep: Timestep = None,
                  head: Optional[int] = None, time_reduce: str = "mean", normalize: str = "none") -> torch.Tensor:
        """Self-attention of one query pixel over the block's grid -> (rows, cols).

        query: (row, col) in latent pixels; mapped to the block's grid. Needed when all query rows
        were recorded; must be None (or the recorded one) when one query was recorded.
        """
        if self.kind != "self":
            raise ValueError(tr("AttentionMaps.query_map: these are cross-attention maps; use token_maps."))
        w = self.get(block, timestep, head, time_reduce)  # (Q, Lk)
        rows, cols = self.blocks[block].grid
        if w.shape[0] == 1 and self.query is not None:
            if query is not None and tuple(query) != tuple(self.query):
                raise ValueError(
                    tr(f"AttentionMaps.query_map: only query {self.query} was recorded; record with query=None "
                       "to keep every query pixel (small latents only).")
                )
            row = w[0]  # (Lk,)
        else:
            if query is None:
                raise ValueError(tr("AttentionMaps.query_map: every query row was recorded; pass query=(row, col)."))
            r, c = self.to_grid(block, query)
            row = w[sequence_index(r, c, cols)]  # (Q, Lk) -> (Lk,)
        # (Lk,) -> (rows, cols)
        return normalize_maps(row.reshape(1, rows, cols), normalize)[0]

    def to_grid(self, block: str, query: Tuple[int, int]) -> Tuple[int, int]:
        """A latent pixel (row, col) -> the cell of `block`'s grid that holds it."""
        grid = self.blocks[block].grid
        return latent_to_grid(query, self.latent_hw or grid, grid)


def normalize_maps(maps: torch.Tensor, normalize: str = "none") -> torch.Tensor:
    """(T, rows, cols) -> (T, rows, cols), each map normalised on its own.

    "none": unchanged; "max": divided by its max; "minmax": scaled to [0, 1]; "sum": sums to 1.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(tr(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}."))
    if normalize == "none":
        return maps
    flat = maps.flatten(1)  # (T, rows, cols) -> (T, rows*cols)
    tiny = torch.finfo(flat.dtype).tiny
    if normalize == "max":
        flat = flat / flat.amax(1, keepdim=True).clamp_min(tiny)
    elif normalize == "minmax":
        low = flat.amin(1, keepdim=True)
        flat = (flat - low) / (flat.amax(1, keepdim=True) - low).clamp_min(tiny)
    else:
        flat = flat / flat.sum(1, keepdim=True).clamp_min(tiny)
    return flat.view_as(maps)
