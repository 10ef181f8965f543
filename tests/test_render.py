"""Render functions: the data behind each picture, checked against formulas and torch itself."""
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from sdcourse import render
from sdcourse.record import AttentionMaps
from sdcourse.shapes import trace


def test_time_embedding_data_matches_the_formula():
    data = render.time_embedding_data(37, dim=8, t_max=50, device="cpu")
    # dim 8: half = 4 frequencies 10000^(-i/4), cos first then sin
    freqs = [10000 ** (-i / 4) for i in range(4)]
    expected = [math.cos(37 * f) for f in freqs] + [math.sin(37 * f) for f in freqs]
    assert torch.allclose(data["vector"], torch.tensor(expected), atol=1e-5)
    sim = data["similarity"]
    assert sim.shape == (50,)
    assert abs(sim[37].item() - 1.0) < 1e-5 and sim.max().item() <= 1 + 1e-5
    # cosine similarity by hand for another timestep
    other = torch.tensor([math.cos(3 * f) for f in freqs] + [math.sin(3 * f) for f in freqs])
    cos = torch.nn.functional.cosine_similarity(other, torch.tensor(expected), dim=0)
    assert abs(sim[3].item() - cos.item()) < 1e-5
    # nearby timesteps are more alike than far ones (at SD's size)
    full = render.time_embedding_data(500, device="cpu")["similarity"]
    assert full[501] > full[600] > full[900]


def test_render_time_embedding_is_a_figure():
    fig = render.render_time_embedding(250)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert "t=250" in fig.axes[0].get_title()
    png = render.figure_to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert render.figure_to_png(render.render_time_embedding(250)) == png  # the same bytes every time
    with pytest.raises(ValueError, match="t must be"):
        render.time_embedding_data(1000)


def test_sequence_index_is_what_the_reshape_does():
    b, c, h, w = 1, 3, 5, 7
    x = torch.zeros(b, c, h, w)
    for row, col in [(0, 0), (2, 3), (4, 6), (1, 6)]:
        x.zero_()
        x[0, :, row, col] = 1.0
        seq = x.view(b, c, h * w).transpose(1, 2)  # (B, C, H, W) -> (B, H*W, C), as in UNET_AttentionBlock
        index = int(seq[0, :, 0].argmax())
        assert render.sequence_index(row, col, w) == index
        assert render.sequence_pixel(index, w) == (row, col)
    with pytest.raises(ValueError, match="outside"):
        render.sequence_index(0, 7, 7)


def test_render_sequence_marks_the_token():
    fig = render.render_sequence(8, 8, 320, row=2, col=5)
    assert len(fig.axes) == 2
    assert "token 21" in fig.axes[1].get_title()
    assert "(B, 320, 8, 8)" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="outside"):
        render.render_sequence(8, 8, 320, row=8, col=0)
    with pytest.raises(ValueError, match="at most 64x64"):
        render.render_sequence(128, 128, 4)


def test_ledger_html_lists_every_stage_and_attention_block():
    ledger = trace(height=256, width=320, batch=2)
    page = render.ledger_html(ledger)
    # one row per stage, one per attention block (self and cross side by side), two header rows
    assert page.count("<tr>") == len(ledger.rows) + len(ledger.attention) // 2 + 2
    assert "(2, 2560, 4, 5)" in page  # decoders.0 input: 1280 + 1280 skip channels at H/64
    assert page.count("push ") == 12 and page.count("pop ") == 12
    assert "8x1280x1280" in page  # self-attention at H/8: L = 32*40 = 1280
    assert "8x1280x77" in page and "100.0 MiB" in page  # 2 * 8 * 1280^2 * 4 bytes
    assert "Res 320→320 + Attn 8×40" in page  # the layers of encoders.1, read from the modules


def test_ledger_picture_shows_the_same_rows():
    ledger = trace(height=256, width=320, batch=2)
    fig = render.render_ledger(ledger)
    text = "\n".join(t.get_text() for t in fig.texts)
    assert text.count("push ") == 12 and text.count("pop ") == 12
    assert "(2, 2560, 4, 5)" in text and "100.0 MiB" in text and "32x40" in text


