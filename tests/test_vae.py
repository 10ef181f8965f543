"""The course's VAE equals diffusers' AutoencoderKL on the same random weights: block by block and
whole (encode: mean, std and a seeded sample; decode), tiny configs and SD v1's at small inputs,
fp32 and fp64, with norms and biases moved off their initial values."""
from __future__ import annotations

import pytest
import torch

from sdcourse.checks import perturb_
from sdcourse.vae import LATENT_SCALE, AttnBlock, AutoencoderKL, DiagonalGaussianDistribution, VAEConfig
from sdcourse.vae_weights import convert_diffusers_vae, diffusers_vae_config, export_diffusers_vae

diffusers = pytest.importorskip("diffusers")

TINY_CONFIGS = {
    "tiny": VAEConfig.tiny(),
    # two levels, two blocks per level, 3 latent channels, 4 groups: nothing SD-shaped left to hide behind
    "other": VAEConfig(channels=(16, 32), layers_per_block=2, latent_channels=3, n_groups=4),
}


def reference_pair(config: VAEConfig, seed: int = 0, only_1d: bool = False, from_diffusers: bool = True):
    """(course VAE, diffusers VAE) with the same weights, perturbed. from_diffusers: diffusers' own
    init mapped to the course's names (convert_diffusers_vae); else the course's init mapped to
    diffusers' names (export_diffusers_vae; diffusers' init of SD v1's VAE alone takes ~5 s here)."""
    torch.manual_seed(seed)
    if from_diffusers:
        ref = perturb_(diffusers.AutoencoderKL(**diffusers_vae_config(config)), seed=seed, only_1d=only_1d)
        state, unmapped = convert_diffusers_vae(ref.state_dict(), config)
        assert unmapped == []
        ours = AutoencoderKL(config)
        ours.load_state_dict(state, strict=True)
    else:
        ours = perturb_(AutoencoderKL(config), seed=seed, only_1d=only_1d)
        with torch.device("meta"):
            ref = diffusers.AutoencoderKL(**diffusers_vae_config(config))
        exported = export_diffusers_vae(ours.state_dict(), config)
        ref.load_state_dict({k: v.clone() for k, v in exported.items()}, strict=True, assign=True)
    return ours.eval(), ref.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def not_near_zero(x: torch.Tensor) -> None:
    """A comparison of two zero (or constant) outputs proves nothing."""
    assert x.std().item() > 1e-2, f"output std {x.std().item():.2e}: the comparison would prove nothing"


def compare_blocks(ours: AutoencoderKL, ref, x: torch.Tensor, z: torch.Tensor, tol: float) -> None:
    """Each block of the encoder and of the decoder, fed the reference's own intermediate features."""
    n = len(ours.config.channels)
    enc, renc = ours.encoder, ref.encoder
    h = renc.conv_in(x)
    for i in range(n):
        for j, block in enumerate(enc.down[i].block):
            want = renc.down_blocks[i].resnets[j](h, None)
            assert max_diff(block(h), want) <= tol, f"encoder.down.{i}.block.{j}"
            h = want
        if i < n - 1:
            want = renc.down_blocks[i].downsamplers[0](h)
            assert max_diff(enc.down[i].downsample(h), want) <= tol, f"encoder.down.{i}.downsample"
            h = want
    compare_mid(enc.mid, renc.mid_block, h, tol, "encoder")

    dec, rdec = ours.decoder, ref.decoder
    h = rdec.conv_in(z)
    assert max_diff(dec.conv_in(z), h) <= tol, "decoder.conv_in"
    h = compare_mid(dec.mid, rdec.mid_block, h, tol, "decoder")
    for k, up_block in enumerate(rdec.up_blocks):  # diffusers' up_blocks.k is the course's up.(n-1-k)
        level = dec.up[n - 1 - k]
        for j, block in enumerate(level.block):
            want = up_block.resnets[j](h, None)
            assert max_diff(block(h), want) <= tol, f"decoder.up.{n - 1 - k}.block.{j}"
            h = want
        if k < n - 1:
            want = up_block.upsamplers[0](h)
            assert max_diff(level.upsample(h), want) <= tol, f"decoder.up.{n - 1 - k}.upsample"
            h = want
    not_near_zero(h)


