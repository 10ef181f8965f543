"""Thin ipywidgets wrappers around `sdcourse.render`: controls on top, a picture below.

Each function returns one widget (a `WidgetWithPreview`, a VBox); show it by leaving it as the
cell's last value. Only core widgets are used (sliders, dropdowns, checkboxes, HTML, Image), so
they work with ipywidgets 7.7 (Colab) and 8.x without ipympl or any JavaScript from the internet.
Every change of a control recomputes the picture with a pure render function and swaps it into
an Image (PNG) or HTML widget.

Where no kernel runs (GitHub's and nbviewer's previews, Colab before "Run"), a widget's live view
cannot be drawn: the saved output then shows its fallback. Ours carries a PNG of the widget's
picture as it was displayed, and one line of text, instead of `VBox(children=...)`.

    time_embedding_view()                  # 01: a timestep slider, the 320-vector, similarities
    sequence_view(8, 8, 320)               # 04: pixel (row, col) <-> token index
    shape_ledger()                         # 05: shapes, skip stack, attention sizes at any size
    attention_explorer(recorder, image=x, tokens=["<start>", "red", "circle", "<end>"])  # 04, 07, 08
"""
from __future__ import annotations

import base64
from typing import Callable, Optional, Sequence

import ipywidgets as W
import torch

from . import render
from .blocks import sequence_index, sequence_pixel
from .record import AttentionMaps, AttentionRecorder
from .shapes import trace
from .unet import UNetConfig
from .i18n import tr

