"""Shape tracing on the `meta` device: every step's layers and shapes, the skip stack and the
attention sizes of the UNet at any image size, without memory and in well under a second.

A tensor on the `meta` device has a shape and a dtype but no data, so a forward pass of the full
SD v1 model costs nothing. Forward hooks on the course's own modules write down what flows by:

    ledger = trace(height=512, width=512)        # SD v1 by default; trace(UNetConfig.tiny(), 64, 64)
    ledger.rows[1]         # LedgerRow(stage='encoders.0', layers=(Layer('conv', 'Conv 4→320'),), ...)
    ledger.attention[0]    # AttentionRow(name='down.1 (H/8)', kind='self', seq_len=4096, ...)
    print(ledger.text())   # a readable table

This is the course's one tracer: the shape ledger widget (`sdcourse.render.ledger_html`) and the
UNet diagram (`sdcourse.figures.unet_diagram`) both draw what it returns. It knows nothing about
drawing.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from typing import List, Optional, Tuple

import torch
from torch import nn

from .attention import CrossAttention
from .blocks import attention_blocks, block_grid
from .time_embedding import sinusoidal_embedding
from .unet import Diffusion, UNET_AttentionBlock, UNET_ResidualBlock, UNetConfig, Upsample
from .i18n import tr

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class Layer:
    """One layer of a stage, read from the module: kind "res", "attn", "down", "up", "conv" or
    "other", and a short label such as "Res 320→640" or "Attn 8×40" (heads × width of a head)."""

    kind: str
    label: str


@dataclass
class LedgerRow:
    """One stage of the forward pass.

    stage: module path ("encoders.3", "bottleneck", "decoders.0", "final", ...); layers: what is in it;
    input/output: shapes (a decoder's input is after the skip was concatenated); skip: "push"
    (encoders), "pop" (decoders) or ""; skip_channels: channels of the pushed/popped tensor;
    stack: skip-stack depth after this stage.
    """

    stage: str
    layers: Tuple[Layer, ...]
    input: Shape
    output: Shape
    skip: str = ""
    skip_channels: int = 0
    stack: int = 0

    @property
    def part(self) -> str:
        """"encoders", "bottleneck", "decoders", "time_embedding" or "final"."""
        return self.stage.split(".")[0]

    @property
    def describe(self) -> str:
        """The layers as one line: "Res 320→320 + Attn 8×40"."""
        return " + ".join(layer.label for layer in self.layers)


@dataclass
class AttentionRow:
    """One attention module: kind "self" (L x L) or "cross" (L x n_tokens).

    seq_len: L = rows * cols image tokens; keys: Lk; matrix: (B, heads, L, Lk); nbytes: its size in
    memory for the traced dtype (what the explicit path materialises; SDPA avoids most of it).
    """

    name: str
    kind: str
    grid: Tuple[int, int]
    seq_len: int
    keys: int
    heads: int
    matrix: Shape
    nbytes: int


@dataclass
class Ledger:
    """The result of `trace`: rows in forward order and one AttentionRow per attention module."""

    config: UNetConfig
    height: int
    width: int
    batch: int
    dtype: torch.dtype
    rows: List[LedgerRow] = field(default_factory=list)
    attention: List[AttentionRow] = field(default_factory=list)

    @property
    def attention_bytes(self) -> int:
        """Sum over all attention modules of their weight matrices' bytes."""
        return sum(a.nbytes for a in self.attention)

    @property
    def largest_attention(self) -> AttentionRow:
        return max(self.attention, key=lambda a: a.nbytes)

    def __repr__(self) -> str:
        return (f"Ledger({self.height}x{self.width} px, batch {self.batch}: {len(self.rows)} stages, "
                f"{len(self.attention)} attention modules, largest attention {format_bytes(self.largest_attention.nbytes)})")

    def stages(self, part: str) -> List[LedgerRow]:
        """The rows of one part: "encoders", "bottleneck" or "decoders", in forward order."""
        return [r for r in self.rows if r.part == part]

    def text(self) -> str:
        """A plain-text table (for print)."""
        lines = [f"image {self.height}x{self.width}, batch {self.batch}, latent {self.height // 8}x{self.width // 8}"]
        lines.append(f"{'stage':<14} {'layers':<36} {'input':<22} {'output':<22} skip")
        for r in self.rows:
            skip = f"{r.skip} {r.skip_channels} ch (stack {r.stack})" if r.skip else ""
            lines.append(f"{r.stage:<14} {r.describe:<36} {str(r.input):<22} {str(r.output):<22} {skip}")
        return "\n".join(lines)


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


@lru_cache(maxsize=4)
def _meta_model(config: UNetConfig) -> Diffusion:
    with torch.device("meta"):
        return Diffusion(config)


def describe_layer(layer: nn.Module) -> Layer:
    """A module of a SwitchSequential -> its kind and a short label, read from the module itself."""
    if isinstance(layer, UNET_ResidualBlock):
        return Layer("res", f"Res {layer.in_channels}→{layer.out_channels}")
    if isinstance(layer, UNET_AttentionBlock):
        heads = layer.attention_1.n_heads
        return Layer("attn", f"Attn {heads}×{layer.channels // heads}")
    if isinstance(layer, Upsample):
        return Layer("up", "Up ×2")
    if isinstance(layer, nn.Conv2d):
        if layer.stride == (2, 2):
            return Layer("down", "Down /2")
        return Layer("conv", f"Conv {layer.in_channels}→{layer.out_channels}")
    raise ValueError(f"describe_layer: no label for {type(layer).__name__}; add one when the UNet gains a new layer type.")


def check_image_size(height: int, width: int, limit: int = 1024) -> None:
    """Raise ValueError unless both sides are multiples of 64 in [64, limit]."""
    for side, n in (("height", height), ("width", width)):
        if not isinstance(n, int) or n < 64 or n > limit or n % 64:
            raise ValueError(
                tr(f"image {side} must be a multiple of 64 between 64 and {limit}, got {n!r}. The latent is 1/8 of the "
                   "image and the UNet halves it three more times, so sides must divide by 64: try "
                   f"{max(64, min(limit, round(n / 64) * 64)) if isinstance(n, (int, float)) else 512}.")
            )


def trace(config: Optional[UNetConfig] = None, height: int = 512, width: int = 512, batch: int = 1,
          n_tokens: int = 77, dtype: torch.dtype = torch.float32) -> Ledger:
    """Run `Diffusion(config)` on the meta device for an image of height x width pixels.

    config: UNetConfig (default SD v1). height, width: image pixels, multiples of 64 up to 1024
    (the latent is height/8 x width/8). batch: images per forward. n_tokens: context length (77).
    dtype: the dtype whose size the attention bytes are counted in (float32, float16, bfloat16).
    Returns a Ledger (a fresh copy; repeated questions are answered from a small cache).
    """
    config = config or UNetConfig()
    if not isinstance(config, UNetConfig):
        raise ValueError(tr(f"trace: config must be an sdcourse.UNetConfig (or None for SD v1), got {type(config).__name__}."))
    check_image_size(height, width)
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(tr(f"trace: batch must be a positive int, got {batch!r}."))
    if not isinstance(n_tokens, int) or n_tokens < 1:
        raise ValueError(tr(f"trace: n_tokens must be a positive int (77 for CLIP), got {n_tokens!r}."))
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(tr(f"trace: dtype must be a floating torch dtype such as torch.float16, got {dtype!r}."))
    return copy.deepcopy(_trace(config, height, width, batch, n_tokens, dtype))


@lru_cache(maxsize=64)
def _trace(config: UNetConfig, height: int, width: int, batch: int, n_tokens: int, dtype: torch.dtype) -> Ledger:
    model = _meta_model(config)
    ledger = Ledger(config, height, width, batch, dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    stack: List[int] = []  # channels of the skip tensors, as UNET.forward pushes them
    state = {"out": None}
    handles = []

    def stage_hook(name, kind):
        def hook(module, args, output):
            x = args[0]
            skip, skip_ch = "", 0
            if kind == "push":
                stack.append(output.shape[1])
                skip, skip_ch = "push", output.shape[1]
            elif kind == "pop":
                skip_ch = stack.pop()
                prev = state["out"][1]
                if x.shape[1] != prev + skip_ch:  # the cat(x, skip) UNET.forward did before this stage
                    raise RuntimeError(f"trace: {name} got {x.shape[1]} channels, expected {prev} + {skip_ch}.")
                skip = "pop"
            ledger.rows.append(LedgerRow(name, layers[name], tuple(x.shape), tuple(output.shape), skip, skip_ch, len(stack)))
            state["out"] = tuple(output.shape)
        return hook

    def attention_hook(info):
        def hook(module, args, output):
            q = args[0]  # (B, L, C)
            keys = args[1].shape[1] if isinstance(module, CrossAttention) else q.shape[1]
            rows, cols = block_grid(q.shape[1], (height // 8, width // 8), info.factor)
            matrix = (q.shape[0], module.n_heads, q.shape[1], keys)
            n = matrix[0] * matrix[1] * matrix[2] * matrix[3]
            ledger.attention.append(AttentionRow(info.name, info.kind, (rows, cols), q.shape[1], keys,
                                                 module.n_heads, matrix, n * itemsize))
        return hook

    unet = model.unet
    stages = [(f"encoders.{i}", m, "push") for i, m in enumerate(unet.encoders)]
    stages += [("bottleneck", unet.bottleneck, "")]
    stages += [(f"decoders.{i}", m, "pop") for i, m in enumerate(unet.decoders)]
    layers = {name: tuple(describe_layer(layer) for layer in m) for name, m, _ in stages}
    layers["time_embedding"] = (Layer("other", "Linear + SiLU + Linear"),)
    layers["final"] = (Layer("other", "GroupNorm + SiLU + Conv2d"),)
    try:
        handles.append(model.time_embedding.register_forward_hook(stage_hook("time_embedding", "")))
        for name, m, kind in stages:
            handles.append(m.register_forward_hook(stage_hook(name, kind)))
        handles.append(model.final.register_forward_hook(stage_hook("final", "")))
        for kind in ("self", "cross"):
            for info, m in attention_blocks(model, kind):
                handles.append(m.register_forward_hook(attention_hook(info)))
        with torch.device("meta"):
            latent = torch.empty(batch, config.in_channels, height // 8, width // 8)  # (B, 4, H/8, W/8)
            context = torch.empty(batch, n_tokens, config.d_context)  # (B, 77, 768)
        time = sinusoidal_embedding(torch.tensor([0.0], device="meta"), config.n_time_embd)  # (1, 320)
        with torch.no_grad():
            model(latent, context, time)
    finally:
        for h in handles:
            h.remove()
    # forward order: time embedding first; attention rows already in call order (self, cross per block)
    ledger.rows.sort(key=lambda r: 0 if r.stage == "time_embedding" else 1)
    return ledger
