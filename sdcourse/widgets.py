"""Thin ipywidgets wrappers around `sdcourse.render`: controls on top, a picture below.

Each function returns one widget (a VBox); show it by leaving it as the cell's last value.
Only core widgets are used (sliders, dropdowns, checkboxes, HTML, Image), so they work with
ipywidgets 7.7 (Colab) and 8.x without ipympl or any JavaScript from the internet. Every change
of a control recomputes the picture with a pure render function and swaps it into an Image (PNG)
or HTML widget.

    time_embedding_view()                  # 01: a timestep slider, the 320-vector, similarities
    sequence_view(8, 8, 320)               # 04: pixel (row, col) <-> token index
    shape_ledger()                         # 05: shapes, skip stack, attention sizes at any size
    attention_explorer(recorder, image=x, tokens=["<start>", "red", "circle", "<end>"])  # 04, 07, 08
"""
from __future__ import annotations

from typing import Optional, Sequence

import ipywidgets as W
import torch

from . import render
from .record import NORMALIZATIONS, AttentionMaps, AttentionRecorder
from .shapes import trace
from .unet import UNetConfig

_ALL = "(all)"  # the dropdown value meaning "no choice: mean/aggregate"


def _image(fig) -> W.Image:
    picture = W.Image(format="png")
    _set_image(picture, fig)
    return picture


def _set_image(widget: W.Image, fig) -> None:
    """Show a Figure in an Image widget at its own pixel size (not stretched to the cell's width)."""
    widget.value = render.figure_to_png(fig)
    widget.layout.width = f"{int(fig.get_figwidth() * fig.dpi)}px"


def _slider(description: str, value: int, low: int, high: int, step: int = 1, width: str = "420px") -> W.IntSlider:
    return W.IntSlider(value=value, min=low, max=high, step=step, description=description, continuous_update=False,
                       style={"description_width": "110px"}, layout=W.Layout(width=width))


def _dropdown(description: str, options, value=None, width: str = "420px") -> W.Dropdown:
    kwargs = {} if value is None else {"value": value}
    return W.Dropdown(options=options, description=description, style={"description_width": "110px"},
                      layout=W.Layout(width=width), **kwargs)


# --------------------------------------------------------------------------- 01: time embedding
def time_embedding_view(dim: int = 320, t_max: int = 1000, t: int = 500) -> W.VBox:
    """A timestep slider; below, the dim-vector of sinusoidal_embedding(t) and its cosine
    similarity to every other timestep (computed on sdcourse.default_device())."""
    if not isinstance(dim, int) or dim <= 0 or dim % 2:
        raise ValueError(f"time_embedding_view: dim must be a positive even int (half cos, half sin), got {dim!r}.")
    if not isinstance(t_max, int) or t_max < 2:
        raise ValueError(f"time_embedding_view: t_max must be an int >= 2 (SD uses 1000), got {t_max!r}.")
    slider = _slider("timestep t", min(t, t_max - 1), 0, t_max - 1)
    picture = _image(render.render_time_embedding(slider.value, dim, t_max))

    def redraw(change=None):
        _set_image(picture, render.render_time_embedding(slider.value, dim, t_max))

    slider.observe(redraw, names="value")
    return W.VBox([slider, picture])


# --------------------------------------------------------------------------- 04: image as a sequence
def sequence_view(height: int = 8, width: int = 8, channels: int = 320) -> W.VBox:
    """Pick a pixel (row, col) of a (B, channels, height, width) map and see its token index in
    the (B, height*width, channels) sequence, or pick the token and see the pixel."""
    render._check_grid(height, width, channels)
    row = _slider("row", 0, 0, height - 1)
    col = _slider("col", 0, 0, width - 1)
    token = _slider("token index", 0, 0, height * width - 1)
    text = W.HTML()
    picture = _image(render.render_sequence(height, width, channels, 0, 0))
    busy = {"now": False}  # one change moves the other controls; don't let them answer back

    def show():
        text.value = (f"pixel (row {row.value}, col {col.value}) &harr; token "
                      f"<b>{row.value} * {width} + {col.value} = {token.value}</b>")
        _set_image(picture, render.render_sequence(height, width, channels, row.value, col.value))

    def from_pixel(change=None):
        if busy["now"]:
            return
        busy["now"] = True
        token.value = render.sequence_index(row.value, col.value, width)
        busy["now"] = False
        show()

    def from_token(change=None):
        if busy["now"]:
            return
        busy["now"] = True
        row.value, col.value = render.sequence_pixel(token.value, width)
        busy["now"] = False
        show()

    row.observe(from_pixel, names="value")
    col.observe(from_pixel, names="value")
    token.observe(from_token, names="value")
    show()
    return W.VBox([W.HBox([W.VBox([row, col]), W.VBox([token, text])]), picture])


# --------------------------------------------------------------------------- 05: shape ledger
def shape_ledger(config: Optional[UNetConfig] = None, height: int = 512, width: int = 512, batch: int = 1) -> W.VBox:
    """Image height/width (multiples of 64 up to 1024), batch and dtype -> the shape ledger of
    Diffusion(config) traced on the meta device: every stage's shapes, the skip stack, and each
    attention block's sequence length and weight-matrix memory."""
    config = config or UNetConfig()
    if not isinstance(config, UNetConfig):
        raise ValueError(f"shape_ledger: config must be an sdcourse.UNetConfig (or None for SD v1), got {type(config).__name__}.")
    h = _slider("height (px)", height, 64, 1024, 64, "360px")
    w = _slider("width (px)", width, 64, 1024, 64, "360px")
    b = _slider("batch", batch, 1, 8, 1, "360px")
    dtype = _dropdown("dtype", [("float32", torch.float32), ("float16", torch.float16)], torch.float32, "360px")
    table = W.HTML()

    def redraw(change=None):
        table.value = render.ledger_html(trace(config, h.value, w.value, b.value, dtype=dtype.value))

    for control in (h, w, b, dtype):
        control.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([W.VBox([h, w]), W.VBox([b, dtype])]), table])


