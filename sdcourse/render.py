"""Pure render functions behind the course's widgets: data in, matplotlib Figure (or HTML) out.

Nothing here knows about ipywidgets, so every picture a widget shows can be made (and tested)
with a plain function call:

    render_time_embedding(t=500)                 # the 320-vector of t and its similarity to all s
    render_sequence(8, 8, 320, row=2, col=5)     # pixel (2, 5) of an 8x8 map is token 21
    ledger_html(trace(height=512, width=512))    # the shape ledger as an HTML table
    render_ledger(trace(height=512, width=512))  # the same as a picture (for a notebook without a kernel)
    render_attention(maps, token=2, image=img)   # a cross-attention map over the sample
    figure_to_png(fig)                           # any of them as deterministic PNG bytes

Layers: the model and its tracing (`unet`, `blocks`, `shapes`, `record`) sit below this module,
the widgets above it; nothing here imports a widget.
"""
from __future__ import annotations

import html
import io
from typing import Optional, Sequence, Tuple

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from .blocks import sequence_index, sequence_pixel  # noqa: F401  (render.sequence_pixel kept as a name)
from .device import default_device
from .record import AttentionMaps
from .shapes import Ledger, format_bytes
from .time_embedding import sinusoidal_embedding
from .i18n import tr

COS_COLOR, SIN_COLOR, MARK_COLOR = "#1f77b4", "#ff7f0e", "#d62728"


def _figure(width: float, height: float) -> Figure:
    """A Figure not attached to pyplot: nothing is shown twice and nothing leaks."""
    fig = Figure(figsize=(width, height), dpi=100)
    fig.set_layout_engine("constrained")
    return fig