@pytest.fixture(scope="module")
def cross_maps():
    torch.manual_seed(0)
    # two "blocks": a 4x4 grid and a 2x2 grid; 3 tokens; token 1 attends strongly to the top-left
    fine = torch.full((2, 16, 3), 0.1)
    fine[:, :, 0] = 0.8
    fine[:, 0, 1], fine[:, 0, 0] = 0.8, 0.1
    coarse = torch.full((2, 4, 3), 1 / 3)
    return AttentionMaps.from_weights({"fine": fine, "coarse": coarse}, latent_hw=(4, 4), tokens=["<s>", "dog", "<e>"])


def test_attention_map_values(cross_maps):
    heat = render.attention_map(cross_maps, token=1, block="fine", normalize="none")
    assert heat.shape == (4, 4)
    assert heat[0, 0].item() == pytest.approx(0.8) and heat[3, 3].item() == pytest.approx(0.1)
    both = render.attention_map(cross_maps, token=1, normalize="none")  # mean of both blocks at 4x4
    assert both.shape == (4, 4)
    assert both[3, 3].item() == pytest.approx((0.1 + 1 / 3) / 2)
    assert render.attention_map(cross_maps, token=1, block="fine", normalize="max").max().item() == pytest.approx(1.0)


def test_render_attention_and_token_maps(cross_maps):
    image = torch.rand(3, 32, 32) * 2 - 1
    fig = render.render_attention(cross_maps, token=1, block="fine", image=image)
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # map + colorbar, sample, overlay
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[1:]] == ["sample", "map over the sample", ""]
    assert [im.get_clim() for im in fig.axes[0].images + fig.axes[2].images[1:]] == [(0.0, 1.0)] * 2  # one scale
    assert "'dog'" in fig.axes[0].get_title()
    fig = render.render_token_maps(cross_maps, image=image)
    assert [ax.get_title() for ax in fig.axes] == ["sample", "<s>", "dog", "<e>"]


def test_render_self_attention():
    torch.manual_seed(0)
    w = torch.rand(4, 16, 16).softmax(-1)  # (H, L, L) on a 4x4 grid
    maps = AttentionMaps.from_weights({"blk": w}, kind="self")
    heat = render.attention_map(maps, block="blk", query=(1, 2), normalize="none")
    assert torch.allclose(heat.flatten(), w.mean(0)[1 * 4 + 2])
    fig = render.render_attention(maps, block="blk", query=(1, 2))
    assert "query pixel (1, 2)" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="pick a block"):
        render.attention_map(maps, query=(0, 0))


def test_image_to_array():
    from PIL import Image

    t = torch.tensor([-1.0, 0.0, 1.0]).view(3, 1, 1).expand(3, 2, 2)
    arr = render.image_to_array(t)
    assert arr.shape == (2, 2, 3) and np.allclose(arr[0, 0], [0, 0.5, 1])
    u8 = np.full((4, 5, 3), 255, dtype=np.uint8)
    assert np.allclose(render.image_to_array(u8), 1.0)
    pil = Image.fromarray(u8)
    assert render.image_to_array(pil).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="image"):
        render.image_to_array(torch.rand(5, 4, 4))


def test_each_normalisation_looks_different(cross_maps):
    """The colour scale is fixed where the values are shares, so "none", "max" and "minmax" draw different
    colours (with a colour scale per map they would all look alike: each is the same map rescaled)."""
    def colours(normalize):
        fig = render.render_attention(cross_maps, token=1, block="fine", normalize=normalize)
        image = fig.axes[0].images[0]
        return image.to_rgba(image.get_array(), bytes=True).tobytes()
    drawn = {n: colours(n) for n in ("none", "max", "minmax")}
    assert len(set(drawn.values())) == 3
    heat = render.attention_map(cross_maps, token=1, block="fine", normalize="none")
    assert render.color_limits(heat, "none") == (0.0, 1.0)
    assert render.color_limits(heat, "sum") == (0.0, pytest.approx(heat.max().item()))
