"""The diagram of `UNET_AttentionBlock`, drawn from the code (notebook 04).

`trace_attention_block` builds the block on the meta device (no memory, instant), runs a meta
forward with hooks on its layers and records what goes in and out of each: nothing in the figure
is typed in by hand, so it cannot drift from `sdcourse.unet.UNET_AttentionBlock`.
`attention_block_diagram` draws the data flow: GroupNorm and the 1x1 conv, the image becoming a
sequence, three LayerNorm + layer steps each with a short residual (self-attention,
cross-attention with the context, the GeGLU feed-forward), the way back to an image and the long
residual.

    python -m sdcourse.figures      # draws figures/attention_block.png with the other figures
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

from .unet import UNET_AttentionBlock
from .i18n import tr


def trace_attention_block(n_head: int = 8, d_head: int = 40, d_context: int = 768, size: int = 64,
                          context_length: int = 77) -> Tuple[UNET_AttentionBlock, Dict[str, tuple]]:
    """Shapes inside `UNET_AttentionBlock(n_head, d_head, d_context)` on a size x size feature map, on the meta device.

    Returns (block, shapes): shapes maps "<layer> in" and "<layer> out" for each child layer (the
    input shape as the layer received it), plus "x", "context" (the inputs) and "output".
    """
    for label, value in (("n_head", n_head), ("d_head", d_head), ("d_context", d_context), ("size", size),
                         ("context_length", context_length)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(tr(f"trace_attention_block: {label} must be a positive int, got {value!r}."))
    channels = n_head * d_head
    if channels % 32:
        raise ValueError(tr(f"trace_attention_block: n_head * d_head = {channels} channels do not divide into 32 GroupNorm "
                            "groups. Use SD's sizes, e.g. 8 heads of 40, 80 or 160."))
    with torch.device("meta"):
        block = UNET_AttentionBlock(n_head, d_head, d_context=d_context)
    x = torch.zeros(1, channels, size, size, device="meta")  # (B, C, H, W)
    context = torch.zeros(1, context_length, d_context, device="meta")  # (B, L, d_context)
    shapes: Dict[str, tuple] = {"x": tuple(x.shape), "context": tuple(context.shape)}

    def hook(name):
        def record(module, inputs, output):
            shapes[f"{name} in"] = tuple(inputs[0].shape)
            shapes[f"{name} out"] = tuple(output.shape)
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in block.named_children()]
    try:
        shapes["output"] = tuple(block(x, context).shape)
    finally:
        for handle in handles:
            handle.remove()
    return block, shapes


def _label(module: nn.Module) -> str:
    """A layer's label, read from the module."""
    if isinstance(module, nn.GroupNorm):
        return f"GroupNorm {module.num_groups} groups, eps {module.eps:g}"
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        return f"Conv {k}×{k} {module.in_channels}→{module.out_channels}"
    if isinstance(module, nn.LayerNorm):
        return f"LayerNorm {module.normalized_shape[0]}"
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}→{module.out_features}"
    heads = getattr(module, "n_heads", None)
    if heads is not None:
        kind = "cross-attention" if hasattr(module, "k_proj") else "self-attention"
        return f"{kind}, {heads} heads × {module.d_head}"
    raise ValueError(f"_label: no label for {type(module).__name__}; add one when the block gains a new layer type.")


def _shape(dims: tuple, size: int) -> str:
    """(1, 320, 64, 64) -> "(B, 320, H, W)"; (1, 4096, 320) -> "(B, H·W, 320)"; (1, 77, 768) -> "(B, 77, 768)"."""
    if len(dims) == 4:
        return f"(B, {dims[1]}, h, w)"
    if len(dims) == 3 and dims[1] == size * size:
        return f"(B, h·w, {dims[2]})"
    return "(B, " + ", ".join(str(d) for d in dims[1:]) + ")"


