"""Record attention weights from the course's own attention modules, aggregated online.

The course's `SelfAttention` and `CrossAttention` call `module.observer(module, weights)` with
the (B, H, Lq, Lk) softmax weights whenever `observer` is set (see `sdcourse.attention`). The
recorder sets those observers on the modules you ask for, reduces every call at once to what
you asked to keep (one batch half, mean over heads, one query pixel, ...) and adds it to a
running sum. Nothing of another library is patched, and memory does not grow with the number
of denoising steps (unless you ask for one map per timestep).

    rec = AttentionRecorder(model, kind="cross", cfg=True)
    with rec:
        for t in timesteps:
            rec.timestep = t                    # optional: otherwise read from the time input
            eps = model(torch.cat([x, x]), torch.cat([uncond, cond]), sinusoidal_embedding(t))
            ...
    maps = rec.maps                             # an AttentionMaps (CPU tensors), see below
    heat = maps.token_maps([1, 2], size=(64, 64), normalize="max")   # (2, 64, 64)

Blocks are named after where they sit in the UNet, with the image-to-grid factor of their level:
    unet.encoders.i  -> "down.i (H/8)"  (i = 1, 2 at H/8; 4, 5 at H/16; 7, 8 at H/32)
    unet.bottleneck  -> "mid (H/64)"
    unet.decoders.i  -> "up.i (H/32)"   (i = 3, 4, 5 at H/32; 6, 7, 8 at H/16; 9, 10, 11 at H/8)
H is the image height: a 512 px image has a 64 x 64 latent (H/8) and an 8 x 8 bottleneck (H/64).

Classifier-free guidance batch order in this course is [uncond, cond] (as in diffusers): the
first half of the batch is the unconditional pass, the second half the prompt. With
`cfg=True` the recorder checks that the batch is even and that both halves got the same latent,
then keeps only the cond half (`half="cond"`, or "uncond" to study the other one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from .attention import CrossAttention, SelfAttention

Timestep = Optional[Union[int, float]]
NORMALIZATIONS = ("none", "max", "minmax", "sum")


@dataclass
class BlockInfo:
    """One recorded attention module.

    name: display name, e.g. "down.1 (H/8)"; key: "down.1"; group: "down" | "mid" | "up" | "other";
    factor: image size / this block's grid size (8, 16, 32, 64), None when unknown;
    path: the module's path in the model; kind: "self" | "cross"; n_heads: its heads;
    grid: (rows, cols) of its token grid, known after the first call.
    """

    name: str
    key: str
    group: str
    factor: Optional[int]
    path: str
    kind: str
    n_heads: int
    grid: Optional[Tuple[int, int]] = None


# --------------------------------------------------------------------------- block names
def _unet_of(model: nn.Module) -> Optional[nn.Module]:
    """The first course UNET inside `model` (the model itself, Diffusion.unet, TinySD.diffusion.unet, ...)."""
    from .unet import UNET  # late import: unet imports attention, not the other way round

    return next((m for m in model.modules() if isinstance(m, UNET)), None)


def _entry_of(model: nn.Module) -> nn.Module:
    """The module whose forward receives (latent, context, time): the first Diffusion, else the first UNET."""
    from .unet import UNET, Diffusion

    for cls in (Diffusion, UNET):
        found = next((m for m in model.modules() if isinstance(m, cls)), None)
        if found is not None:
            return found
    return model


def _levels(unet: nn.Module) -> Dict[int, Tuple[str, str, int]]:
    """id(attention module) -> (key, group, factor), walking the UNet's stages in order.

    The factor starts at 8 (the latent is H/8), doubles after every stride-2 conv of the
    encoders, and halves after every Upsample of the decoders.
    """
    from .unet import Upsample

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


def attention_blocks(model: nn.Module, kind: str = "cross") -> List[Tuple[BlockInfo, nn.Module]]:
    """Every attention module of `kind` ("self" or "cross") in `model`, in forward order, with its BlockInfo."""
    if kind not in ("self", "cross"):
        raise ValueError(f"attention_blocks: kind must be 'self' or 'cross', got {kind!r}.")
    cls = SelfAttention if kind == "self" else CrossAttention
    unet = _unet_of(model)
    levels = _levels(unet) if unet is not None else {}
    found = []
    for path, m in model.named_modules():
        if not isinstance(m, cls):
            continue
        if id(m) in levels:
            key, group, factor = levels[id(m)]
            name = f"{key} (H/{factor})"
        else:  # not inside a UNET (e.g. a lone UNET_AttentionBlock): the path is the name
            key, group, factor = path or kind, "other", None
            name = key
        found.append((BlockInfo(name, key, group, factor, path, kind, m.n_heads), m))
    return found


def _grid(length: int, latent_hw: Optional[Tuple[int, int]], factor: Optional[int]) -> Tuple[int, int]:
    """Token count L -> (rows, cols) of the grid, from the latent's aspect ratio (square if unknown)."""
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
            f"AttentionRecorder: cannot tell the grid of {length} tokens. Pass latent_hw=(height, width) of the latent."
        )
    return side, side


