"""Structure, parameter counts, shapes and the clear errors of the core classes."""
import pytest
import torch

from sdcourse import (
    CrossAttention,
    Diffusion,
    SelfAttention,
    TimeEmbedding,
    UNET_AttentionBlock,
    UNET_ResidualBlock,
    UNetConfig,
    sinusoidal_embedding,
)
from sdcourse.attention import attention_weights


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_full_model_has_sd_v1_parameter_count():
    with torch.device("meta"):  # no memory, instant
        model = Diffusion()
    assert n_params(model) == 859_520_964
    assert n_params(model.time_embedding) == 2_050_560
    assert n_params(model.unet) == 857_458_240
    assert n_params(model.final) == 12_164


def test_unet_has_the_notes_structure():
    with torch.device("meta"):
        model = Diffusion()
    assert len(model.unet.encoders) == 12 and len(model.unet.decoders) == 12
    # decoder input widths: current + popped skip
    widths = [d[0].in_channels for d in model.unet.decoders]
    assert widths == [2560, 2560, 2560, 2560, 2560, 1920, 1920, 1280, 960, 960, 640, 640]
    heads = {m.n_heads for m in model.modules() if isinstance(m, (SelfAttention, CrossAttention))}
    d_heads = sorted({m.d_head for m in model.modules() if isinstance(m, SelfAttention)})
    assert heads == {8} and d_heads == [40, 80, 160]
    # no bias on q/k/v, bias on the output projection
    for m in model.modules():
        if isinstance(m, SelfAttention):
            assert m.in_proj.bias is None and m.out_proj.bias is not None


@pytest.mark.parametrize("hw", [(8, 8), (16, 24), (64, 8)])
def test_meta_forward_keeps_the_latent_shape(hw):
    with torch.device("meta"):
        model = Diffusion()
        latent = torch.empty(2, 4, *hw)
        out = model(latent, torch.empty(2, 77, 768), torch.empty(1, 320))
    assert out.shape == (2, 4, *hw)


def test_sinusoidal_embedding_formula():
    t = torch.tensor([0.0, 7.0, 500.0])
    emb = sinusoidal_embedding(t, dim=320)
    assert emb.shape == (3, 320)
    i = 37
    freq = 10000 ** (-i / 160)
    assert torch.allclose(emb[:, i], torch.cos(t * freq), atol=1e-5)
    assert torch.allclose(emb[:, 160 + i], torch.sin(t * freq), atol=1e-5)
    assert torch.equal(emb[0, :160], torch.ones(160)) and torch.equal(emb[0, 160:], torch.zeros(160))


def test_attention_paths_agree_and_weights_sum_to_one():
    torch.manual_seed(0)
    attn = CrossAttention(4, 32, 12)
    x, y = torch.randn(2, 10, 32), torch.randn(1, 5, 12)
    fast = attn(x, y)
    seen = []
    attn.observer = lambda module, w: seen.append(w)
    explicit = attn(x, y)
    assert fast.abs().mean() > 1e-2  # not near zero, else the absolute tolerance below would prove nothing
    assert torch.allclose(fast, explicit, atol=1e-6)
    (w,) = seen
    assert w.shape == (2, 4, 10, 5)
    assert torch.allclose(w.sum(-1), torch.ones(2, 4, 10), atol=1e-6)
    # by hand for head 0 of sample 0
    q = attn.q_proj(x)[0, :, :8]
    k = attn.k_proj(y)[0, :, :8]
    assert torch.allclose(w[0, 0], torch.softmax(q @ k.T / 8 ** 0.5, dim=-1), atol=1e-6)
    assert torch.allclose(attention_weights(torch.zeros(1, 1, 3, 4), torch.zeros(1, 1, 6, 4)), torch.full((1, 1, 3, 6), 1 / 6))


def test_tiny_config_builds_the_same_classes():
    model = Diffusion(UNetConfig.tiny())
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"UNET_ResidualBlock", "UNET_AttentionBlock", "Upsample", "SwitchSequential", "UNET"} <= kinds
    out = model(torch.randn(3, 4, 16, 8), torch.randn(1, 5, 64), sinusoidal_embedding(torch.tensor([1, 2, 3]), 32))
    assert out.shape == (3, 4, 16, 8)


def test_attention_block_takes_heads_and_head_width_positionally():
    with torch.device("meta"):
        block = UNET_AttentionBlock(8, 40)  # as the notes and notebooks call it: 8 heads of width 40
    assert block.channels == 320 and block.attention_1.n_heads == 8 and block.attention_1.d_head == 40
    assert TimeEmbedding(320).linear_1.in_features == 320 and TimeEmbedding(320).linear_2.out_features == 1280


def test_tiny_and_capstone_configs_say_what_they_are():
    from sdcourse.train import TrainConfig

    tiny, capstone = UNetConfig.tiny(), UNetConfig.capstone()
    assert (tiny.channels, tiny.in_channels) == ((32, 64, 128), 4)  # SD's shape in miniature
    assert (capstone.channels, capstone.in_channels, capstone.out_channels) == ((64, 48, 32), 27, 27)
    assert TrainConfig().unet_config() == capstone  # what notebook 07 trains
    assert UNetConfig() == UNetConfig(channels=(320, 640, 1280), n_head=8, d_context=768, n_groups=32)


