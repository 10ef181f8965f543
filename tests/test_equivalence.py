"""The course's classes equal diffusers' on the same weights: block by block and the whole UNet,
in the tiny config and the full SD v1.5 config, in fp32 and fp64, and at latent sides that are
not multiples of 8 with `UNetConfig(any_latent_size=True)`.

Norm weights and every bias are moved away from their 1/0 init first, so a norm that is skipped,
a bias that is dropped or two layers that are swapped cannot hide behind an identity-like init.
Every comparison also checks that the reference output is far from zero (`close`): an absolute
tolerance alone would pass a model that outputs ~0.
"""
import gc

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel

from sdcourse import (
    Diffusion,
    TimeEmbedding,
    UNET_AttentionBlock,
    UNET_ResidualBlock,
    UNetConfig,
    convert_diffusers_unet,
    diffusers_config,
    load_state_dict_strict,
    sinusoidal_embedding,
)
from sdcourse.checks import perturb_
from sdcourse.weights import ATTENTION_NAMES, RESNET_NAMES, rename_keys

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def perturb_norms_and_biases_(module):
    """Norm weights 1 -> 1 + noise, biases 0 -> noise (all 1-D parameters)."""
    return perturb_(module, scale=0.2, only_1d=True)


def max_diff(a, b):
    return (a - b).abs().max().item()


def close(got, expected, dtype):
    """got equals expected within TOL[dtype], and expected is not near zero: its typical size is at
    least 1000x the tolerance (a model that outputs ~0 would otherwise pass an absolute tolerance)."""
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = expected.abs().mean().item()
    assert scale > 1000 * TOL[dtype], f"reference output is near zero (mean |x| {scale:.1e}): the test would prove nothing"
    diff = max_diff(got, expected)
    assert diff <= TOL[dtype], f"max |diff| {diff:.2e} > {TOL[dtype]:.0e} (mean |x| {scale:.2e})"
    return diff


def test_close_refuses_near_zero_outputs():
    """The guard itself: ~0 against ~0 fails, a real difference fails, a match passes."""
    tiny = torch.full((2, 3), 1e-9)
    with pytest.raises(AssertionError, match="near zero"):
        close(tiny, torch.zeros(2, 3), torch.float32)
    x = torch.randn(2, 3)
    with pytest.raises(AssertionError, match="max"):
        close(x + 1e-3, x, torch.float32)
    close(x + 1e-7, x, torch.float32)