def figure_to_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure -> PNG bytes, the same bytes on every run: no date or software metadata,
    and reduced to a 256-colour palette (the time-embedding heatmap drops from ~360 KB to ~110 KB;
    the course's figures use few colours, so nothing visible is lost). Used for the files in
    figures/, for the widgets' pictures and for their static previews."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# --------------------------------------------------------------------------- time embedding
def time_embedding_data(t: int, dim: int = 320, t_max: int = 1000, device=None) -> dict:
    """The sinusoidal embedding of `t` and its cosine similarity with every s in 0..t_max-1.

    Returns {"vector": (dim,) float tensor, "timesteps": (t_max,), "similarity": (t_max,)} on the CPU.
    Computed on `device` (default: sdcourse.default_device()).
    """
    if not isinstance(t_max, int) or t_max < 2:
        raise ValueError(tr(f"time_embedding_data: t_max must be an int >= 2, got {t_max!r}."))
    if not 0 <= t < t_max:
        raise ValueError(tr(f"time_embedding_data: t must be in 0..{t_max - 1}, got {t!r}."))
    device = torch.device(device) if device is not None else default_device()
    steps = torch.arange(t_max, device=device)  # (T,)
    table = sinusoidal_embedding(steps, dim)  # (T, dim)
    vector = table[int(t)]  # (dim,)
    # every row has norm sqrt(dim/2) (cos^2 + sin^2 = 1 per frequency), so cosine = dot / (dim/2)
    similarity = table @ vector / (dim / 2)  # (T, dim) @ (dim,) -> (T,)
    return {"vector": vector.cpu(), "timesteps": steps.cpu(), "similarity": similarity.cpu()}


def render_time_embedding(t: int, dim: int = 320, t_max: int = 1000, device=None) -> Figure:
    """Top: the dim-vector of t (cos half, sin half). Bottom: its cosine similarity to every timestep."""
    data = time_embedding_data(t, dim, t_max, device)
    half = dim // 2
    fig = _figure(8, 4)
    top, bottom = fig.subplots(2, 1)
    v = data["vector"].numpy()
    top.bar(np.arange(half), v[:half], width=1.0, color=COS_COLOR, label=f"cos (0..{half - 1})")
    top.bar(np.arange(half, dim), v[half:], width=1.0, color=SIN_COLOR, label=f"sin ({half}..{dim - 1})")
    top.set_xlim(0, dim)
    top.set_ylim(-1.1, 1.1)
    top.set_title(tr(f"sinusoidal_embedding(t={t}): {dim} numbers, fast frequencies on the left of each half", figure=True), fontsize=9)
    top.set_xlabel("dimension", fontsize=8)
    top.legend(loc="lower right", fontsize=7, ncol=2)
    bottom.plot(data["timesteps"].numpy(), data["similarity"].numpy(), color="k", lw=1)
    bottom.axvline(t, color=MARK_COLOR, lw=1)
    bottom.set_xlim(0, t_max - 1)
    bottom.set_ylim(-0.1, 1.05)
    bottom.set_title(tr(f"cosine similarity of t={t} with every timestep s: near timesteps look alike", figure=True), fontsize=9)
    bottom.set_xlabel("timestep s", fontsize=8)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
    return fig


# --------------------------------------------------------------------------- image as a sequence
def _check_grid(height: int, width: int, channels: int) -> None:
    for name, n in (("height", height), ("width", width), ("channels", channels)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(tr(f"sequence view: {name} must be a positive int, got {n!r}."))
    if height * width > 4096:
        raise ValueError(tr(f"sequence view: {height}x{width} has too many pixels to draw; use at most 64x64."))


def render_sequence(height: int = 8, width: int = 8, channels: int = 320, row: int = 0, col: int = 0) -> Figure:
    """Left: the (C, H, W) feature map seen from above, each pixel labelled with its token index.
    Right: the same pixels as the sequence (H*W, C), one token per line. Each image row has its own
    colour on both sides: row r becomes the run of tokens r*W .. r*W + W-1. The chosen pixel is red."""
    _check_grid(height, width, channels)
    index = sequence_index(row, col, width)
    if row >= height:
        raise ValueError(tr(f"render_sequence: row {row} is outside a map {height} pixels high."))
    n = height * width
    palette = matplotlib.colormaps["Pastel1"]
    colors = np.array([palette(r % 8)[:3] for r in range(height)])  # (H, 3): one colour per image row
    fig = _figure(8, 4)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    grid = np.repeat(colors[:, None, :], width, axis=1)  # (H, W, 3)
    grid[row, col] = (0.9, 0.2, 0.2)
    left.imshow(grid, interpolation="nearest")
    if n <= 256:
        for r in range(height):
            for c in range(width):
                left.text(c, r, str(sequence_index(r, c, width)), ha="center", va="center", fontsize=8 if n <= 64 else 5,
                          color="white" if (r, c) == (row, col) else "k", fontweight="bold" if (r, c) == (row, col) else None)
    left.set_title(tr(f"feature map (B, {channels}, {height}, {width}): pixel (row {row}, col {col})", figure=True), fontsize=9)
    left.set_xticks(range(width)) if width <= 16 else None
    left.set_yticks(range(height)) if height <= 16 else None
    left.tick_params(labelsize=7)
    left.set_xlabel("col", fontsize=8)
    left.set_ylabel("row", fontsize=8)
    shown = min(channels, 24)
    seq = np.repeat(np.repeat(colors, width, axis=0)[:, None, :], shown, axis=1)  # (H*W, shown, 3)
    seq[index] = (0.9, 0.2, 0.2)
    right.imshow(seq, aspect="auto", interpolation="nearest")
    right.set_yticks(range(0, n, width) if height <= 16 else range(0, n, max(1, n // 8)))
    right.tick_params(labelsize=7)
    right.annotate(f"token {index}", xy=(shown - 0.5, index), xytext=(shown + 1, index), fontsize=8, color="#d62728",
                   va="center", annotation_clip=False, arrowprops={"arrowstyle": "-", "color": "#d62728"})
    right.set_title(tr(f"sequence (B, {n}, {channels}): token {index} = {row} * {width} + {col}", figure=True), fontsize=9)
    right.set_xlabel(tr(f"channel (first {shown} of {channels})", figure=True) if shown < channels else "channel", fontsize=8)
    right.set_ylabel(tr("token index", figure=True), fontsize=8)
    return fig


# --------------------------------------------------------------------------- shape ledger
_TABLE_CSS = "border-collapse:collapse;font-family:monospace;font-size:11px;line-height:1.25"
_CELL = "padding:1px 6px;border-bottom:1px solid #e4e4e4;text-align:left;white-space:nowrap"
_HEAD = _CELL + ";background:#f2f2f2"


def _table(headers, rows) -> str:
    head = "".join(f"<th style='{_HEAD}'>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='{_CELL}'>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table style='{_TABLE_CSS}'><tr>{head}</tr>{body}</table>"


def ledger_html(ledger: Ledger) -> str:
    """The ledger as HTML: the stages with their shapes and the skip stack (left), and per
    attention block its grid, sequence length and the memory of its weight matrices (right)."""
    e = html.escape
    cfg = ledger.config
    rows = []
    for r in ledger.rows:
        if r.skip == "push":
            skip = f"<span style='color:#2ca02c'>push {r.skip_channels}</span> &rarr; {r.stack}"
        elif r.skip == "pop":
            skip = f"<span style='color:#d62728'>pop {r.skip_channels}</span> &rarr; {r.stack}"
        else:
            skip = ""
        rows.append([e(r.stage), e(r.describe), e(str(r.input)), e(str(r.output)), skip])
    stages = _table(("stage", "layers", "input", "output", tr("skip stack (ch)")), rows)

    by_block = {}
    for a in ledger.attention:  # one row per block: its self- and cross-attention side by side
        by_block.setdefault(a.name, {})[a.kind] = a
    largest = ledger.largest_attention.nbytes or 1
    arows = []
    for name, pair in by_block.items():
        s, c = pair["self"], pair["cross"]
        bar = f"<div style='background:#9467bd;height:7px;width:{max(1, round(90 * s.nbytes / largest))}px'></div>"
        arows.append([e(name), f"{s.grid[0]}x{s.grid[1]}", f"{s.seq_len:,}",
                      f"{s.heads}x{s.seq_len}x{s.seq_len}", format_bytes(s.nbytes), bar,
                      f"{c.heads}x{c.seq_len}x{c.keys}", format_bytes(c.nbytes)])
    batch = f"batch {ledger.batch} x " if ledger.batch > 1 else ""
    attn = _table(("block", "grid", "L=H*W", tr(f"self: {batch}heads x L x L"), "memory", "",
                   tr(f"cross: {batch}heads x L x {next(a.keys for a in ledger.attention if a.kind == 'cross')}"), "memory"),
                  arows)
    big = ledger.largest_attention
    # two messages: `widths (320, 640, ...)` holds ", ", which would split a single key's values wrongly
    head = (tr(f"<b>image {ledger.height} x {ledger.width} px, batch {ledger.batch}</b>: latent "
               f"{ledger.height // 8} x {ledger.width // 8}, widths {cfg.channels}")
            + tr(f", {cfg.n_head} heads; memory counted in {str(ledger.dtype).replace('torch.', '')}"))
    total = tr(f"Largest attention matrix: <b>{format_bytes(big.nbytes)}</b> ({e(big.name)}, {big.kind}); all of them "
               f"together {format_bytes(ledger.attention_bytes)}. The explicit softmax(QK&#7488;)V path "
               "materialises one at a time; F.scaled_dot_product_attention never does.")
    return (f"<div style='font-size:12px;margin-bottom:4px'>{head}</div>"
            f"<div style='display:flex;gap:14px;flex-wrap:wrap;align-items:flex-start'>"
            f"<div>{stages}</div><div>{attn}<p style='max-width:560px;font-size:12px;line-height:1.4;margin:6px 0'>{total}</p></div></div>")


def render_ledger(ledger: Ledger) -> Figure:
    """The ledger as a picture: the stages (left) and the attention blocks with their sequence
    length and weight-matrix memory (right), as monospace text. What `ledger_html` shows, for places
    that show no HTML widget (a notebook's preview on GitHub)."""
    width = max(len(r.describe) for r in ledger.rows) + 1
    stage_lines = [f"{'stage':<14} {'layers':<{width}} {'input':<20} {'output':<20} skip stack"]
    for r in ledger.rows:
        skip = f"{r.skip} {r.skip_channels} -> {r.stack}" if r.skip else ""
        stage_lines.append(f"{r.stage:<14} {r.describe:<{width}} {str(r.input):<20} {str(r.output):<20} {skip}")
    attention_lines = [f"{'block':<14} {'grid':<8} {'L=H*W':>7}  {'self':>9}  {'cross':>9}"]
    by_block = {}
    for a in ledger.attention:  # one line per block: its self- and cross-attention side by side
        by_block.setdefault(a.name, {})[a.kind] = a
    for name, pair in by_block.items():
        first = next(iter(pair.values()))
        memory = {k: format_bytes(pair[k].nbytes) if k in pair else "" for k in ("self", "cross")}
        grid = f"{first.grid[0]}x{first.grid[1]}"
        attention_lines.append(f"{name:<14} {grid:<8} {first.seq_len:>7,}  {memory['self']:>9}  {memory['cross']:>9}")
    big = ledger.largest_attention
    # monospace text (DejaVu Sans Mono has no Chinese glyphs): the picture stays English
    title = (f"image {ledger.height} x {ledger.width} px, batch {ledger.batch}: latent {ledger.height // 8} x "
             f"{ledger.width // 8}; attention memory in {str(ledger.dtype).replace('torch.', '')}, largest "
             f"{format_bytes(big.nbytes)} ({big.name}, {big.kind})")
    size, char, line = 7.5, 0.6 * 7.5 / 72, 1.2 * 7.5 / 72  # font points; a character's width and a line's height in inches
    left = max(len(t) for t in stage_lines) * char + 0.3
    fig_w = left + max(len(t) for t in attention_lines) * char + 0.4
    fig_h = (max(len(stage_lines), len(attention_lines)) + 2.5) * line + 0.1
    fig = Figure(figsize=(fig_w, fig_h), dpi=100)
    top = 1 - 0.05 / fig_h
    fig.text(0.05 / fig_w, top, title, fontsize=size + 1, fontweight="bold", va="top", family="monospace")
    body = top - 2 * line / fig_h
    fig.text(0.05 / fig_w, body, "\n".join(stage_lines), fontsize=size, va="top", family="monospace", linespacing=1.2)
    fig.text(left / fig_w, body, "\n".join(attention_lines), fontsize=size, va="top", family="monospace",
             linespacing=1.2)
    return fig


# --------------------------------------------------------------------------- attention maps
def image_to_array(image) -> np.ndarray:
    """A sample image -> float (H, W, 3) in [0, 1].

    Accepts a torch tensor (3, H, W) or (1, 3, H, W) in [-1, 1] or [0, 1], a numpy (H, W, 3) /
    (H, W) array (uint8 or float), or a PIL image.
    """
    if hasattr(image, "convert") and not isinstance(image, (np.ndarray, torch.Tensor)):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]  # (1, C, H, W) -> (C, H, W)
        if x.ndim != 3 or x.shape[0] not in (1, 3):
            raise ValueError(tr(f"image: a tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}."))
        if x.min() < 0:
            x = (x + 1) / 2  # [-1, 1] -> [0, 1]
        arr = x.permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)
    else:
        arr = np.asarray(image)
        if arr.dtype == np.uint8:
            arr = arr / 255.0
        arr = arr.astype(float)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(tr(f"image: expected (H, W, 3), (H, W) or (3, H, W), got shape {arr.shape}."))
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)  # (H, W, 1) -> (H, W, 3)
    return np.clip(arr, 0.0, 1.0)


def attention_map(maps: AttentionMaps, token: int = 0, block: Optional[str] = None, groups=None, factors=None,
                  head: Optional[int] = None, timestep=None, time_reduce: str = "mean", normalize: str = "max",
                  query: Optional[Tuple[int, int]] = None, size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """The 2-D map a render shows -> (rows, cols).

    Cross-attention: the map of context token `token`, from one `block` or averaged over the recorded
    blocks of `groups`/`factors`, on a grid of `size` (default the finest grid among them).
    Self-attention: where latent pixel `query` looks, in one `block` (required).
    """
    if maps.kind == "cross":
        # (1, rows, cols) -> (rows, cols)
        return maps.token_maps([token], blocks=block, groups=groups, factors=factors, timestep=timestep, head=head,
                               time_reduce=time_reduce, size=size, normalize=normalize)[0]
    if block is None:
        raise ValueError(tr("attention_map: self-attention maps differ in size per block; pick a block."))
    return maps.query_map(block, query, timestep, head, time_reduce, normalize)


def _token_label(maps: AttentionMaps, token: int, tokens: Optional[Sequence[str]]) -> str:
    labels = tokens if tokens is not None else maps.tokens
    if labels is not None and 0 <= token < len(labels):
        return tr(f"token {token} {labels[token]!r}", figure=True)
    return tr(f"token {token}", figure=True)


SCALE_LABELS = {"none": "share of attention, as recorded", "max": "map / its max", "minmax": "stretched: min 0, max 1",
                "sum": "map / its sum"}


def _scale_label(normalize: str) -> str:
    """SCALE_LABELS[normalize] in the current language (figure text, read at draw time)."""
    return {"none": tr("share of attention, as recorded", figure=True), "max": tr("map / its max", figure=True),
            "minmax": tr("stretched: min 0, max 1", figure=True), "sum": tr("map / its sum", figure=True)}[normalize]


def color_limits(heat: torch.Tensor, normalize: str, time_reduce: str = "mean") -> Tuple[float, float]:
    """The colour scale of a map. Fixed at [0, 1] wherever the values are shares of attention (as
    recorded and averaged over the calls: "none"), or scaled into [0, 1] ("max", "minmax"), so the
    normalisation changes what you see: "none" shows how much of each pixel's attention the token
    takes, "max" the map's shape with its floor, "minmax" the shape stretched from 0. Otherwise
    (sums) [0, the map's max]."""
    if normalize in ("max", "minmax") or (normalize == "none" and time_reduce == "mean"):
        return 0.0, 1.0
    return 0.0, max(float(heat.max()), 1e-12)


def _overlay(ax, arr: np.ndarray, heat: torch.Tensor, alpha: float, limits: Tuple[float, float]) -> None:
    """Draw the map (upsampled bilinearly) over a grey copy of the image, on the colour scale `limits`."""
    up = torch.nn.functional.interpolate(heat[None, None].float(), size=arr.shape[:2], mode="bilinear",
                                         align_corners=False)[0, 0]  # (rows, cols) -> (H, W)
    grey = arr @ np.array([0.299, 0.587, 0.114])  # (H, W, 3) -> (H, W): colours would fight the colour map
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
    ax.imshow(up.numpy(), cmap="magma", alpha=alpha, vmin=limits[0], vmax=limits[1])


def render_attention(maps: AttentionMaps, token: int = 0, block: Optional[str] = None, groups=None, factors=None,
                     head: Optional[int] = None, timestep=None, time_reduce: str = "mean", normalize: str = "minmax",
                     query: Optional[Tuple[int, int]] = None, image=None, tokens: Optional[Sequence[str]] = None,
                     alpha: float = 0.6) -> Figure:
    """One attention map on its own grid; with `image`, also the sample and the map over it.

    Arguments as in `attention_map` (but normalize defaults to "minmax": the most contrast, see
    `color_limits`); `tokens` labels the context tokens; alpha is the overlay opacity.
    """
    heat = attention_map(maps, token, block, groups, factors, head, timestep, time_reduce, normalize, query)
    levels = ", ".join(maps.resolution_label(f) for f in (factors or maps.factors())) or tr("all blocks", figure=True)
    where = block if block is not None else tr(f"mean of {levels}", figure=True)
    what = (_token_label(maps, token, tokens) if maps.kind == "cross"
            else tr(f"query pixel {tuple(query) if query else maps.query}", figure=True))
    when = tr("all timesteps", figure=True) if timestep is None else f"t={timestep}"
    heads = tr("mean of heads", figure=True) if head is None else f"head {head}"
    panels = 3 if image is not None else 1
    fig = _figure(8 if image is not None else 4, 3.1)
    axes = np.atleast_1d(fig.subplots(1, panels))
    limits = color_limits(heat, normalize, time_reduce)
    shown = axes[0].imshow(heat.numpy(), cmap="magma", interpolation="nearest", vmin=limits[0], vmax=limits[1])
    bar = fig.colorbar(shown, ax=axes[0], shrink=0.75)
    bar.ax.tick_params(labelsize=7)
    bar.set_label(_scale_label(normalize), fontsize=7)
    if maps.kind == "self":
        r, c = maps.to_grid(block, query if query is not None else maps.query)
        axes[0].plot([c], [r], marker="+", color="cyan", ms=12, mew=2)
    rows, cols = heat.shape
    kind = tr("cross-attention" if maps.kind == "cross" else "self-attention", figure=True)
    axes[0].set_title(tr(f"{kind}, {what}\n{where}\n{heads}; {when}; {rows}x{cols} grid", figure=True), fontsize=8)
    if image is not None:
        arr = image_to_array(image)
        axes[1].imshow(arr, interpolation="nearest")
        axes[1].set_title("sample", fontsize=8)
        _overlay(axes[2], arr, heat, alpha, limits)
        axes[2].set_title(tr("map over the sample\n(same colour scale)", figure=True), fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def render_token_maps(maps: AttentionMaps, tokens: Optional[Sequence[int]] = None, labels: Optional[Sequence[str]] = None,
                      image=None, groups=None, factors=None, head: Optional[int] = None, timestep=None,
                      time_reduce: str = "mean", normalize: str = "minmax", alpha: float = 0.6) -> Figure:
    """One panel per context token: its cross-attention map (averaged over the chosen blocks),
    over the sample image when given. tokens: indices (default: all labelled tokens, at most 8)."""
    if maps.kind != "cross":
        raise ValueError(tr("render_token_maps: needs cross-attention maps (AttentionRecorder(kind='cross'))."))
    labels = labels if labels is not None else maps.tokens
    if tokens is None:
        count = len(labels) if labels is not None else maps.sums[next(iter(maps.sums))].shape[-1]
        tokens = list(range(min(count, 8)))
    tokens = list(tokens)
    heat = maps.token_maps(tokens, groups=groups, factors=factors, timestep=timestep, head=head,
                           time_reduce=time_reduce, normalize=normalize)  # (T, rows, cols)
    arr = image_to_array(image) if image is not None else None
    n = len(tokens) + (arr is not None)
    width = min(1.5 * n, 8)
    fig = _figure(width, width / n + 0.45)
    axes = np.atleast_1d(fig.subplots(1, n))
    if arr is not None:
        axes[0].imshow(arr, interpolation="nearest")
        axes[0].set_title("sample", fontsize=8)
    for ax, tok, h in zip(axes[n - len(tokens):], tokens, heat):
        limits = color_limits(h, normalize, time_reduce)
        if arr is not None:
            _overlay(ax, arr, h, alpha, limits)
        else:
            ax.imshow(h.numpy(), cmap="magma", interpolation="nearest", vmin=limits[0], vmax=limits[1])
        label = labels[tok] if labels is not None and 0 <= tok < len(labels) else str(tok)
        ax.set_title(label, fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