# --------------------------------------------------------------------------- 04/07/08: attention
def _as_maps(source) -> AttentionMaps:
    if isinstance(source, AttentionRecorder):
        return source.maps
    if isinstance(source, AttentionMaps):
        return source
    if isinstance(source, (dict, torch.Tensor)):
        return AttentionMaps.from_weights(source)
    raise ValueError(
        f"attention_explorer: expected an AttentionRecorder, AttentionMaps, a dict of weights or a weights tensor, "
        f"got {type(source).__name__}. Record with sdcourse.record.AttentionRecorder(model) first."
    )


def attention_explorer(recorder_or_maps, image=None, tokens: Optional[Sequence[str]] = None) -> W.VBox:
    """Explore recorded attention.

    recorder_or_maps: an AttentionRecorder (after recording), its AttentionMaps, or plain weights
        (a (B,H,Lq,Lk)/(H,Lq,Lk)/(Lq,Lk) tensor or a dict name -> tensor, read as cross-attention).
    image: the sample to overlay (tensor (3,H,W) in [-1,1] or [0,1], numpy (H,W,3), or PIL).
    tokens: labels of the context tokens, e.g. ["<start>", "a", "red", "circle", "<end>"].

    Controls: block (one, or the mean of the chosen resolutions), head (or mean over heads),
    token (cross) or query pixel (self), timestep (when recorded per timestep) or all, how the
    timesteps are combined (mean/sum) and the normalisation of the map.
    """
    maps = _as_maps(recorder_or_maps)
    names = maps.names()
    if not names:
        raise ValueError("attention_explorer: nothing was recorded. Run the model inside `with recorder:` first.")
    if image is not None:
        render.image_to_array(image)  # check it now, not on the first redraw
    labels = list(tokens) if tokens is not None else maps.tokens
    n_keys = maps.sums[next(iter(maps.sums))].shape[-1]
    controls = {}
    # Dropdown values are strings or ints, never None (ipywidgets shows a None value as an empty box)
    if maps.kind == "cross":
        controls["block"] = _dropdown("block", [("mean of ticked resolutions", _ALL)] + [(n, n) for n in names])
        factor_boxes = [W.Checkbox(value=True, description=f"H/{f}", indent=False, layout=W.Layout(width="64px"))
                        for f in maps.factors()]
        options = [(f"{i}: {labels[i]}" if labels is not None and i < len(labels) else f"{i}", i) for i in range(n_keys)]
        controls["token"] = _dropdown("token", options, 1 if n_keys > 1 else 0)
    else:
        controls["block"] = _dropdown("block", [(n, n) for n in names])
        factor_boxes = []
        h, w = maps.latent_hw or maps.blocks[names[0]].grid
        if maps.query is None:
            controls["row"] = _slider("query row", h // 2, 0, h - 1)
            controls["col"] = _slider("query col", w // 2, 0, w - 1)
    head_options = [("mean over heads", _ALL)]
    if maps.heads == "all":
        head_options += [(f"head {i}", i) for i in range(maps.n_heads)]
    controls["head"] = _dropdown("head", head_options, width="300px")
    time_options = [("all (aggregate)", _ALL)] + ([(f"t = {t}", t) for t in maps.timesteps] if maps.per_timestep else [])
    controls["timestep"] = _dropdown("timestep", time_options, width="300px")
    controls["time_reduce"] = _dropdown("over time", [("mean of the steps", "mean"), ("sum of the steps", "sum")],
                                        "mean", width="300px")
    controls["normalize"] = _dropdown("normalise", [(f"map / {n}" if n in ("max", "sum") else n, n) for n in NORMALIZATIONS],
                                      "max", width="300px")
    status = W.HTML()
    picture = W.Image(format="png")

    def arguments():
        kw = {k: controls[k].value for k in ("block", "head", "timestep", "time_reduce", "normalize")}
        kw = {k: (None if v == _ALL else v) for k, v in kw.items()}
        if maps.kind == "cross":
            kw["token"] = controls["token"].value
            if factor_boxes:  # blocks outside a UNET have no resolution to choose
                kw["factors"] = [f for f, box in zip(maps.factors(), factor_boxes) if box.value]
        elif "row" in controls:
            kw["query"] = (controls["row"].value, controls["col"].value)
        return kw

    def redraw(change=None):
        try:
            fig = render.render_attention(maps, image=image, tokens=labels, **arguments())
        except ValueError as err:  # e.g. no resolution ticked: say so instead of failing silently
            status.value = f"<span style='color:#d62728'>{err}</span>"
            return
        status.value = ""
        _set_image(picture, fig)

    for control in list(controls.values()) + factor_boxes:
        control.observe(redraw, names="value")
    redraw()
    left = [controls["block"]]
    if factor_boxes:
        label = W.HTML("<div style='text-align:right;padding-right:10px'>resolutions</div>", layout=W.Layout(width="118px"))
        left.append(W.HBox([label] + factor_boxes))
    left += [controls[k] for k in ("token", "row", "col") if k in controls]
    right = [controls[k] for k in ("head", "timestep", "time_reduce", "normalize")]
    return W.VBox([W.HBox([W.VBox(left), W.VBox(right)]), status, picture])
