"""The course's static figures, drawn from the code itself so that they never drift from it.

    python -m sdcourse.figures                # writes figures/*.png
    python -m sdcourse.figures --out /tmp/f   # somewhere else

- `unet_diagram.png`: the UNet as a U: 12 encoder steps down, the bottleneck, 12 decoder steps
  up, with channels, resolutions and the 12 skip connections. Nothing in it is typed in by hand:
  `sdcourse.shapes.trace` builds the model on the meta device (no memory, instant), runs a meta
  forward with hooks, and reads each step's layers, channels and resolution (the same trace the
  shape ledger shows).
- `time_embedding_heatmap.png`: `sinusoidal_embedding(t)` for every t in 0..999 (160 cosines |
  160 sines), and how similar the embeddings of t and t + d are.
- `residual_block.png`: the data flow of `UNET_ResidualBlock(320, 640)`: the two GroupNorm-SiLU-
  conv steps, where the time embedding joins, and the 1x1 conv on the residual; labels and
  shapes read from the module and a meta forward.

The notebooks call the same functions (`unet_diagram()`, `time_embedding_heatmap()`,
`residual_block_diagram()`, shown with `show(fig)`), so a notebook shows exactly what the PNG
shows, also on Colab where figures/ is not installed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .attention_diagram import attention_block_diagram
from .render import figure_to_png
from .shapes import trace
from .time_embedding import sinusoidal_embedding
from .unet import UNET_ResidualBlock, UNetConfig
from .i18n import tr

# Colours of the layer kinds (colour-blind safe: Okabe-Ito).
COLOURS = {"res": "#56B4E9", "attn": "#E69F00", "down": "#BBBBBB", "up": "#BBBBBB", "conv": "#BBBBBB"}


def _resolution(size: int, latent_size: int) -> str:
    """Feature-map height -> 'H/8', 'H/16', ... relative to the image (the latent is H/8)."""
    return f"H/{8 * latent_size // size}"


def unet_diagram(config: Optional[UNetConfig] = None, latent_size: int = 64):
    """The UNet as a U. Returns a matplotlib Figure (not shown; the caller shows or saves it)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
    from matplotlib.textpath import TextPath

    if not isinstance(latent_size, int) or latent_size <= 0 or latent_size % 8:
        raise ValueError(tr(f"unet_diagram: latent_size must be a positive multiple of 8 (the UNet halves it 3 times), "
                            f"got {latent_size!r}. Try 64 (a 512 px image)."))
    ledger = trace(config, height=8 * latent_size, width=8 * latent_size)
    # rows: stage, layers, input (B, C, h, w), output (B, C, h, w); a decoder's input includes its skip
    encoders, decoders = ledger.stages("encoders"), ledger.stages("decoders")
    bottleneck, = ledger.stages("bottleneck")
    n = len(encoders)
    if len(decoders) != n:
        raise ValueError(tr(f"unet_diagram: {n} encoders but {len(decoders)} decoders; every skip needs a decoder."))

    fig_w, fig_h, x_min, x_max = 11.0, 10.5, -1.6, 15.0
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))  # fixed: 1 data unit along x is a known number of points
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(n + 2.7, -2.5)  # row 0 at the top
    ax.axis("off")
    units_per_point = (x_max - x_min) / (fig_w * 72)

    def text_width(label, size=10):
        """Width of `label` in data units, measured from the font's glyphs."""
        return TextPath((0, 0), label, size=size).get_extents().width * units_per_point

    left_x, right_x, chip_h = 0.0, 8.8, 0.62  # left edges of the encoder and decoder columns

    # resolution bands: row r holds encoder r and decoder n-1-r, which share the skip's resolution
    band_rows = {}
    for r, stage in enumerate(encoders):
        band_rows.setdefault(stage.output[2], []).append(r)
    band_rows.setdefault(bottleneck.output[2], []).append(n)
    shades = ["#F4F4F4", "#E6E6E6"]
    for k, (size, rows) in enumerate(sorted(band_rows.items(), reverse=True)):
        top, bottom = min(rows) - 0.5, max(rows) + 0.5
        ax.add_patch(Rectangle((x_min + 0.1, top), x_max - x_min - 0.2, bottom - top, color=shades[k % 2], zorder=0, lw=0))
        ax.text(-1.4, (top + bottom) / 2, f"{_resolution(size, latent_size)}\n{size}×{size}",
                ha="left", va="center", fontsize=10, fontweight="bold", color="#555555")

    def chips(stage, x, y):
        """Draw the stage's layers left to right as coloured chips; return the right edge."""
        for layer in stage.layers:
            width = text_width(layer.label) + 0.24
            ax.add_patch(FancyBboxPatch((x, y - chip_h / 2), width, chip_h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                        fc=COLOURS[layer.kind], ec="#333333", lw=0.8, zorder=2))
            ax.text(x + width / 2, y, layer.label, ha="center", va="center", fontsize=10, zorder=3)
            x += width + 0.1
        return x - 0.1

    def arrow(start, end, colour="#333333", style="-|>", lw=1.2, **kw):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=colour, lw=lw, zorder=1, **kw))

    enc_right, dec_left = [], []
    for r, stage in enumerate(encoders):
        ax.text(left_x - 0.1, r, f"e{r}", ha="right", va="center", fontsize=8, color="#666666")
        right = chips(stage, left_x + 0.4, r)
        enc_right.append(right)
        ax.text(right + 0.15, r, f"{stage.output[1]}", ha="left", va="center", fontsize=9.5, color="#333333")
        if r + 1 < n:
            arrow((left_x + 0.9, r + chip_h / 2), (left_x + 0.9, r + 1 - chip_h / 2))
    for index, stage in enumerate(decoders):
        r = n - 1 - index
        ax.text(right_x - 0.2, r, f"{stage.input[1]}", ha="right", va="center", fontsize=9.5, color="#333333")
        ax.text(x_max - 0.15, r, f"d{index}", ha="right", va="center", fontsize=8, color="#666666")
        chips(stage, right_x, r)
        dec_left.append((r, right_x))
        if r > 0:
            arrow((right_x + 0.5, r - chip_h / 2), (right_x + 0.5, r - 1 + chip_h / 2))

    # skips: encoder r's output is concatenated to the input of decoder n-1-r (same row)
    for r, stage in enumerate(encoders):
        start = enc_right[r] + 0.3 + text_width(str(stage.output[1]), 9.5)
        end = right_x - 0.6 - text_width("2560", 9.5)
        arrow((start, r), (end, r), colour="#009E73", lw=1.0, linestyle=(0, (4, 2)))
        ax.text((start + end) / 2, r - 0.12, f"skip {stage.output[1]}", ha="center", va="bottom",
                fontsize=9, color="#007A5A")

    # bottleneck, centred below the U
    width = sum(text_width(layer.label) + 0.24 + 0.1 for layer in bottleneck.layers) - 0.1
    bx = (left_x + 0.4 + right_x + 2.0) / 2 - width / 2
    chips(bottleneck, bx, n)
    ax.text(bx + width / 2, n + 0.55, tr(f"bottleneck: {bottleneck.output[1]} channels", figure=True), ha="center", va="top", fontsize=10)
    arrow((left_x + 0.9, n - 1 + chip_h / 2), (bx - 0.05, n), connectionstyle="arc3,rad=0.25")
    arrow((bx + width + 0.05, n), (right_x + 0.5, n - 1 + chip_h / 2), connectionstyle="arc3,rad=0.25")

    # inputs and output
    cfg = config or UNetConfig()
    ax.text(left_x + 0.4, -1.15, f"latent (B, {cfg.in_channels}, H/8, W/8)", ha="left", va="center", fontsize=10,
            fontweight="bold")
    arrow((left_x + 0.9, -0.9), (left_x + 0.9, -chip_h / 2))
    ax.text(right_x, -1.25, tr(f"(B, {decoders[-1].output[1]}, H/8, W/8) → output layer\n"
                               f"→ predicted noise (B, {cfg.out_channels}, H/8, W/8)", figure=True), ha="left", va="center", fontsize=10,
            fontweight="bold")
    arrow((right_x + 0.5, -chip_h / 2), (right_x + 0.5, -0.9))

    ax.text((x_min + x_max) / 2, -2.0, tr(f"The SD v1 UNet traced on the meta device (latent {latent_size}×{latent_size} = "
                                          f"{8 * latent_size} px image)", figure=True) if config is None else
            tr(f"UNet {cfg.channels} traced on the meta device (latent {latent_size}×{latent_size})", figure=True),
            ha="center", va="center", fontsize=12, fontweight="bold")
    legend = [("res", tr(f"Res in→out: residual block, gets the time embedding ({cfg.n_time})", figure=True)),
              ("attn", tr(f"Attn heads×d_head: attention block, gets the text context (77×{cfg.d_context})", figure=True)),
              ("down", tr("Down /2: conv stride 2;  Up ×2: nearest upsampling + conv", figure=True))]
    for k, (kind, text) in enumerate(legend):
        y = n + 1.25 + 0.33 * k
        ax.add_patch(Rectangle((0.3, y - 0.12), 0.35, 0.24, fc=COLOURS[kind], ec="#333333", lw=0.6))
        ax.text(0.8, y, text, ha="left", va="center", fontsize=10)
    ax.text(right_x - 0.1, n + 1.1, tr("Numbers beside the columns: channels leaving an encoder\n"
                                       "step, and entering a decoder step (current + skip, cat).\n"
                                       "Green skips: each encoder output is pushed on a stack and\n"
                                       "popped by the decoder on the same row (last in, first out).", figure=True),
            ha="left", va="top", fontsize=9, color="#333333")
    return fig