# --------------------------------------------------------------------------- the maps
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
            raise ValueError(f"AttentionMaps.from_weights: kind must be 'self' or 'cross', got {kind!r}.")
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
                    f"AttentionMaps.from_weights: block {name!r} has shape {tuple(w.shape)}; "
                    "give (Lq, Lk), (H, Lq, Lk) or (B, H, Lq, Lk) weights."
                )
            if kind == "self" and w.shape[-1] != w.shape[-2]:
                raise ValueError(f"AttentionMaps.from_weights: self-attention weights must be square, got {tuple(w.shape)}.")
            grid = _grid(w.shape[1], maps.latent_hw, None)
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
            raise ValueError(f"AttentionMaps: no block {block!r}. Recorded blocks: {self.names()}.")
        if time_reduce not in ("mean", "sum"):
            raise ValueError(f"AttentionMaps: time_reduce must be 'mean' or 'sum', got {time_reduce!r}.")
        if timestep is None:
            keys = [k for k in self.sums if k[0] == block]
        else:
            if not self.per_timestep:
                raise ValueError(
                    "AttentionMaps: timesteps were summed while recording; record with "
                    "AttentionRecorder(..., per_timestep=True) to look at one timestep."
                )
            keys = [(block, timestep)] if (block, timestep) in self.sums else []
        if not keys:
            raise ValueError(f"AttentionMaps: nothing recorded for block {block!r} at timestep {timestep!r}.")
        total = sum(self.sums[k] for k in keys)  # (heads_kept, Q, Lk)
        if time_reduce == "mean":
            total = total / sum(self.counts[k] for k in keys)
        if head is None:
            return total.mean(0)  # (heads_kept, Q, Lk) -> (Q, Lk)
        if self.heads != "all":
            raise ValueError("AttentionMaps: heads were averaged while recording; record with heads='all' to pick a head.")
        if not 0 <= head < total.shape[0]:
            raise ValueError(f"AttentionMaps: head {head} out of range; this block has {total.shape[0]} heads (0..{total.shape[0] - 1}).")
        return total[head]  # (Q, Lk)

    def _blocks(self, blocks, groups, factors) -> List[str]:
        if isinstance(blocks, str):
            blocks = [blocks]
        names = list(blocks) if blocks is not None else self.names(groups, factors)
        if not names:
            raise ValueError(
                f"AttentionMaps: no recorded block matches groups={groups} factors={factors}. "
                f"Recorded: {self.names()}."
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
            raise ValueError("AttentionMaps.token_maps: these are self-attention maps; use query_map.")
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
                    raise ValueError(f"AttentionMaps.token_maps: token index {bad} out of range for {w.shape[1]} context tokens.")
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
            raise ValueError("AttentionMaps.query_map: these are cross-attention maps; use token_maps.")
        w = self.get(block, timestep, head, time_reduce)  # (Q, Lk)
        rows, cols = self.blocks[block].grid
        if w.shape[0] == 1 and self.query is not None:
            if query is not None and tuple(query) != tuple(self.query):
                raise ValueError(
                    f"AttentionMaps.query_map: only query {self.query} was recorded; record with query=None "
                    "to keep every query pixel (small latents only)."
                )
            row = w[0]  # (Lk,)
        else:
            if query is None:
                raise ValueError("AttentionMaps.query_map: every query row was recorded; pass query=(row, col).")
            r, c = self.to_grid(block, query)
            row = w[r * cols + c]  # (Lk,)
        # (Lk,) -> (rows, cols)
        return normalize_maps(row.reshape(1, rows, cols), normalize)[0]

    def to_grid(self, block: str, query: Tuple[int, int]) -> Tuple[int, int]:
        """A latent pixel (row, col) -> the cell of `block`'s grid that holds it."""
        rows, cols = self.blocks[block].grid
        h, w = self.latent_hw or (rows, cols)
        r, c = int(query[0]), int(query[1])
        if not (0 <= r < h and 0 <= c < w):
            raise ValueError(f"AttentionMaps: query {query} is outside the latent grid {h} x {w}.")
        return r * rows // h, c * cols // w


def normalize_maps(maps: torch.Tensor, normalize: str = "none") -> torch.Tensor:
    """(T, rows, cols) -> (T, rows, cols), each map normalised on its own.

    "none": unchanged; "max": divided by its max; "minmax": scaled to [0, 1]; "sum": sums to 1.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
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


# --------------------------------------------------------------------------- the recorder
def decode_timestep(time: torch.Tensor) -> Optional[float]:
    """Read t back from a sinusoidal embedding (N, dim) = [cos(t f_i) | sin(t f_i)], or None.

    The slowest frequency f = 10000^(-(half-1)/half) turns less than half a circle for any
    t < pi / f (~29,000 for dim 320), so t = atan2(sin, cos) / f there. Uses the first row.
    """
    if time.ndim != 2 or time.shape[-1] % 2 or time.shape[-1] < 4 or time.device.type == "meta":
        return None
    half = time.shape[-1] // 2
    c, s = time[0, half - 1].double().item(), time[0, -1].double().item()
    if abs(c * c + s * s - 1.0) > 1e-3:
        return None  # not a unit-circle pair: not our sinusoidal embedding
    t = math.atan2(s, c) / (10000.0 ** (-(half - 1) / half))
    return round(t) if abs(t - round(t)) < 0.05 else round(t, 2)


class AttentionRecorder:
    """Context manager recording the attention weights of a course model.

    model: a `Diffusion`, a `UNET`, or any module holding them (e.g. the tiny trained model of 07);
        the latent's size and the timestep are read where the first Diffusion (else UNET) is called.
    kind: "cross" (image tokens -> context tokens) or "self" (image tokens -> image tokens).
    blocks: None (all) or names/keys/groups to keep, e.g. ["down.1", "mid", "up"].
    factors: None or the resolutions to keep as image/grid factors, e.g. [16, 32] (H/16, H/32).
    heads: "mean" (average heads at once, cheapest) or "all".
    query: self-attention only: the latent pixel (row, col) whose row to keep in every block
        (mapped to each block's grid). None keeps all rows, allowed only while a block's stored
        map has at most `max_elements` numbers (fine for 8x8 or 16x16 latents, not for 64x64).
    cfg: True when the batch is [uncond, cond] (classifier-free guidance, this course's order):
        the batch must be even and both halves must get the same latent; `half` is kept.
    half: "cond" (second half, default) or "uncond" (first half); only with cfg=True.
    sample: None averages the kept batch, an int keeps one sample of it.
    per_timestep: False sums all calls into one map per block (memory bounded); True keeps one
        sum per (block, timestep): memory grows with the timesteps, so restrict `timesteps`.
    timesteps: None records every call; else only calls whose timestep is in this set.
    latent_hw: the latent's (height, width) if the model is not a Diffusion/UNET.
    uncond_context: optional (1|B/2, L, d) context of the empty prompt; with cfg=True the first
        half of every context must equal it (checks the [uncond, cond] order for real).
    tokens: optional labels of the context tokens (kept with the maps, for plots).

    The timestep of a call is `rec.timestep` when you set it (e.g. in the sampling loop), else it
    is read from the model's time input (see `decode_timestep`), else it counts the forward calls.
    Recorders nest (each keeps calling the observer it found). On exit (also after an exception)
    every observer is put back as it was.
    """

    def __init__(self, model: nn.Module, kind: str = "cross", blocks=None, factors=None, heads: str = "mean",
                 query: Optional[Tuple[int, int]] = None, cfg: bool = False, half: str = "cond",
                 sample: Optional[int] = None, per_timestep: bool = False, timesteps=None,
                 latent_hw: Optional[Tuple[int, int]] = None, max_elements: int = 2 ** 22,
                 uncond_context: Optional[torch.Tensor] = None, tokens: Optional[Sequence[str]] = None):
        if not isinstance(model, nn.Module):
            raise ValueError(f"AttentionRecorder: model must be a torch nn.Module (e.g. sdcourse.Diffusion), got {type(model).__name__}.")
        if kind not in ("self", "cross"):
            raise ValueError(f"AttentionRecorder: kind must be 'cross' or 'self', got {kind!r}.")
        if heads not in ("mean", "all"):
            raise ValueError(f"AttentionRecorder: heads must be 'mean' or 'all', got {heads!r}.")
        if half not in ("cond", "uncond"):
            raise ValueError(f"AttentionRecorder: half must be 'cond' or 'uncond', got {half!r}.")
        if query is not None and kind != "self":
            raise ValueError("AttentionRecorder: query=(row, col) is for kind='self'; cross-attention keeps every pixel.")
        self.model, self.kind, self.heads, self.query = model, kind, heads, (tuple(query) if query is not None else None)
        self.cfg, self.half, self.sample = cfg, half, sample
        self.max_elements, self.uncond_context = max_elements, uncond_context
        self.timesteps_filter = set(timesteps) if timesteps is not None else None
        self.timestep: Timestep = None  # set it from the sampling loop; else read from the time input
        self._decoded: Timestep = None
        self._calls = 0
        self._handles: list = []
        self._saved: list = []
        self._active = False

        found = attention_blocks(model, kind)
        if not found:
            raise ValueError(f"AttentionRecorder: {type(model).__name__} holds no course {kind}-attention module.")
        chosen = [(info, m) for info, m in found if self._wanted(info, blocks, factors)]
        if not chosen:
            raise ValueError(
                f"AttentionRecorder: blocks={blocks} factors={factors} match none of {[i.name for i, _ in found]}."
            )
        self._modules = chosen
        self.maps = AttentionMaps(kind=kind, heads=heads, query=self.query,
                                  latent_hw=tuple(latent_hw) if latent_hw else None,
                                  blocks={info.name: info for info, _ in chosen}, per_timestep=per_timestep,
                                  tokens=list(tokens) if tokens is not None else None)

    @staticmethod
    def _wanted(info: BlockInfo, blocks, factors) -> bool:
        if factors is not None and info.factor not in set(factors):
            return False
        if blocks is None:
            return True
        blocks = [blocks] if isinstance(blocks, str) else list(blocks)
        return any(b in (info.name, info.key, info.group, info.path) for b in blocks)

    # ---- context manager
    def __enter__(self) -> "AttentionRecorder":
        if self._active:
            raise ValueError("AttentionRecorder: this recorder is already recording; nest different recorders instead.")
        self._saved = [(m, m.observer) for _, m in self._modules]
        for (info, m), (_, old) in zip(self._modules, self._saved):
            m.observer = self._observer(info, old)  # an observer already there keeps being called
        self._handles.append(_entry_of(self.model).register_forward_pre_hook(self._pre_hook, with_kwargs=True))
        self._active = True
        return self

    def __exit__(self, *exc) -> bool:
        for m, old in self._saved:
            m.observer = old
        for h in self._handles:
            h.remove()
        self._handles, self._saved, self._active = [], [], False
        for k, v in self.maps.sums.items():  # hand the results back on the CPU
            self.maps.sums[k] = v.cpu()
        return False  # never swallow the exception

    def reset(self) -> None:
        """Forget what was recorded (keeps the settings)."""
        self.maps.sums.clear()
        self.maps.counts.clear()
        self.maps.timesteps.clear()
        self._calls = 0

    def __repr__(self) -> str:
        cfg = f", cfg=[uncond, cond] keeps {self.half}" if self.cfg else ""
        return (f"AttentionRecorder({self.kind}, {len(self._modules)} block(s), heads={self.heads}{cfg}; "
                f"recorded: {self.maps!r})")

    # ---- conveniences
    def token_maps(self, *args, **kwargs) -> torch.Tensor:
        """Same as `rec.maps.token_maps(...)`."""
        return self.maps.token_maps(*args, **kwargs)

    def query_map(self, *args, **kwargs) -> torch.Tensor:
        """Same as `rec.maps.query_map(...)`."""
        return self.maps.query_map(*args, **kwargs)

    @property
    def names(self) -> List[str]:
        return list(self.maps.blocks)

    # ---- hooks
    def _pre_hook(self, module, args, kwargs):
        """Before each model forward: the latent's size, the CFG checks, the timestep."""
        inputs = list(args) + [kwargs[k] for k in ("latent", "x", "context", "time") if k in kwargs]
        latent = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        self._calls += 1
        if latent is not None and latent.ndim == 4:
            self.maps.latent_hw = tuple(latent.shape[-2:])
            if self.cfg:
                self._check_cfg(latent, inputs[1] if len(inputs) > 1 else None)
        time = inputs[2] if len(inputs) > 2 and isinstance(inputs[2], torch.Tensor) else None
        self._decoded = decode_timestep(time) if time is not None else None
        t = self.current_timestep()
        if not self.maps.timesteps or self.maps.timesteps[-1] != t:
            self.maps.timesteps.append(t)
        return None

    def _check_cfg(self, latent: torch.Tensor, context: Optional[torch.Tensor]) -> None:
        b = latent.shape[0]
        if b % 2:
            raise ValueError(
                f"AttentionRecorder(cfg=True): batch {b} is odd, but classifier-free guidance runs [uncond, cond] "
                "halves. Pass torch.cat([x, x]) and torch.cat([uncond_context, cond_context]), or use cfg=False."
            )
        if latent.device.type != "meta" and not torch.equal(latent[: b // 2], latent[b // 2:]):
            raise ValueError(
                "AttentionRecorder(cfg=True): the two halves of the batch hold different latents. With classifier-free "
                "guidance both passes see the same latent: torch.cat([x, x]) with contexts [uncond, cond]."
            )
        if self.uncond_context is not None and context is not None and context.shape[0] == b:
            u = self.uncond_context.to(context.device, context.dtype)
            if not torch.allclose(context[: b // 2], u.expand_as(context[: b // 2])):
                raise ValueError(
                    "AttentionRecorder(cfg=True): the first half of the context is not the unconditional (empty prompt) "
                    "context. This course's order is [uncond, cond]: torch.cat([uncond_context, cond_context])."
                )

    def current_timestep(self) -> Timestep:
        """The tag of the current call: rec.timestep if set, else decoded from the time input, else the call count."""
        if self.timestep is not None:
            return self.timestep
        if self._decoded is not None:
            return self._decoded
        return self._calls

    def _observer(self, info: BlockInfo, previous=None):
        def observe(module: nn.Module, weights: torch.Tensor) -> None:
            self._add(info, weights)
            if previous is not None:
                previous(module, weights)
        return observe

    @torch.no_grad()
    def _add(self, info: BlockInfo, weights: torch.Tensor) -> None:
        """Reduce one call's (B, H, Lq, Lk) weights to what was asked and add it to the running sum."""
        t = self.current_timestep()
        if self.timesteps_filter is not None and t not in self.timesteps_filter:
            return
        w = weights.detach()
        b, n_heads, lq, lk = w.shape
        if self.cfg:
            if b % 2:
                raise ValueError(
                    f"AttentionRecorder(cfg=True): attention batch {b} is odd; classifier-free guidance needs "
                    "[uncond, cond] halves (torch.cat([x, x])). Use cfg=False for a plain batch."
                )
            # (B, H, Lq, Lk) -> (B/2, H, Lq, Lk): second half = cond, first half = uncond
            w = w[b // 2:] if self.half == "cond" else w[: b // 2]
        if info.grid is None:
            info.grid = _grid(lq, self.maps.latent_hw, info.factor)
        if self.query is not None:
            r, c = self._query_cell(info)
            # (B, H, Lq, Lk) -> (B, H, 1, Lk): only the chosen query pixel's row
            w = w[:, :, r * info.grid[1] + c: r * info.grid[1] + c + 1]
        if self.sample is not None:
            if not -w.shape[0] <= self.sample < w.shape[0]:
                raise ValueError(f"AttentionRecorder: sample={self.sample} out of range for a kept batch of {w.shape[0]}.")
            w = w[self.sample]  # (B, H, Q, Lk) -> (H, Q, Lk)
        else:
            w = w.float().mean(0)  # (B, H, Q, Lk) -> (H, Q, Lk)
        if self.heads == "mean":
            w = w.float().mean(0, keepdim=True)  # (H, Q, Lk) -> (1, Q, Lk)
        if w.numel() > self.max_elements:
            raise ValueError(
                f"AttentionRecorder: block {info.name} would store {tuple(w.shape)} = {w.numel():,} numbers "
                f"(limit max_elements={self.max_elements:,}). For self-attention pass query=(row, col); "
                "or heads='mean', or fewer blocks/factors, or raise max_elements."
            )
        key = (info.name, t if self.maps.per_timestep else None)
        if key in self.maps.sums:
            self.maps.sums[key].add_(w.float())
            self.maps.counts[key] += 1
        else:
            self.maps.sums[key] = w.float().clone()
            self.maps.counts[key] = 1

    def _query_cell(self, info: BlockInfo) -> Tuple[int, int]:
        h, w = self.maps.latent_hw or info.grid
        r, c = self.query
        if not (0 <= r < h and 0 <= c < w):
            raise ValueError(f"AttentionRecorder: query {self.query} is outside the latent grid {h} x {w}.")
        return r * info.grid[0] // h, c * info.grid[1] // w