def test_any_latent_size_is_opt_in():
    """The notes' UNet needs latent sides that are multiples of 8; any_latent_size=True takes any."""
    torch.manual_seed(0)
    notes = Diffusion(UNetConfig.tiny()).eval()
    anysize = Diffusion(UNetConfig.tiny(any_latent_size=True)).eval()
    anysize.load_state_dict(notes.state_dict())
    context, time = torch.randn(1, 7, 64), sinusoidal_embedding(500, 32)
    with pytest.raises(ValueError, match=r"width 20 is not a multiple of 8.*notes'.*CompVis.*any_latent_size=True"):
        notes(torch.randn(1, 4, 16, 20), context, time)
    for hw in [(12, 20), (9, 13), (1, 1)]:
        assert anysize(torch.randn(1, 4, *hw), context, time).shape == (1, 4, *hw)
    latent = torch.randn(2, 4, 16, 24)  # a multiple of 8: both give the very same numbers
    assert torch.equal(notes(latent, context, time), anysize(latent, context, time))
    with pytest.raises(ValueError, match="height is 0"):
        anysize(torch.randn(1, 4, 0, 8), context, time)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        UNetConfig(channels=(30, 64, 128), n_head=4, n_groups=8)


# ---------------------------------------------------------------- clear errors


@pytest.fixture(scope="module")
def tiny():
    return Diffusion(UNetConfig.tiny()).eval()


def good_inputs(batch=2):
    return torch.randn(batch, 4, 16, 16), torch.randn(batch, 7, 64), sinusoidal_embedding(torch.tensor([5]), 32)


@pytest.mark.parametrize(
    "change, pattern",
    [
        (lambda l, c, t: (torch.randn(2, 3, 16, 16), c, t), r"3 channels.*expects 4"),
        (lambda l, c, t: (torch.randn(4, 16, 16), c, t), r"must be 4-D.*latent\[None\]"),
        (lambda l, c, t: (torch.randn(2, 4, 30, 16), c, t), r"height 30 is not a multiple of 8.*32"),
        (lambda l, c, t: (torch.randn(2, 4, 16, 12), c, t), r"width 12 is not a multiple of 8"),
        (lambda l, c, t: (l, torch.randn(2, 7, 768), t), r"context must be \(batch, tokens, 64\)"),
        (lambda l, c, t: (l, torch.randn(7, 64), t), r"context must be"),
        (lambda l, c, t: (l, torch.randn(3, 7, 64), t), r"context batch 3 cannot broadcast to latent batch 2"),
        (lambda l, c, t: (l, c, torch.tensor([5.0, 6.0])), r"sinusoidal_embedding"),
        (lambda l, c, t: (l, c, torch.randn(1, 320)), r"time must be the sinusoidal embedding \(1 or batch, 32\)"),
        (lambda l, c, t: (l, c, torch.randn(3, 32)), r"time batch 3 cannot broadcast"),
        (lambda l, c, t: (l.double(), c, t), r"dtype torch.float64.*weights are torch.float32"),
        (lambda l, c, t: (l, c.half(), t), r"context has dtype torch.float16"),
        (lambda l, c, t: (l, c, t.to("meta")), r"time is on meta.*model is on cpu"),
        (lambda l, c, t: (l.numpy(), c, t), r"latent must be a torch.Tensor"),
    ],
)
def test_diffusion_names_the_problem_and_the_fix(tiny, change, pattern):
    latent, context, time = change(*good_inputs())
    with pytest.raises(ValueError, match=pattern):
        tiny(latent, context, time)


def test_good_inputs_pass(tiny):
    assert tiny(*good_inputs()).shape == (2, 4, 16, 16)


def test_blocks_check_their_inputs():
    block = UNET_ResidualBlock(32, 64, n_time=128, n_groups=8)
    with pytest.raises(ValueError, match=r"\(batch, 32, height, width\)"):
        block(torch.randn(1, 16, 8, 8), torch.randn(1, 128))
    with pytest.raises(ValueError, match=r"time embedding as \(1 or batch, 128\)"):
        block(torch.randn(1, 32, 8, 8), torch.randn(1, 32))
    with pytest.raises(ValueError, match="time batch 2 cannot broadcast"):
        block(torch.randn(3, 32, 8, 8), torch.randn(2, 128))
    attn = UNET_AttentionBlock(4, 8, d_context=16, n_groups=8)
    with pytest.raises(ValueError, match=r"context \(batch, tokens, 16\)"):
        attn(torch.randn(1, 32, 4, 4), torch.randn(1, 5, 17))
    with pytest.raises(ValueError, match="context batch 2 cannot broadcast to image batch 3"):
        attn(torch.randn(3, 32, 4, 4), torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match=r"\(batch, sequence, 32\)"):
        SelfAttention(4, 32)(torch.randn(2, 32, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, 320\) sinusoidal"):
        TimeEmbedding(320)(torch.randn(320))
    with pytest.raises(ValueError, match="1-D tensor of timesteps"):
        sinusoidal_embedding(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="positive even"):
        sinusoidal_embedding(3, dim=5)
