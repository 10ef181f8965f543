"""`python -m sdcourse.figures` draws the course's figures from the code: valid, deterministic PNGs,
and a diagram whose channels and resolutions are those of a real forward."""
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdcourse import UNET, UNetConfig, figures
from sdcourse.shapes import trace

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes):
    """(width, height) from the PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Run the script once, as a user would, into a temporary folder."""
    out = tmp_path_factory.mktemp("figures")
    run = subprocess.run([sys.executable, "-m", "sdcourse.figures", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Warning" not in run.stderr, run.stderr
    return out


@pytest.mark.parametrize("name, min_size", [
    ("unet_diagram.png", (900, 800)), ("time_embedding_heatmap.png", (800, 300)), ("residual_block.png", (800, 600)),
])
def test_figures_are_valid_pngs_of_a_readable_size(drawn, name, min_size):
    data = (drawn / name).read_bytes()
    width, height = png_size(data)
    assert width >= min_size[0] and height >= min_size[1], (width, height)
    assert width <= 2400 and height <= 2400, "too large for a README"
    assert len(data) > 10_000, "suspiciously small: an empty figure?"


def test_figures_are_the_same_bytes_on_every_run(drawn, tmp_path):
    figures.main(["--out", str(tmp_path)])
    for name in figures.FIGURES:
        assert (tmp_path / name).read_bytes() == (drawn / name).read_bytes(), f"{name} differs between runs"


def test_the_diagram_draws_the_one_trace_of_the_shape_ledger():
    """figures has no tracer of its own: the diagram draws `sdcourse.shapes.trace`."""
    assert not hasattr(figures, "trace_unet")
    seen = []
    original = figures.trace
    try:
        figures.trace = lambda *a, **k: seen.append((a, k)) or original(*a, **k)
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.close(figures.unet_diagram(UNetConfig.tiny(), latent_size=16))
    finally:
        figures.trace = original
    assert seen == [((UNetConfig.tiny(),), {"height": 128, "width": 128})]


def test_trace_of_sd_v1_has_the_notes_channels():
    """The channel numbers the notes write by hand (2560, 1920, 1280, 960, 640 into the decoders)."""
    ledger = trace(height=512, width=512)
    encoders, decoders = ledger.stages("encoders"), ledger.stages("decoders")
    assert len(encoders) == len(decoders) == 12
    assert [d.input[1] for d in decoders] == [2560] * 5 + [1920, 1920, 1280, 960, 960, 640, 640]
    assert [e.output[1] for e in encoders] == [320] * 4 + [640] * 3 + [1280] * 5
    # resolutions of the skips, as feature-map heights for a 512 px image: 64, 32, 16, 8
    assert [e.output[2] for e in encoders] == [64] * 3 + [32] * 3 + [16] * 3 + [8] * 3
    # every decoder consumes the skip of the encoder on its row: same resolution at its input
    assert [d.input[2] for d in decoders] == [e.output[2] for e in reversed(encoders)]
    bottleneck, = ledger.stages("bottleneck")
    assert [layer.label for layer in bottleneck.layers] == ["Res 1280→1280", "Attn 8×160", "Res 1280→1280"]


def test_trace_matches_a_real_forward_at_a_small_size():
    """The meta trace equals what hooks see during a real CPU forward of the tiny UNet at 16x16."""
    config = UNetConfig.tiny()
    torch.manual_seed(0)
    unet = UNET(config)
    seen = []
    modules = list(unet.encoders) + [unet.bottleneck] + list(unet.decoders)
    handles = [m.register_forward_hook(lambda m, a, o: seen.append((a[0].shape[1], o.shape[1], a[0].shape[2], o.shape[2])))
               for m in modules]
    with torch.no_grad():
        unet(torch.randn(1, 4, 16, 16), torch.randn(1, 77, config.d_context), torch.randn(1, config.n_time))
    for h in handles:
        h.remove()
    ledger = trace(config, height=128, width=128)
    rows = ledger.stages("encoders") + ledger.stages("bottleneck") + ledger.stages("decoders")
    assert [(r.input[1], r.output[1], r.input[2], r.output[2]) for r in rows] == seen


def test_the_diagram_rejects_a_size_the_unet_cannot_halve_three_times():
    with pytest.raises(ValueError, match="multiple of 8"):
        figures.unet_diagram(latent_size=12)


def test_diagram_labels_come_from_the_modules():
    """A different config gives a different drawing: nothing in the diagram is typed in by hand."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = figures.unet_diagram(UNetConfig.tiny(), latent_size=16)
    texts = {t.get_text() for t in fig.axes[0].texts}
    plt.close(fig)
    assert "Res 256→128" in texts and "Attn 4×8" in texts  # tiny: 2*128 into the first decoder; 32 = 4 heads x 8
    assert not any("1280" in t for t in texts)


def test_residual_block_trace_and_labels_follow_the_channels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    block, shapes = figures.trace_residual_block(320, 640, size=8)
    assert shapes["output"] == (1, 640, 8, 8) and shapes["linear_time"] == (1, 640)
    assert shapes["residual_layer"] == (1, 640, 8, 8)
    for channels, expected in (((320, 640), "1×1 conv"), ((64, 64), "Identity")):
        fig = figures.residual_block_diagram(*channels)
        texts = {t.get_text() for t in fig.axes[0].texts}
        plt.close(fig)
        assert expected in texts
        assert f"output (B, {channels[1]}, H, W)" in texts
    with pytest.raises(ValueError, match="32 GroupNorm groups"):
        figures.trace_residual_block(48, 64)