def attention_block_diagram(n_head: int = 8, d_head: int = 40, d_context: int = 768):
    """The data flow of `UNET_AttentionBlock(n_head, d_head, d_context)` with each step's shape, read from
    a meta-device trace. Returns a matplotlib Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

    size = 64
    block, shapes = trace_attention_block(n_head, d_head, d_context, size=size)
    channels = block.channels
    fig = plt.figure(figsize=(10, 11.5))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(19.6, -0.8)
    ax.axis("off")
    colours = {"norm": "#CC79A7", "conv": "#56B4E9", "attn": "#E69F00", "ff": "#009E73", "io": "#FFFFFF",
               "shape": "#DDDDDD", "act": "#F0E442"}

    def box(y, text, kind, x=4.6, width=4.6, note=""):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.3), width, 0.6, boxstyle="round,pad=0.02,rounding_size=0.12",
                                    fc=colours[kind], ec="#333333", lw=0.9, zorder=2))
        ax.text(x, y, text, ha="center", va="center", fontsize=9.5, zorder=3,
                fontweight="bold" if kind == "io" else "normal")
        if note:
            ax.text(x + width / 2 + 0.15, y, note, ha="left", va="center", fontsize=8.5, color="#444444")

    def plus(y, x=4.6):  # a circle 0.34 inch wide: the axes are 10 units per 10 in across, 20.4 per 11.5 in down
        ax.add_patch(Ellipse((x, y), 0.34, 0.34 * 20.4 / 11.5, fc="white", ec="#333333", lw=1.2, zorder=2))
        ax.text(x, y + 0.03, "+", ha="center", va="center", fontsize=13, zorder=3)

    def arrow(start, end, **kw):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, color="#333333", lw=1.1,
                                     zorder=1, **kw))

    main = 4.6
    rows = ["x", "groupnorm", "conv_input", "to_seq", "layernorm_1", "attention_1", "add_1", "layernorm_2",
            "attention_2", "add_2", "layernorm_3", "linear_geglu_1", "geglu", "linear_geglu_2", "add_3", "to_image",
            "conv_output", "add_long", "output"]
    y = {name: float(i) for i, name in enumerate(rows)}
    note = {name: _shape(shapes[f"{name} out"], size) for name, _ in block.named_children()}

    box(y["x"], tr(f"x {_shape(shapes['x'], size)}: a feature map", figure=True), "io")
    box(y["groupnorm"], f"groupnorm: {_label(block.groupnorm)}", "norm", note=note["groupnorm"])
    box(y["conv_input"], f"conv_input: {_label(block.conv_input)}", "conv", note=note["conv_input"])
    box(y["to_seq"], "view(B, C, h·w).transpose(1, 2)", "shape",
        note=tr(f"{_shape(shapes['layernorm_1 in'], size)}: one token per pixel", figure=True))
    box(y["layernorm_1"], f"layernorm_1: {_label(block.layernorm_1)}", "norm")
    box(y["attention_1"], f"attention_1: {_label(block.attention_1)}", "attn", note=f"weights (B, {n_head}, h·w, h·w)")
    box(y["layernorm_2"], f"layernorm_2: {_label(block.layernorm_2)}", "norm")
    box(y["attention_2"], f"attention_2: {_label(block.attention_2)}", "attn")
    box(y["layernorm_3"], f"layernorm_3: {_label(block.layernorm_3)}", "norm")
    box(y["linear_geglu_1"], f"linear_geglu_1: {_label(block.linear_geglu_1)}", "ff", note=note["linear_geglu_1"])
    box(y["geglu"], "value, gate = chunk(2); value · GELU(gate)", "act",
        note=_shape(shapes["linear_geglu_2 in"], size))
    box(y["linear_geglu_2"], f"linear_geglu_2: {_label(block.linear_geglu_2)}", "ff", note=note["linear_geglu_2"])
    box(y["to_image"], "transpose(1, 2).view(B, C, h, w)", "shape", note=_shape(shapes["conv_output in"], size))
    box(y["conv_output"], f"conv_output: {_label(block.conv_output)}", "conv")
    box(y["output"], tr(f"output {_shape(shapes['output'], size)}: the input's shape", figure=True), "io")
    for name in ("add_1", "add_2", "add_3", "add_long"):
        plus(y[name])

    chain = rows
    for a, b in zip(chain, chain[1:]):
        top = 0.22 if a.startswith("add") else 0.3
        bottom = 0.22 if b.startswith("add") else 0.3
        arrow((main, y[a] + top), (main, y[b] - bottom))

    # short residuals: from just above each LayerNorm, around it and its layer, into the next +
    for start, end, x_side in (("layernorm_1", "add_1", 1.9), ("layernorm_2", "add_2", 1.9),
                               ("layernorm_3", "add_3", 1.9)):
        y0, y1 = y[start] - 0.5, y[end]
        ax.plot([main, x_side, x_side], [y0, y0, y1], color="#333333", lw=1.1, zorder=1)
        arrow((x_side, y1), (main - 0.18, y1))
        ax.text(x_side - 0.1, (y0 + y1) / 2, "residue_short", rotation=90, ha="right", va="center", fontsize=8.5,
                color="#444444")
    # the long residual: from x around everything
    y0, y1 = y["x"] + 0.45, y["add_long"]
    ax.plot([main, 0.8, 0.8], [y0, y0, y1], color="#333333", lw=1.1, zorder=1)
    arrow((0.8, y1), (main - 0.18, y1))
    ax.text(0.7, (y0 + y1) / 2, tr("residue_long (the block's input x)", figure=True), rotation=90, ha="right", va="center",
            fontsize=8.5, color="#444444")
    # the context joins the cross-attention from the right
    cx = 8.6
    box(y["layernorm_2"] - 0.1, f"context {_shape(shapes['context'], size)}", "io", x=cx, width=2.2)
    ax.text(cx, y["layernorm_2"] + 0.35, tr(f"keys, values: (B, {shapes['context'][1]}, {channels})\nweights (B, {n_head}, "
                                            f"h·w, {shapes['context'][1]})", figure=True), ha="center", va="top", fontsize=8.5,
            color="#444444")
    arrow((cx, y["attention_2"] - 0.05), (main + 2.3, y["attention_2"]), connectionstyle="angle,angleA=90,angleB=0,rad=0")
    ax.text(5.0, 19.2, tr(f"UNET_AttentionBlock({n_head}, {d_head}, d_context={d_context}): {channels} channels, "
                          "traced on the meta device (any h, w)", figure=True), ha="center", va="center", fontsize=10.5,
            fontweight="bold")
    return fig