def map_block(state_dict, names):
    """Rename one block's state dict with an inner-name table (prefix-free)."""
    wrapped = {f"block.{k}": v for k, v in state_dict.items()}
    renamed, unmapped = rename_keys(wrapped, [("block", "block", names)])
    assert not unmapped, unmapped
    return {k[len("block."):]: v for k, v in renamed.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_time_embedding_equals_diffusers(dtype):
    proj = Timesteps(320, flip_sin_to_cos=True, downscale_freq_shift=0)
    ref = perturb_norms_and_biases_(TimestepEmbedding(320, 1280)).to(dtype)
    ours = TimeEmbedding(320).to(dtype)
    ours.load_state_dict(ref.state_dict())  # same names: linear_1, linear_2
    t = torch.tensor([0, 1, 10, 261, 999])
    expected = ref(proj(t).to(dtype))
    got = ours(sinusoidal_embedding(t).to(dtype))
    assert got.shape == (5, 1280)
    close(got, expected, dtype)
    # the sinusoidal part alone, cos first
    assert torch.allclose(sinusoidal_embedding(t), proj(t), atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cin,cout", [(64, 64), (64, 96)])
@pytest.mark.parametrize("time_batch", [1, 3])
def test_residual_block_equals_diffusers(dtype, cin, cout, time_batch):
    ref = ResnetBlock2D(in_channels=cin, out_channels=cout, temb_channels=128, groups=32, eps=1e-5)
    perturb_norms_and_biases_(ref).to(dtype).eval()
    ours = UNET_ResidualBlock(cin, cout, n_time=128).to(dtype)
    load_state_dict_strict(ours, map_block(ref.state_dict(), RESNET_NAMES))
    x = torch.randn(3, cin, 8, 6, dtype=dtype)
    temb = torch.randn(time_batch, 128, dtype=dtype)
    expected = ref(x, temb.expand(3, -1))
    got = ours(x, temb)
    assert got.shape == (3, cout, 8, 6)
    close(got, expected, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("context_batch", [1, 2])
def test_attention_block_equals_diffusers(dtype, context_batch):
    heads, d_head, d_ctx = 8, 8, 48
    ref = Transformer2DModel(num_attention_heads=heads, attention_head_dim=d_head, in_channels=heads * d_head,
                             cross_attention_dim=d_ctx, norm_num_groups=32, use_linear_projection=False)
    perturb_norms_and_biases_(ref).to(dtype).eval()
    ours = UNET_AttentionBlock(heads, d_head, d_context=d_ctx).to(dtype)
    load_state_dict_strict(ours, map_block(ref.state_dict(), ATTENTION_NAMES))
    x = torch.randn(2, heads * d_head, 6, 5, dtype=dtype)
    ctx = torch.randn(context_batch, 7, d_ctx, dtype=dtype)
    expected = ref(x, encoder_hidden_states=ctx.expand(2, -1, -1)).sample
    got = ours(x, ctx)
    assert got.shape == x.shape
    close(got, expected, dtype)
    # the explicit softmax(QK^T/sqrt(d))V path gives the same result as SDPA
    for m in ours.modules():
        if hasattr(m, "explicit"):
            m.explicit = True
    close(ours(x, ctx), expected, dtype)


def _pair(config, dtype=torch.float32):
    ref = UNet2DConditionModel(**diffusers_config(config))
    perturb_norms_and_biases_(ref).eval()
    ours = Diffusion(config).eval()
    load_state_dict_strict(ours, convert_diffusers_unet(ref.state_dict()))
    return ref.to(dtype), ours.to(dtype)


def _compare_whole(ref, ours, config, dtype, latent_hw=(16, 24), batch=2):
    latent = torch.randn(batch, config.in_channels, *latent_hw, dtype=dtype)
    context = torch.randn(batch, 77, config.d_context, dtype=dtype)
    dim = config.n_time_embd
    with torch.no_grad():
        # one timestep shared by the batch: time (1, 320), as in the notes
        expected = ref(latent, torch.tensor(981), context).sample
        got = ours(latent, context, sinusoidal_embedding(981, dim).to(dtype))
        assert got.shape == latent.shape
        print(f"{config.channels} {latent_hw} {dtype} shared time: max |diff| {close(got, expected, dtype):.2e}")
        # one timestep per sample: time (B, 320), needed for training
        t = torch.randint(0, 1000, (batch,))
        expected = ref(latent, t, context).sample
        got = ours(latent, context, sinusoidal_embedding(t, dim).to(dtype))
        print(f"{config.channels} {latent_hw} {dtype} per-sample time: max |diff| {close(got, expected, dtype):.2e}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_unet_equals_diffusers(dtype):
    config = UNetConfig.tiny()
    ref, ours = _pair(config, dtype)
    _compare_whole(ref, ours, config, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("latent_hw", [(12, 20), (9, 13)])
def test_any_latent_size_equals_diffusers(dtype, latent_hw):
    """Beyond the notes: diffusers' UNet takes latents that are not multiples of 8 (it upsamples to
    each skip's size); so does the course UNet with any_latent_size=True, and it refuses them without."""
    config = UNetConfig.tiny(any_latent_size=True)
    ref, ours = _pair(config, dtype)
    _compare_whole(ref, ours, config, dtype, latent_hw=latent_hw)
    notes = Diffusion(UNetConfig.tiny()).to(dtype)
    notes.load_state_dict(ours.state_dict())
    with pytest.raises(ValueError, match="not a multiple of 8.*any_latent_size=True"):
        notes(torch.randn(1, 4, *latent_hw, dtype=dtype), torch.randn(1, 77, 64, dtype=dtype),
              sinusoidal_embedding(981, config.n_time_embd).to(dtype))


def test_upsample_to_a_size_by_hand():
    """Upsample(size=...) picks the nearest source pixel: 2 -> 3 repeats rows 0, 0, 1 (as
    F.interpolate's "nearest" does: source index floor(i * 2 / 3))."""
    from sdcourse import Upsample

    up = Upsample(1)
    with torch.no_grad():
        up.conv.weight.zero_()
        up.conv.weight[0, 0, 1, 1] = 1.0  # the conv passes its input through
        up.conv.bias.zero_()
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    assert torch.equal(up(x, size=(3, 4)), torch.tensor([[[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0],
                                                            [3.0, 3.0, 4.0, 4.0]]]]))
    assert torch.equal(up(x), up(x, size=(4, 4)))  # doubling is the default


@pytest.mark.slow
def test_full_sd_v15_unet_equals_diffusers_fp32_and_fp64():
    config = UNetConfig()
    ref, ours = _pair(config)
    assert sum(p.numel() for p in ref.parameters()) == 859_520_964
    _compare_whole(ref, ours, config, torch.float32, latent_hw=(8, 8))
    ref, ours = ref.double(), ours.double()
    gc.collect()
    _compare_whole(ref, ours, config, torch.float64, latent_hw=(8, 8))
