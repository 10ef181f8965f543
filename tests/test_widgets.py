"""The widgets are thin: moving a control changes the picture, and the picture is the render function's.
Displayed without a kernel, each one shows a PNG of its picture, not `VBox(children=...)`."""
import base64
import hashlib

import ipywidgets as W
import numpy as np
import pytest
import torch

from sdcourse import Diffusion, UNetConfig, render, sinusoidal_embedding, widgets
from sdcourse.record import AttentionRecorder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def find(widget, cls, description=None):
    """All descendants of `widget` of type cls (and description), depth first."""
    found = []
    if isinstance(widget, cls) and (description is None or getattr(widget, "description", None) == description):
        found.append(widget)
    for child in getattr(widget, "children", ()):
        found += find(child, cls, description)
    return found


def test_time_embedding_view_redraws():
    view = widgets.time_embedding_view(dim=320, t_max=1000)
    assert isinstance(view, W.VBox) and isinstance(view, widgets.WidgetWithPreview)
    slider, = find(view, W.IntSlider)
    image, = find(view, W.Image)
    assert (slider.min, slider.max) == (0, 999)
    before = image.value
    slider.value = 10
    assert image.value != before and image.value[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="even"):
        widgets.time_embedding_view(dim=7)


def test_sequence_view_links_pixel_and_token():
    view = widgets.sequence_view(height=4, width=6, channels=32)
    row, = find(view, W.IntSlider, "row")
    col, = find(view, W.IntSlider, "col")
    token, = find(view, W.IntSlider, "token index")
    text, = find(view, W.HTML)
    image, = find(view, W.Image)
    before = image.value
    row.value, col.value = 2, 5
    assert token.value == 2 * 6 + 5
    assert "= 17" in text.value and image.value != before
    token.value = 7
    assert (row.value, col.value) == (1, 1)
    assert token.max == 23


def test_shape_ledger_updates():
    view = widgets.shape_ledger(UNetConfig.tiny())
    height, = find(view, W.IntSlider, "height (px)")
    batch, = find(view, W.IntSlider, "batch")
    table, = find(view, W.HTML)
    assert (height.min, height.max, height.step) == (64, 1024, 64)
    assert "(1, 4, 64, 64)" in table.value
    height.value, batch.value = 128, 3
    assert "(3, 4, 16, 64)" in table.value
    with pytest.raises(ValueError, match="UNetConfig"):
        widgets.shape_ledger(config={"channels": 3})


@pytest.fixture(scope="module")
def recorded():
    torch.manual_seed(0)
    cfg = UNetConfig.tiny()
    model = Diffusion(cfg).eval()
    latent = torch.randn(1, 4, 8, 8)
    context = torch.randn(2, 4, cfg.d_context)
    cross = AttentionRecorder(model, kind="cross", heads="all", per_timestep=True, cfg=True)
    selfa = AttentionRecorder(model, kind="self")
    with cross, selfa:
        for t in (900, 400):
            model(torch.cat([latent, latent]), context, sinusoidal_embedding(t, cfg.n_time_embd))
    return cross, selfa


def test_attention_explorer_cross(recorded):
    cross, _ = recorded
    view = widgets.attention_explorer(cross, image=torch.rand(3, 64, 64), tokens=["<start>", "red", "circle", "<end>"])
    image, = find(view, W.Image)
    token, = find(view, W.Dropdown, "token")
    block, = find(view, W.Dropdown, "block")
    head, = find(view, W.Dropdown, "head")
    timestep, = find(view, W.Dropdown, "timestep")
    boxes = find(view, W.Checkbox)
    assert not find(view, W.Dropdown, "over time")  # mean vs sum only rescaled the colour bar: no such control
    assert [label for label, _ in token.options] == ["0: <start>", "1: red", "2: circle", "3: <end>"]
    assert [label for label, _ in timestep.options] == ["all (aggregate)", "t = 900", "t = 400"]
    assert None not in [v for _, v in token.options + block.options + head.options + timestep.options]
    assert len(head.options) == 1 + 4 and len(boxes) == 4  # H/8 .. H/64
    pictures = {image.value}
    for control, value in ((token, 2), (block, "mid (H/64)"), (head, 3), (timestep, 400)):
        control.value = value
        pictures.add(image.value)
    assert len(pictures) == 5  # every change drew something new
    block.value = "(all)"
    for box in boxes:
        box.value = False  # no resolution ticked: an explanation, not an exception
    status = [h for h in find(view, W.HTML) if "no recorded block" in h.value]
    assert status


def test_attention_explorer_self_and_plain_weights(recorded):
    _, selfa = recorded
    view = widgets.attention_explorer(selfa)
    row, = find(view, W.IntSlider, "query row")
    image, = find(view, W.Image)
    before = image.value
    row.value = 0
    assert image.value != before
    plain = widgets.attention_explorer(torch.rand(2, 16, 5).softmax(-1))
    assert find(plain, W.Image)[0].value[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="AttentionRecorder"):
        widgets.attention_explorer("maps")


