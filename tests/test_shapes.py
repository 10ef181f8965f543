"""The meta-device shape ledger agrees with a real forward and with the SD v1 facts."""
import pytest
import torch

from sdcourse import Diffusion, UNetConfig, sinusoidal_embedding
from sdcourse.shapes import check_image_size, format_bytes, trace


def real_forward_shapes(config, height, width, batch, n_tokens):
    """A real CPU forward with our own forward hooks: (stage, input shape, output shape) and attention weights shapes."""
    torch.manual_seed(0)
    model = Diffusion(config).eval()
    stages = [(f"encoders.{i}", m) for i, m in enumerate(model.unet.encoders)]
    stages += [("bottleneck", model.unet.bottleneck)]
    stages += [(f"decoders.{i}", m) for i, m in enumerate(model.unet.decoders)]
    stages += [("final", model.final)]
    seen, weights = {}, []
    handles = [m.register_forward_hook(lambda m, a, o, name=name: seen.__setitem__(name, (tuple(a[0].shape), tuple(o.shape))))
               for name, m in stages]
    for m in model.modules():
        if hasattr(m, "observer"):
            m.observer = lambda module, w: weights.append((type(module).__name__, tuple(w.shape)))
    latent = torch.randn(batch, config.in_channels, height // 8, width // 8)
    context = torch.randn(batch, n_tokens, config.d_context)
    with torch.no_grad():
        out = model(latent, context, sinusoidal_embedding(10, config.n_time_embd))
    for h in handles:
        h.remove()
    return seen, weights, tuple(out.shape)


def test_ledger_matches_a_real_forward_of_the_tiny_model():
    config = UNetConfig.tiny()
    ledger = trace(config, height=128, width=192, batch=2, n_tokens=6)
    seen, weights, out = real_forward_shapes(config, 128, 192, 2, 6)
    rows = {r.stage: r for r in ledger.rows}
    for stage, (inp, outp) in seen.items():
        assert rows[stage].input == inp, stage
        assert rows[stage].output == outp, stage
    assert rows["final"].output == out == (2, 4, 16, 24)
    # attention: the same modules in the same order, the same (B, heads, L, keys)
    assert [(("SelfAttention" if a.kind == "self" else "CrossAttention"), a.matrix) for a in ledger.attention] == weights
    for a in ledger.attention:
        assert a.seq_len == a.grid[0] * a.grid[1]
        assert a.nbytes == a.matrix[0] * a.matrix[1] * a.matrix[2] * a.matrix[3] * 4


def test_sd_v1_skip_stack_and_attention_sizes():
    ledger = trace(height=512, width=512)
    pushes = [r for r in ledger.rows if r.skip == "push"]
    pops = [r for r in ledger.rows if r.skip == "pop"]
    assert len(pushes) == 12 and len(pops) == 12
    assert [r.stack for r in pushes] == list(range(1, 13))
    assert [r.stack for r in pops] == list(range(11, -1, -1))
    # decoders see current + skip channels: 2560 x5, 1920 x2, 1280, 960 x2, 640 x2 (the notes)
    assert [r.input[1] for r in pops] == [2560] * 5 + [1920] * 2 + [1280] + [960] * 2 + [640] * 2
    assert [r.skip_channels for r in pops] == [r.skip_channels for r in reversed(pushes)]
    first = ledger.attention[0]
    assert (first.name, first.kind, first.seq_len, first.matrix) == ("down.1 (H/8)", "self", 4096, (1, 8, 4096, 4096))
    assert first.nbytes == 8 * 4096 * 4096 * 4 == 512 * 2 ** 20
    cross = ledger.attention[1]
    assert (cross.kind, cross.keys, cross.nbytes) == ("cross", 77, 8 * 4096 * 77 * 4)
    mid = [a for a in ledger.attention if a.name.startswith("mid")]
    assert [a.seq_len for a in mid] == [64, 64]  # 8 x 8 bottleneck
    assert len(ledger.attention) == 32
    assert repr(ledger) == "Ledger(512x512 px, batch 1: 27 stages, 32 attention modules, largest attention 512.0 MiB)"
    # each stage's layers, read from the modules (the UNet diagram draws these labels)
    rows = {r.stage: r for r in ledger.rows}
    assert rows["encoders.1"].describe == "Res 320→320 + Attn 8×40"
    assert [layer.kind for layer in rows["decoders.5"].layers] == ["res", "attn", "up"]
    assert rows["encoders.3"].layers[0].label == "Down /2"
    assert [r.stage for r in ledger.stages("decoders")] == [f"decoders.{i}" for i in range(12)]


def test_dtype_batch_and_aspect():
    half = trace(height=640, width=384, batch=3, dtype=torch.float16)
    assert half.rows[1].input == (3, 4, 80, 48)
    assert half.attention[0].grid == (80, 48)
    assert half.attention[0].nbytes == 3 * 8 * (80 * 48) ** 2 * 2
    assert [a for a in half.attention if a.name.startswith("mid")][0].grid == (10, 6)


def test_the_largest_size_traces():
    """Speed is measured in benchmarks/, not here: this only checks the largest image is traced right."""
    ledger = trace(height=1024, width=960, batch=4)
    assert ledger.largest_attention.seq_len == 128 * 120
    assert ledger.largest_attention.matrix == (4, 8, 128 * 120, 128 * 120)


def test_bad_sizes_say_how_to_fix():
    for h in (100, 0, 2048, 512.0):
        with pytest.raises(ValueError, match="multiple of 64"):
            check_image_size(h, 512)
    with pytest.raises(ValueError, match="batch"):
        trace(batch=0)
    with pytest.raises(ValueError, match="UNetConfig"):
        trace(config="tiny")


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(512 * 2 ** 20) == "512.0 MiB"
    assert format_bytes(3 * 2 ** 30) == "3.0 GiB"


def test_attention_grids_follow_the_rounding_of_odd_sides():
    """At 576x448 px the latent is 72x56: halving three times gives 36x28, 18x14, 9x7 (the grid of each block)."""
    ledger = trace(height=576, width=448)
    grids = {a.name: a.grid for a in ledger.attention}
    assert grids["down.1 (H/8)"] == (72, 56) and grids["down.4 (H/16)"] == (36, 28)
    assert grids["down.7 (H/32)"] == (18, 14) and grids["mid (H/64)"] == (9, 7)