def time_embedding_heatmap(dim: int = 320, t_max: int = 1000):
    """Heatmap of sinusoidal_embedding(t) for t = 0..t_max-1, and the cosine similarity of the
    embeddings of t and t + d against d. Returns a matplotlib Figure."""
    import matplotlib.pyplot as plt

    if t_max < 2:
        raise ValueError(tr(f"time_embedding_heatmap: t_max must be at least 2, got {t_max}."))
    t = torch.arange(t_max)
    emb = sinusoidal_embedding(t, dim)  # (t_max, dim)
    unit = emb / emb.norm(dim=-1, keepdim=True)  # (t_max, dim), each row of length 1
    similarity = unit @ unit.T  # (t_max, dim) @ (dim, t_max) -> (t_max, t_max)

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.35, 1]})
    image = ax0.imshow(emb.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    half = dim // 2
    ax0.axvline(half - 0.5, color="black", lw=1)
    ax0.set_xticks([0, half // 2, half, half + half // 2, dim - 1])
    ax0.set_xlabel(tr(f"embedding index: cos of {half} frequencies | sin of the same {half}", figure=True))
    ax0.set_ylabel("timestep t")
    ax0.set_title(f"sinusoidal_embedding(t, {dim}) = [cos | sin],  freq_i = 10000^(-i/{half})", fontsize=10)
    fig.colorbar(image, ax=ax0, fraction=0.04, pad=0.02)

    # similarity of t and t + d, for a few starting points t: the curves coincide
    for start, style in ((0, "-"), (t_max // 3, "--"), (2 * t_max // 3, ":")):
        d = torch.arange(1, t_max - start)
        ax1.plot(d.numpy(), similarity[start, start + d].numpy(), style, lw=1.8, label=f"t = {start}")
    ax1.set_xscale("log")
    ax1.set_ylim(0, 1.02)
    ax1.set_xlabel(tr("distance d between the timesteps (log scale)", figure=True))
    ax1.set_ylabel(tr("cosine similarity of t and t + d", figure=True))
    ax1.set_title(tr("nearby timesteps get similar embeddings;\nthe similarity depends only on d", figure=True), fontsize=10)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=9)
    fig.tight_layout()
    return fig


def trace_residual_block(in_channels: int = 320, out_channels: int = 640, size: int = 64, n_time: int = 1280):
    """Shapes inside `UNET_ResidualBlock(in_channels, out_channels)` on the meta device.

    Returns (block, shapes): shapes maps each layer's name to its output shape, plus "feature",
    "time" (the inputs) and "output".
    """
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("size", size)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(tr(f"trace_residual_block: {name} must be a positive int, got {value!r}."))
    if in_channels % 32 or out_channels % 32:
        raise ValueError(tr(f"trace_residual_block: channels must divide into 32 GroupNorm groups, got {in_channels}, "
                            f"{out_channels}. Use multiples of 32 such as 320 and 640."))
    with torch.device("meta"):
        block = UNET_ResidualBlock(in_channels, out_channels, n_time=n_time)
    feature = torch.zeros(1, in_channels, size, size, device="meta")  # (B, in, H, W)
    time = torch.zeros(1, n_time, device="meta")  # (B, n_time)
    shapes = {"feature": tuple(feature.shape), "time": tuple(time.shape)}
    handles = [module.register_forward_hook(lambda m, a, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
               for name, module in block.named_children()]
    try:
        shapes["output"] = tuple(block(feature, time).shape)
    finally:
        for handle in handles:
            handle.remove()
    return block, shapes


def _layer_label(module: nn.Module) -> str:
    if isinstance(module, nn.GroupNorm):
        return f"GroupNorm({module.num_groups} groups, {module.num_channels} ch)"
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        return f"Conv {k}×{k}  {module.in_channels}→{module.out_channels}"
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}→{module.out_features}"
    if isinstance(module, nn.Identity):
        return "Identity (channels equal)"
    raise ValueError(f"_layer_label: no label for {type(module).__name__}.")


def residual_block_diagram(in_channels: int = 320, out_channels: int = 640):
    """The data flow of `UNET_ResidualBlock(in_channels, out_channels)` with each step's shape.
    Returns a matplotlib Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

    block, shapes = trace_residual_block(in_channels, out_channels, size=64)

    def shape(name):  # (1, C, 64, 64) -> "(B, C, H, W)"; (1, C) -> "(B, C)"
        dims = shapes[name]
        return f"(B, {dims[1]}, H, W)" if len(dims) == 4 else f"(B, {dims[1]})"

    fig = plt.figure(figsize=(10, 7.2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10.2)
    ax.set_ylim(11.4, -0.6)
    ax.axis("off")
    colours = {"norm": "#CC79A7", "act": "#F0E442", "conv": "#56B4E9", "time": "#E69F00", "io": "#FFFFFF",
               "res": "#009E73"}

    def box(x, y, text, kind, width=3.6, note=""):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.32), width, 0.64, boxstyle="round,pad=0.02,rounding_size=0.12",
                                    fc=colours[kind], ec="#333333", lw=0.9, zorder=2))
        ax.text(x, y, text, ha="center", va="center", fontsize=10, zorder=3, fontweight="bold" if kind == "io" else "normal")
        if note:
            ax.text(x + width / 2 + 0.12, y, note, ha="left", va="center", fontsize=9, color="#444444")

    def plus(x, y):  # a circle of 0.36 inch: data units differ along x (10.2 per 10 in) and y (12 per 7.2 in)
        ax.add_patch(Ellipse((x, y), 0.36 * 10.2 / 10, 0.36 * 12 / 7.2, fc="white", ec="#333333", lw=1.2, zorder=2))
        ax.text(x, y + 0.02, "+", ha="center", va="center", fontsize=14, zorder=3)

    def arrow(start, end, **kw):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#333333", lw=1.2,
                                     zorder=1, **kw))

    def down(x, y0, y1, r0=0.32, r1=0.32):  # a vertical arrow from the shape at y0 to the one at y1
        arrow((x, y0 + r0), (x, y1 - r1))

    main, tx, rx = 4.0, 8.7, 1.0  # columns: main path, time branch, residual
    rows = {"in": 0.0, "gn1": 1.1, "act1": 2.1, "conv1": 3.1, "add_t": 4.2, "gn2": 5.3, "act2": 6.3, "conv2": 7.3,
            "add_r": 8.5, "out": 9.6}
    box(main, rows["in"], f"feature {shape('feature')}", "io")
    box(main, rows["gn1"], f"groupnorm_feature: {_layer_label(block.groupnorm_feature)}", "norm", width=4.0)
    box(main, rows["act1"], "SiLU", "act")
    box(main, rows["conv1"], f"conv_feature: {_layer_label(block.conv_feature)}", "conv", note=shape("conv_feature"))
    box(main, rows["gn2"], f"groupnorm_merged: {_layer_label(block.groupnorm_merged)}", "norm", width=4.0)
    box(main, rows["act2"], "SiLU", "act")
    box(main, rows["conv2"], f"conv_merged: {_layer_label(block.conv_merged)}", "conv", note=shape("conv_merged"))
    box(main, rows["out"], f"output {shape('output')}", "io")
    plus(main, rows["add_t"])
    plus(main, rows["add_r"])
    for a, b in (("in", "gn1"), ("gn1", "act1"), ("act1", "conv1"), ("gn2", "act2"), ("act2", "conv2")):
        down(main, rows[a], rows[b])
    down(main, rows["conv1"], rows["add_t"], r1=0.3)
    down(main, rows["add_t"], rows["gn2"], r0=0.3)
    down(main, rows["conv2"], rows["add_r"], r1=0.3)
    down(main, rows["add_r"], rows["out"], r0=0.3)

    # the time branch joins between the two convs
    box(tx, 0.0, f"time {shape('time')}", "io", width=2.6)
    box(tx, 1.1, "SiLU", "act", width=2.6)
    box(tx, 2.1, f"linear_time: {_layer_label(block.linear_time)}", "time", width=2.9)
    down(tx, 0.0, 1.1)
    down(tx, 1.1, 2.1)
    ax.text(tx, 2.55, tr(f"{shape('linear_time')} → unsqueeze twice →\n(B, {shapes['linear_time'][1]}, 1, 1): the same "
                         "number\nadded at every pixel of a channel", figure=True), ha="center", va="top", fontsize=9, color="#444444")
    arrow((tx, 3.55), (main + 0.19, rows["add_t"]), connectionstyle="angle,angleA=90,angleB=0,rad=0")

    # the residual: from the input, around everything, through residual_layer
    conv = isinstance(block.residual_layer, nn.Conv2d)
    box(rx, rows["conv2"], "1×1 conv" if conv else "Identity", "res", width=1.5)
    ax.text(rx, rows["conv2"] - 0.45, "residual_layer", ha="center", va="bottom", fontsize=9, color="#444444")
    ax.text(rx, rows["conv2"] + 0.45, f"{in_channels}→{out_channels}" if conv else tr("(channels equal)", figure=True),
            ha="center", va="top", fontsize=9, color="#444444")
    arrow((main - 1.8, rows["in"]), (rx, rows["conv2"] - 0.75), connectionstyle="angle,angleA=180,angleB=90,rad=0")
    arrow((rx, rows["conv2"] + 0.8), (main - 0.19, rows["add_r"]), connectionstyle="angle,angleA=90,angleB=180,rad=0")
    ax.text(5.1, 10.75, tr(f"UNET_ResidualBlock({in_channels}, {out_channels}), traced on the meta device "
                           "(any H, W)", figure=True), ha="center", va="center", fontsize=11, fontweight="bold")
    return fig


FIGURES = {
    "unet_diagram.png": unet_diagram,
    "time_embedding_heatmap.png": time_embedding_heatmap,
    "residual_block.png": residual_block_diagram,
    "attention_block.png": attention_block_diagram,
}


def save(fig, path: Path, dpi: int = 100) -> Path:
    """Write `figure_to_png(fig)` (deterministic, palette PNG) to `path`."""
    Path(path).write_bytes(figure_to_png(fig, dpi))
    return Path(path)


def show(fig) -> None:
    """Display a figure in a notebook as the same compact PNG that `save` writes, then close it."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    display(Image(data=figure_to_png(fig)))
    plt.close(fig)


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description="Draw the course's figures from the code.")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="folder for the PNGs (default: figures/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, draw in FIGURES.items():
        fig = draw()
        print(save(fig, args.out / name))
        plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