def compare_mid(mid, ref_mid, h: torch.Tensor, tol: float, part: str) -> torch.Tensor:
    """block_1, attn_1, block_2 against diffusers' mid_block.resnets.0, attentions.0, resnets.1."""
    for name, ours_block, ref_block in (("block_1", mid.block_1, ref_mid.resnets[0]),
                                        ("attn_1", mid.attn_1, ref_mid.attentions[0]),
                                        ("block_2", mid.block_2, ref_mid.resnets[1])):
        want = ref_block(h) if name == "attn_1" else ref_block(h, None)
        not_near_zero(want)
        assert max_diff(ours_block(h), want) <= tol, f"{part}.mid.{name}"
        h = want
    return h


def compare_whole(ours: AutoencoderKL, ref, x: torch.Tensor, z: torch.Tensor, tol: float) -> None:
    """encode: mean, std and a seeded sample; decode; the encoder and decoder alone."""
    got, want = ours.encode(x), ref.encode(x).latent_dist
    for name in ("mean", "std"):
        not_near_zero(getattr(want, name))
        assert max_diff(getattr(got, name), getattr(want, name)) <= tol, f"encode().{name}"
    sample_ours = got.sample(generator=torch.Generator().manual_seed(7))
    sample_ref = want.sample(generator=torch.Generator().manual_seed(7))
    assert max_diff(sample_ours, sample_ref) <= tol, "encode().sample(generator)"
    assert max_diff(got.mode(), want.mode()) <= tol
    image, image_ref = ours.decode(z), ref.decode(z).sample
    not_near_zero(image_ref)
    assert max_diff(image, image_ref) <= tol, "decode()"
    assert max_diff(ours.encoder(x), ref.encoder(x)) <= tol, "encoder"
    assert max_diff(ours.decoder(z), ref.decoder(z)) <= tol, "decoder"


def inputs(config: VAEConfig, height: int, width: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, config.in_channels, height, width, generator=g) * 2 - 1  # an image in [-1, 1]
    z = torch.randn(1, config.latent_channels, height // config.downscale, width // config.downscale, generator=g)
    return x.to(dtype), z.to(dtype)


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
@torch.no_grad()
def test_tiny_configs_equal_diffusers(name):
    config = TINY_CONFIGS[name]
    ours, ref = reference_pair(config, seed=3)
    x, z = inputs(config, 24, 40)  # not square: catches a swapped height and width
    compare_blocks(ours, ref, x, z, tol=1e-5)
    compare_whole(ours, ref, x, z, tol=1e-5)
    ours.double(), ref.double()
    x, z = inputs(config, 24, 40, torch.float64)
    compare_blocks(ours, ref, x, z, tol=1e-10)
    compare_whole(ours, ref, x, z, tol=1e-10)


@torch.no_grad()
def test_sd_v1_config_equals_diffusers():
    """The full SD v1 VAE at 32 x 32 pixels (4 x 4 latents): ~1.4 GB, a few seconds."""
    config = VAEConfig()
    ours, ref = reference_pair(config, seed=5, only_1d=True, from_diffusers=False)
    x, z = inputs(config, 32, 32)
    compare_blocks(ours, ref, x, z, tol=1e-5)
    compare_whole(ours, ref, x, z, tol=1e-5)
    ours.double(), ref.double()
    x, z = inputs(config, 32, 32, torch.float64)
    compare_whole(ours, ref, x, z, tol=1e-10)


def test_parameter_counts_of_sd_v1():
    with torch.device("meta"):
        vae = AutoencoderKL(VAEConfig())
    count = lambda *modules: sum(p.numel() for m in modules for p in m.parameters())  # noqa: E731
    assert count(vae) == 83_653_863
    assert count(vae.decoder, vae.post_quant_conv) == 49_490_199
    assert count(vae.encoder, vae.quant_conv) == 83_653_863 - 49_490_199


def test_export_and_convert_are_inverse():
    config = VAEConfig.tiny()
    vae = perturb_(AutoencoderKL(config))
    exported = export_diffusers_vae(vae.state_dict(), config)
    ref = diffusers.AutoencoderKL(**diffusers_vae_config(config))
    ref.load_state_dict(exported, strict=True)  # every diffusers key, every shape
    back, unmapped = convert_diffusers_vae(exported, config)
    assert unmapped == []
    assert back.keys() == vae.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in vae.state_dict().items())


def test_old_diffusers_attention_names_are_read():
    """diffusers < 0.14 wrote query/key/value/proj_attn; the first SD v1.x vae/ folders still hold them."""
    config = VAEConfig.tiny()
    vae = perturb_(AutoencoderKL(config))
    new_to_old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    old = {}
    for key, value in export_diffusers_vae(vae.state_dict(), config).items():
        for new, name in new_to_old.items():
            key = key.replace(f"attentions.0.{new}.", f"attentions.0.{name}.")
        old[key] = value
    assert any(".proj_attn." in k for k in old)
    back, unmapped = convert_diffusers_vae(old, config)
    assert unmapped == []
    assert all(torch.equal(back[k], v) for k, v in vae.state_dict().items())


