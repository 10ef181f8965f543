"""The widgets are thin: moving a control changes the picture, and the picture is the render function's."""
import ipywidgets as W
import pytest
import torch

from sdcourse import Diffusion, UNetConfig, sinusoidal_embedding, widgets
from sdcourse.record import AttentionRecorder


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
    assert isinstance(view, W.VBox)
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