# ----------------------------------------------------------------------------- every control shows something
def visible(fig) -> str:
    """A digest of what a figure shows: the colours of its images (colour-bar tick labels excluded)."""
    digest = hashlib.sha256()
    for ax in fig.axes:
        for im in ax.get_images():
            digest.update(np.ascontiguousarray(im.to_rgba(im.get_array(), bytes=True)).tobytes())
    return digest.hexdigest()


def controls_of(view):
    return [c for c in find(view, W.Dropdown) + find(view, W.IntSlider) + find(view, W.Checkbox)]


def other_value(control):
    if isinstance(control, W.Checkbox):
        return not control.value
    if isinstance(control, W.IntSlider):
        return control.value - 1 if control.value > control.min else control.value + 1
    values = [v for _, v in control.options]
    return next(v for v in values if v != control.value)


@pytest.mark.parametrize("kind", ["cross", "self"])
def test_every_attention_control_changes_what_is_shown(recorded, monkeypatch, kind):
    """Each control, moved alone from the first view, changes the colours drawn (not just a colour-bar label)."""
    drawn = []
    original = render.render_attention
    monkeypatch.setattr(render, "render_attention", lambda *a, **k: drawn.append(original(*a, **k)) or drawn[-1])
    cross, selfa = recorded
    source = cross if kind == "cross" else selfa
    for i in range(len(controls_of(widgets.attention_explorer(source)))):
        view = widgets.attention_explorer(source, image=torch.rand(3, 64, 64))
        control = controls_of(view)[i]
        first = visible(drawn[-1])
        control.value = other_value(control)
        assert visible(drawn[-1]) != first, f"{kind}: moving {control.description!r} changed nothing visible"
    assert {c.description for c in controls_of(view)} >= ({"block", "token", "head", "timestep", "colour scale"}
                                                         if kind == "cross" else {"block", "query row", "query col"})


def test_resolutions_are_disabled_while_one_block_is_chosen(recorded):
    cross, _ = recorded
    view = widgets.attention_explorer(cross)
    block, = find(view, W.Dropdown, "block")
    boxes = find(view, W.Checkbox)
    assert not any(b.disabled for b in boxes)
    block.value = "mid (H/64)"
    assert all(b.disabled for b in boxes)


def test_the_timestep_choices_are_those_recorded():
    cfg = UNetConfig.tiny()
    model = Diffusion(cfg).eval()
    latent, context = torch.randn(1, 4, 8, 8), torch.randn(1, 3, cfg.d_context)
    with AttentionRecorder(model, per_timestep=True, timesteps=[700]) as rec:
        for t in (900, 700, 500):
            model(latent, context, sinusoidal_embedding(t, cfg.n_time_embd))
    timestep, = find(widgets.attention_explorer(rec), W.Dropdown, "timestep")
    assert [v for _, v in timestep.options] == ["(all)", 700]


# ----------------------------------------------------------------------------- pictures without a kernel
def test_every_widget_displays_a_png_beside_the_live_view(recorded):
    """The display bundle of each widget: the live view (for JupyterLab/Colab), a PNG of what it shows (for
    GitHub/nbviewer previews) and one line of text instead of `VBox(children=...)`."""
    cross, selfa = recorded
    views = {
        "time_embedding_view": widgets.time_embedding_view(),
        "sequence_view": widgets.sequence_view(4, 4, 8),
        "shape_ledger": widgets.shape_ledger(UNetConfig.tiny(), height=128, width=64),
        "attention_explorer": widgets.attention_explorer(cross),
    }
    for name, view in views.items():
        bundle = view._repr_mimebundle_()
        assert bundle[widgets.WIDGET_VIEW]["model_id"] == view.model_id, name
        png = base64.b64decode(bundle["image/png"])
        assert png[:8] == PNG_SIGNATURE and len(png) > 2000, name
        assert bundle["text/plain"].startswith(name) and "VBox" not in bundle["text/plain"], name
        pictures = find(view, W.Image)
        if pictures:  # the PNG is what the widget shows
            assert png == pictures[0].value, name
    # the ledger's PNG is the table of the ledger displayed (tiny model, 128x64 px: 8 stages down to 2x1)
    assert "(1, 4, 16, 8)" in find(views["shape_ledger"], W.HTML)[0].value


def test_ipywidgets_7_display_path_gives_the_same_bundle(monkeypatch):
    """ipywidgets 7 (Colab) displays widgets through `_ipython_display_`; run that path on this install."""
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda data, raw=False: shown.append((data, raw)))
    view = widgets.time_embedding_view()
    view._model_id = view.model_id  # where ipywidgets 7 keeps the id
    called = []
    view._handle_displayed = lambda **kw: called.append(kw)  # ipywidgets 7 runs the display callbacks
    widgets._display_as_ipywidgets7(view)
    (data, raw), = shown
    assert raw and data[widgets.WIDGET_VIEW]["model_id"] == view.model_id and called == [{}]
    assert base64.b64decode(data["image/png"]) == find(view, W.Image)[0].value
    assert data["text/plain"].startswith("time_embedding_view")
    assert hasattr(widgets.WidgetWithPreview, "_ipython_display_") == hasattr(W.Widget, "_ipython_display_")