def test_unknown_diffusers_keys_are_listed():
    config = VAEConfig.tiny()
    exported = export_diffusers_vae(AutoencoderKL(config).state_dict(), config)
    exported["encoder.down_blocks.0.attentions.0.to_q.weight"] = torch.zeros(32, 32)
    _, unmapped = convert_diffusers_vae(exported, config)
    assert unmapped == ["encoder.down_blocks.0.attentions.0.to_q.weight"]


def test_downsample_pads_right_and_bottom_only():
    """An impulse in the last row/column reaches the output only with (0, 1, 0, 1) padding."""
    from sdcourse.vae import Downsample

    down = Downsample(1)
    with torch.no_grad():
        down.conv.weight.fill_(1.0), down.conv.bias.zero_()
        x = torch.zeros(1, 1, 4, 4)
        x[0, 0, 0, 0] = 1.0  # the top-left pixel: symmetric padding would count it in two windows
        y = down(x)
    assert y.shape == (1, 1, 2, 2)
    assert y[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_distribution_and_scale():
    params = torch.cat([torch.full((1, 4, 2, 2), 0.5), torch.full((1, 4, 2, 2), -100.0)], dim=1)
    dist = DiagonalGaussianDistribution(params)
    assert torch.equal(dist.mean, torch.full((1, 4, 2, 2), 0.5))
    assert torch.allclose(dist.std, torch.full((1, 4, 2, 2), torch.exp(torch.tensor(-15.0)).item()))  # clamped at -30
    a = dist.sample(generator=torch.Generator().manual_seed(0))
    b = dist.sample(generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (1, 4, 2, 2)
    assert LATENT_SCALE == 0.18215 and AutoencoderKL(VAEConfig.tiny()).scaling_factor == 0.18215


@pytest.mark.parametrize("call, shape, match", [
    ("encode", (1, 4, 16, 16), "looks like a latent"),
    ("encode", (1, 3, 20, 16), "not a multiple of 8"),
    ("encode", (3, 16, 16), "4-D"),
    ("encode", (1, 16, 16, 3), "Channels last"),
    ("decode", (1, 3, 2, 2), "looks like an image"),
])
def test_bad_inputs_are_named(call, shape, match):
    vae = AutoencoderKL(VAEConfig.tiny())
    with pytest.raises(ValueError, match=match):
        getattr(vae, call)(torch.zeros(shape))


def test_bad_dtype_is_named():
    vae = AutoencoderKL(VAEConfig.tiny())
    with pytest.raises(ValueError, match=r"x / 127.5 - 1"):
        vae.encode(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="float64"):
        vae.decode(torch.zeros(1, 4, 2, 2, dtype=torch.float64))


def test_attention_is_single_head_softmax():
    """AttnBlock by hand: softmax(q k^T / sqrt(C)) v over the pixels, then proj_out, plus x."""
    torch.manual_seed(0)
    block = perturb_(AttnBlock(8, n_groups=2)).eval()
    x = torch.randn(2, 8, 3, 5)
    with torch.no_grad():
        h = block.norm(x)
        q, k, v = (conv(h).flatten(2) for conv in (block.q, block.k, block.v))  # (B, C, HW)
        w = torch.softmax(q.transpose(1, 2) @ k / 8 ** 0.5, dim=-1)  # (B, HW, HW)
        out = (v @ w.transpose(1, 2)).view(2, 8, 3, 5)
        want = x + block.proj_out(out)
        assert max_diff(block(x), want) <= 1e-5


# ---------------------------------------------------------------------------------------------
# load_vae: both layouts, and the files it must refuse.
# ---------------------------------------------------------------------------------------------

from safetensors.torch import save_file  # noqa: E402

from sdcourse.unet import Diffusion, UNetConfig  # noqa: E402
from sdcourse.vae_weights import load_vae  # noqa: E402
from sdcourse.weights import (  # noqa: E402
    ArchitectureError,
    CheckpointError,
    TruncatedCheckpointError,
    UnsafeCheckpointError,
    export_unet,
)

TINY = VAEConfig.tiny()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny random VAE (diffusers' init, perturbed) written as a diffusers pipeline folder (vae/ with
    config.json) and as a single-file SD checkpoint (first_stage_model.* beside a tiny course UNet)."""
    root = tmp_path_factory.mktemp("vae_files")
    torch.manual_seed(11)
    ref = perturb_(diffusers.AutoencoderKL(**diffusers_vae_config(TINY)), seed=11).eval()
    ref.save_pretrained(root / "pipeline" / "vae")  # safetensors + config.json
    state, _ = convert_diffusers_vae(ref.state_dict(), TINY)
    with torch.device("meta"):
        unet_shapes = Diffusion(UNetConfig.tiny()).state_dict()
    unet = {k: torch.zeros(v.shape) for k, v in export_unet(unet_shapes, "compvis").items()}
    single = {**unet, **{f"first_stage_model.{k}": v.contiguous() for k, v in state.items()}}
    save_file(single, str(root / "v1-tiny.safetensors"))
    torch.save({"state_dict": single, "global_step": 1}, root / "v1-tiny.ckpt")
    return root, ref, single


def decodes_like(vae: AutoencoderKL, ref, tol: float = 1e-5) -> None:
    x, z = inputs(TINY, 16, 24)
    with torch.no_grad():
        want = ref.decode(z).sample
        not_near_zero(want)
        assert max_diff(vae.decode(z), want) <= tol
        assert max_diff(vae.encode(x).mean, ref.encode(x).latent_dist.mean) <= tol


def test_loads_a_diffusers_folder_reading_its_config(files):
    root, ref, _ = files
    for path in (root / "pipeline", root / "pipeline" / "vae",
                 root / "pipeline" / "vae" / "diffusion_pytorch_model.safetensors"):
        vae = load_vae(path)  # n_groups=8 is only in config.json: a wrong guess would change every output
        assert vae.config == TINY and not vae.training
        decodes_like(vae, ref)


def test_loads_a_single_file_checkpoint(files):
    root, ref, _ = files
    for name in ("v1-tiny.safetensors", "v1-tiny.ckpt"):
        decodes_like(load_vae(root / name, config=TINY), ref)


def test_dtype_and_scaling_factor(files):
    root, _, _ = files
    vae = load_vae(root / "pipeline", dtype=torch.float16)
    assert {p.dtype for p in vae.parameters()} == {torch.float16}
    assert vae.scaling_factor == 0.18215


def test_widths_not_in_the_file_are_asked_for(files):
    root, _, _ = files
    with pytest.raises(ArchitectureError, match=r"(?s)GroupNorm groups is not stored.*VAEConfig\.tiny\(\)"):
        load_vae(root / "v1-tiny.safetensors")


def test_truncated_file_is_refused(files, tmp_path):
    root, _, _ = files
    data = (root / "v1-tiny.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedCheckpointError, match="download it again"):
        load_vae(cut, config=TINY)


class _RunsCode:
    """Pickles as a call to exec: loading the pickle fully would run `code`."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def test_unsafe_pickle_is_refused_and_not_executed(files, tmp_path):
    _, _, single = files
    marker = tmp_path / "code-was-executed"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": single, "callbacks": _RunsCode(f"open({str(marker)!r}, 'w').write('x')")}, path)
    with pytest.raises(UnsafeCheckpointError, match="arbitrary code"):
        load_vae(path, config=TINY)
    assert not marker.exists()


def test_wrong_keys_are_listed(files, tmp_path):
    _, _, single = files
    bad = dict(single)
    bad["first_stage_model.decoder.mid.attn_1.key.weight"] = bad.pop("first_stage_model.decoder.mid.attn_1.k.weight")
    bad["first_stage_model.quant_conv.bias"] = torch.zeros(7)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ArchitectureError) as info:
        load_vae(tmp_path / "bad.safetensors", config=TINY)
    message = str(info.value)
    assert "missing (1):\n  decoder.mid.attn_1.k.weight" in message
    assert "first_stage_model.decoder.mid.attn_1.key.weight" in message
    assert "quant_conv.bias" in message and "file (7,)" in message


def test_unknown_diffusers_keys_are_refused(files, tmp_path):
    root, ref, _ = files
    state = {k: v.contiguous() for k, v in ref.state_dict().items()}
    state["encoder.down_blocks.0.attentions.0.to_q.weight"] = torch.zeros(32, 32)
    save_file(state, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    (tmp_path / "config.json").write_text((root / "pipeline" / "vae" / "config.json").read_text())
    with pytest.raises(ArchitectureError, match=r"to_q.weight  \(file key, no place in the VAE\)"):
        load_vae(tmp_path)


@pytest.mark.parametrize("extra, kind", [("cond_stage_model.model.token_embedding.weight", "SD 2.x"),
                                         ("conditioner.embedders.0.transformer.x.weight", "SDXL")])
def test_sd2_and_sdxl_single_files_are_refused(files, tmp_path, extra, kind):
    _, _, single = files
    save_file({**single, extra: torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ArchitectureError, match=rf"(?s){kind}.*the VAE of this file is refused"):
        load_vae(tmp_path / "other.safetensors", config=TINY)


def test_other_autoencoders_are_refused_by_config(files, tmp_path):
    import json

    root, _, _ = files
    config = json.loads((root / "pipeline" / "vae" / "config.json").read_text())
    config.update(use_quant_conv=False, shift_factor=0.1159)  # what SD3 / FLUX VAEs write
    folder = tmp_path / "vae"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(
        (root / "pipeline" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes())
    with pytest.raises(ArchitectureError, match=r"use_quant_conv.*shift_factor"):
        load_vae(folder)


def test_a_unet_only_file_is_named(files, tmp_path):
    _, _, single = files
    save_file({k: v for k, v in single.items() if k.startswith("model.")}, str(tmp_path / "unet.safetensors"))
    with pytest.raises(ArchitectureError, match="holds a UNet only"):
        load_vae(tmp_path / "unet.safetensors")


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_vae(tmp_path / "nothing.safetensors")
    with pytest.raises(CheckpointError, match="No VAE weights in the folder"):
        load_vae(tmp_path)


def test_sd_v1_shapes_need_no_config():
    """A file with SD v1's widths in either layout gets SD v1's config (checked on `meta`: no data)."""
    from sdcourse.vae_weights import _config_from_shapes

    with torch.device("meta"):
        state = AutoencoderKL(VAEConfig()).state_dict()
    assert _config_from_shapes(state, "sd.safetensors") == VAEConfig()
    from_diffusers, unmapped = convert_diffusers_vae(export_diffusers_vae(state, VAEConfig()))  # levels from key names
    assert unmapped == [] and _config_from_shapes(from_diffusers, "vae") == VAEConfig()


def test_encode_image_and_decode_latents_match_diffusers_pipelines():
    """encode_image: diffusers' img2img (VaeImageProcessor.preprocess, latent_dist.sample(generator),
    * scaling_factor); decode_latents: every SD pipeline's end (/ scaling_factor, decode, postprocess)."""
    from diffusers.image_processor import VaeImageProcessor

    from sdcourse.vae_latents import decode_latents, encode_image

    ours, ref = reference_pair(TINY, seed=2)
    processor = VaeImageProcessor(vae_scale_factor=8)
    pixels = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = ref.encode(processor.preprocess(pixels)).latent_dist.sample(torch.Generator().manual_seed(4)) * 0.18215
        got = encode_image(ours, pixels, generator=torch.Generator().manual_seed(4))
        not_near_zero(want)
        assert max_diff(got, want) <= 1e-5
        as_uint8 = (pixels * 255).round().to(torch.uint8)
        from_uint8 = encode_image(ours, as_uint8[0], sample=False)  # (3, H, W) uint8 in [0, 255]
        assert max_diff(from_uint8, encode_image(ours, as_uint8[:1] / 255.0, sample=False)) <= 1e-6
        latents = torch.randn(2, 4, 2, 3, generator=torch.Generator().manual_seed(5))
        want = processor.postprocess(ref.decode(latents / 0.18215).sample, output_type="pt")
        got = decode_latents(ours, latents)
        not_near_zero(want)
        assert max_diff(got, want) <= 1e-5 and got.min() >= 0 and got.max() <= 1


def test_encode_image_names_a_wrong_pixel_range():
    from sdcourse.vae_latents import encode_image

    vae = AutoencoderKL(TINY)
    with pytest.raises(ValueError, match="divide by 255"):
        encode_image(vae, torch.full((3, 16, 16), 200.0))
    with pytest.raises(ValueError, match=r"already in \[-1, 1\]"):
        encode_image(vae, torch.full((3, 16, 16), -0.5))


def test_projections_stored_as_linear_weights_load(files, tmp_path):
    """Some converters write the single-file attention q/k/v/proj_out as (C, C) Linear weights."""
    root, ref, single = files
    flat = {k: (v.flatten(1) if ".attn_1." in k and k.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight"))
                else v) for k, v in single.items()}
    assert flat["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 2
    save_file(flat, str(tmp_path / "flat.safetensors"))
    decodes_like(load_vae(tmp_path / "flat.safetensors", config=TINY), ref)