_ALL = "(all)"  # the dropdown value meaning "no choice: mean/aggregate"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _display_as_ipywidgets7(widget: "WidgetWithPreview", **kwargs) -> None:
    """What ipywidgets 7's `Widget._ipython_display_` does (display the view's mimetype raw, then run
    the display callbacks), with the static fallback added to the bundle."""
    from IPython.display import display

    data = widget.fallback()
    if widget._view_name is not None:
        data[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": widget._model_id}
    display(data, raw=True)
    if widget._view_name is not None:
        widget._handle_displayed(**kwargs)


class WidgetWithPreview(W.VBox):
    """A VBox whose display carries, beside the live widget view, a static PNG of its picture and
    one line of text.

    preview: returns the PNG bytes of what the widget shows now (called when it is displayed).
    summary: the text/plain line (what a text-only viewer prints).

    A front end with a widget manager (JupyterLab, Notebook, Colab) draws the live view, which
    ranks first; one without (GitHub, nbviewer, a notebook opened without its kernel) picks the
    PNG. ipywidgets 8 asks `_repr_mimebundle_`; ipywidgets 7 (Colab ships 7.7.1) displays a
    widget through `_ipython_display_`, which IPython consults before any _repr_ method, so under
    7 that one is replaced too. Both give the same bundle.
    """

    def __init__(self, children, preview: Callable[[], bytes], summary: str, **kwargs):
        super().__init__(children, **kwargs)
        self._preview = preview
        self._summary = summary

    def fallback(self) -> dict:
        """{"image/png": base64 text, "text/plain": the summary}: what a viewer without a kernel shows."""
        return {"image/png": base64.b64encode(self._preview()).decode("ascii"), "text/plain": self._summary}

    def _repr_mimebundle_(self, **kwargs):
        live = getattr(super(), "_repr_mimebundle_", None)  # ipywidgets 8; under 7 only a closed widget gets here
        return {**((live(**kwargs) if live is not None else None) or {}), **self.fallback()}

    if hasattr(W.Widget, "_ipython_display_"):  # ipywidgets 7
        _ipython_display_ = _display_as_ipywidgets7


def _summary(call: str, shows: str) -> str:
    return tr(f"{call}: a live widget ({shows}). Run the notebook to move its controls; the picture is its first view.")


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
def time_embedding_view(dim: int = 320, t_max: int = 1000, t: int = 500) -> WidgetWithPreview:
    """A timestep slider; below, the dim-vector of sinusoidal_embedding(t) and its cosine
    similarity to every other timestep (computed on sdcourse.default_device())."""
    if not isinstance(dim, int) or dim <= 0 or dim % 2:
        raise ValueError(tr(f"time_embedding_view: dim must be a positive even int (half cos, half sin), got {dim!r}."))
    if not isinstance(t_max, int) or t_max < 2:
        raise ValueError(tr(f"time_embedding_view: t_max must be an int >= 2 (SD uses 1000), got {t_max!r}."))
    slider = _slider(tr("timestep t"), min(t, t_max - 1), 0, t_max - 1)
    picture = _image(render.render_time_embedding(slider.value, dim, t_max))

    def redraw(change=None):
        _set_image(picture, render.render_time_embedding(slider.value, dim, t_max))

    slider.observe(redraw, names="value")
    return WidgetWithPreview([slider, picture], lambda: picture.value,
                             _summary("time_embedding_view", tr("a timestep slider and the embedding of t")))


# --------------------------------------------------------------------------- 04: image as a sequence
def sequence_view(height: int = 8, width: int = 8, channels: int = 320) -> WidgetWithPreview:
    """Pick a pixel (row, col) of a (B, channels, height, width) map and see its token index in
    the (B, height*width, channels) sequence, or pick the token and see the pixel."""
    render._check_grid(height, width, channels)
    row = _slider(tr("row"), 0, 0, height - 1)
    col = _slider(tr("col"), 0, 0, width - 1)
    token = _slider(tr("token index"), 0, 0, height * width - 1)
    text = W.HTML()
    picture = _image(render.render_sequence(height, width, channels, 0, 0))
    busy = {"now": False}  # one change moves the other controls; don't let them answer back

    def show():
        text.value = tr(f"pixel (row {row.value}, col {col.value}) &harr; token "
                         f"<b>{row.value} * {width} + {col.value} = {token.value}</b>")
        _set_image(picture, render.render_sequence(height, width, channels, row.value, col.value))

    def from_pixel(change=None):
        if busy["now"]:
            return
        busy["now"] = True
        token.value = sequence_index(row.value, col.value, width)
        busy["now"] = False
        show()

    def from_token(change=None):
        if busy["now"]:
            return
        busy["now"] = True
        row.value, col.value = sequence_pixel(token.value, width)
        busy["now"] = False
        show()

    row.observe(from_pixel, names="value")
    col.observe(from_pixel, names="value")
    token.observe(from_token, names="value")
    show()
    return WidgetWithPreview([W.HBox([W.VBox([row, col]), W.VBox([token, text])]), picture], lambda: picture.value,
                             _summary("sequence_view", tr("pixel (row, col) <-> token index")))


# --------------------------------------------------------------------------- 05: shape ledger
def shape_ledger(config: Optional[UNetConfig] = None, height: int = 512, width: int = 512,
                 batch: int = 1) -> WidgetWithPreview:
    """Image height/width (multiples of 64 up to 1024), batch and dtype -> the shape ledger of
    Diffusion(config) traced on the meta device: every stage's shapes, the skip stack, and each
    attention block's sequence length and weight-matrix memory."""
    config = config or UNetConfig()
    if not isinstance(config, UNetConfig):
        raise ValueError(tr(f"shape_ledger: config must be an sdcourse.UNetConfig (or None for SD v1), got {type(config).__name__}."))
    h = _slider(tr("height (px)"), height, 64, 1024, 64, "360px")
    w = _slider(tr("width (px)"), width, 64, 1024, 64, "360px")
    b = _slider(tr("batch"), batch, 1, 8, 1, "360px")
    dtype = _dropdown("dtype", [("float32", torch.float32), ("float16", torch.float16)], torch.float32, "360px")
    table = W.HTML()

    def ledger():
        return trace(config, h.value, w.value, b.value, dtype=dtype.value)

    def redraw(change=None):
        table.value = render.ledger_html(ledger())

    def preview() -> bytes:  # the table as a picture, drawn only when the widget is displayed
        return render.figure_to_png(render.render_ledger(ledger()))

    for control in (h, w, b, dtype):
        control.observe(redraw, names="value")
    redraw()
    return WidgetWithPreview([W.HBox([W.VBox([h, w]), W.VBox([b, dtype])]), table], preview,
                             _summary("shape_ledger", tr("image size, batch and dtype -> every stage's shapes")))


# --------------------------------------------------------------------------- 04/07/08: attention
# the colour scale choices: each one looks different (render.color_limits); "sum" would only relabel "max"
NORMALISE_OPTIONS = [("shares as recorded (0..1)", "none"), ("map / its max", "max"), ("stretched min..max", "minmax")]


def _normalise_options():
    """NORMALISE_OPTIONS with their labels in the current language (read when a widget is built)."""
    return [(tr("shares as recorded (0..1)"), "none"), (tr("map / its max"), "max"), ("stretched min..max", "minmax")]


def _as_maps(source) -> AttentionMaps:
    if isinstance(source, AttentionRecorder):
        return source.maps
    if isinstance(source, AttentionMaps):
        return source
    if isinstance(source, (dict, torch.Tensor)):
        return AttentionMaps.from_weights(source)
    raise ValueError(
        tr(f"attention_explorer: expected an AttentionRecorder, AttentionMaps, a dict of weights or a weights tensor, "
           f"got {type(source).__name__}. Record with sdcourse.record.AttentionRecorder(model) first.")
    )


def attention_explorer(recorder_or_maps, image=None, tokens: Optional[Sequence[str]] = None) -> WidgetWithPreview:
    """Explore recorded attention.

    recorder_or_maps: an AttentionRecorder (after recording), its AttentionMaps, or plain weights
        (a (B,H,Lq,Lk)/(H,Lq,Lk)/(Lq,Lk) tensor or a dict name -> tensor, read as cross-attention).
    image: the sample to overlay (tensor (3,H,W) in [-1,1] or [0,1], numpy (H,W,3), or PIL).
    tokens: labels of the context tokens, e.g. ["<start>", "a", "red", "circle", "<end>"].

    Controls: block (one, or the mean of the chosen resolutions), head (or mean over heads),
    token (cross) or query pixel (self), timestep (when recorded per timestep) or all, and the
    normalisation of the map, on a fixed colour scale so that each choice shows differently (see
    `render.color_limits`). Every control changes the picture; the recorded calls are averaged
    (a sum over the timesteps would only rescale the colour bar, so there is no control for it).
    """
    maps = _as_maps(recorder_or_maps)
    names = maps.names()
    if not names:
        raise ValueError(tr("attention_explorer: nothing was recorded. Run the model inside `with recorder:` first."))
    if image is not None:
        render.image_to_array(image)  # check it now, not on the first redraw
    labels = list(tokens) if tokens is not None else maps.tokens
    n_keys = maps.sums[next(iter(maps.sums))].shape[-1]
    controls = {}
    # Dropdown values are strings or ints, never None (ipywidgets shows a None value as an empty box)
    if maps.kind == "cross":
        controls["block"] = _dropdown(tr("block"), [(tr("mean of ticked resolutions"), _ALL)] + [(n, n) for n in names])
        factor_boxes = [W.Checkbox(value=True, description=maps.resolution_label(f), indent=False, layout=W.Layout(width="64px"))
                        for f in maps.factors()]
        options = [(f"{i}: {labels[i]}" if labels is not None and i < len(labels) else f"{i}", i) for i in range(n_keys)]
        controls["token"] = _dropdown(tr("token"), options, 1 if n_keys > 1 else 0)
    else:
        controls["block"] = _dropdown(tr("block"), [(n, n) for n in names])
        factor_boxes = []
        h, w = maps.latent_hw or maps.blocks[names[0]].grid
        if maps.query is None:
            controls["row"] = _slider(tr("query row"), h // 2, 0, h - 1)
            controls["col"] = _slider(tr("query col"), w // 2, 0, w - 1)
    if maps.heads == "all":  # heads averaged while recording: nothing to choose
        head_options = [(tr("mean over heads"), _ALL)] + [(f"head {i}", i) for i in range(maps.n_heads)]
        controls["head"] = _dropdown(tr("head"), head_options, width="300px")
    # the timesteps that hold maps (a `timesteps=` filter records fewer than were seen), in the order seen
    kept = [t for t in dict.fromkeys(maps.timesteps) if any((n, t) in maps.sums for n in names)]
    time_options = [(tr("all (aggregate)"), _ALL)] + ([(f"t = {t}", t) for t in kept] if maps.per_timestep else [])
    if len(time_options) > 1:  # one choice is no control
        controls["timestep"] = _dropdown(tr("timestep"), time_options, width="300px")
    controls["normalize"] = _dropdown(tr("colour scale"), _normalise_options(), "minmax", width="300px")  # most contrast
    status = W.HTML()
    picture = W.Image(format="png")

    def arguments():
        kw = {k: controls[k].value for k in ("block", "head", "timestep", "normalize") if k in controls}
        kw = {k: (None if v == _ALL else v) for k, v in kw.items()}
        if maps.kind == "cross":
            kw["token"] = controls["token"].value
            if factor_boxes:  # blocks outside a UNET have no resolution to choose
                kw["factors"] = [f for f, box in zip(maps.factors(), factor_boxes) if box.value]
        elif "row" in controls:
            kw["query"] = (controls["row"].value, controls["col"].value)
        return kw

    def redraw(change=None):
        for box in factor_boxes:  # the resolutions choose blocks only for the mean
            box.disabled = controls["block"].value != _ALL
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
    right = [controls[k] for k in ("head", "timestep", "normalize") if k in controls]
    return WidgetWithPreview([W.HBox([W.VBox(left), W.VBox(right)]), status, picture], lambda: picture.value,
                             _summary("attention_explorer", tr(f"recorded {maps.kind}-attention, block by block")))
