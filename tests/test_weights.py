"""Loading SD v1.x weights into the course's `Diffusion`: both real layouts, safely and strictly.

The checkpoints are synthetic: a random diffusers UNet (tiny config; the full SD v1.5 config in the
slow test) with norms and biases moved away from 1/0, written in
- the diffusers layout by diffusers itself (`save_pretrained`), and
- the original single-file layout (`model.diffusion_model.*`) by this file's own writer, which is
  checked against diffusers' converter for that layout (`convert_ldm_unet_checkpoint`).
The loaded model must give the diffusers UNet's output (fp32 <= 1e-5), an output far from zero.
A CompVis training checkpoint with both the raw and the EMA weights is written the same way, its
EMA naming checked against diffusers' converter (`extract_ema=True`). Reading files and refusing
bad ones is tested in test_checkpoint_files.py.
"""
import copy
import gc
import re
from types import SimpleNamespace

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from safetensors.torch import load_file, save_file

from sdcourse import Diffusion, UNetConfig, sinusoidal_embedding
from sdcourse.perturb import perturb_
from sdcourse.weights import (
    ArchitectureError,
    CheckpointError,
    check_sd_v1,
    config_from_diffusers,
    convert_compvis_unet,
    convert_diffusers_unet,
    diffusers_config,
    export_unet,
    load_unet,
    save_unet,
    source_keys,
)

TINY = UNetConfig.tiny()


# ------------------------------------------------------------------ the test's own CompVis writer
_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
           "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def compvis_key(key: str) -> str:
    """A diffusers key of an SD v1 UNet -> its name in the original CompVis checkpoint."""
    fixed = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
             "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2."}
    for old, new in fixed.items():
        if key.startswith(old):
            return new + key[len(old):]
    m = re.match(r"(down|up)_blocks\.(\d)\.(resnets|attentions|downsamplers|upsamplers)\.(\d)\.(.*)", key)
    if m:
        side, level, kind, j, rest = m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
        if side == "down":
            index = 3 * level + 3 if kind == "downsamplers" else 3 * level + j + 1
            block = f"input_blocks.{index}"
        else:
            index = 3 * level + 2 if kind == "upsamplers" else 3 * level + j
            block = f"output_blocks.{index}"
        if kind == "downsamplers":
            return f"{block}.0.op.{rest[len('conv.'):]}"
        if kind == "upsamplers":
            return f"{block}.{1 if level == 0 else 2}.{rest}"
        position = 0 if kind == "resnets" else 1
    else:
        m = re.match(r"mid_block\.(resnets|attentions)\.(\d)\.(.*)", key)
        kind, j, rest = m.group(1), int(m.group(2)), m.group(3)
        block, position = "middle_block", {"resnets": 2 * j, "attentions": 1}[kind]
    if kind == "resnets":
        layer, _, param = rest.rpartition(".")
        rest = f"{_RESNET[layer]}.{param}"
    return f"{block}.{position}.{rest}"


def compvis_checkpoint(unet_state: dict, extras: bool = True) -> dict:
    """A whole single-file checkpoint: the UNet under model.diffusion_model., plus stand-ins for the rest."""
    out = {"model.diffusion_model." + compvis_key(k): v.contiguous() for k, v in unet_state.items()}
    if extras:  # what else such a file holds; the loader must leave it alone
        out["first_stage_model.decoder.conv_out.weight"] = torch.randn(3, 8, 3, 3)
        out["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = torch.randn(10, 8)
        out["alphas_cumprod"] = torch.linspace(0.99, 0.01, 1000)
    return out


def random_unet(config=TINY, seed=0, **overrides):
    torch.manual_seed(seed)
    return perturb_(UNet2DConditionModel(**{**diffusers_config(config), **overrides}), scale=0.2, only_1d=True).eval()


def assert_same_output(model, ref, config=TINY, hw=(16, 16), tol=1e-5, dtype=torch.float32):
    torch.manual_seed(1)
    latent = torch.randn(2, config.in_channels, *hw, dtype=dtype)
    context = torch.randn(2, 7, config.d_context, dtype=dtype)
    t = torch.tensor([981, 17])
    with torch.no_grad():
        expected = ref(latent, t, context).sample
        got = model(latent, context, sinusoidal_embedding(t, config.n_time_embd).to(dtype))
    scale = expected.abs().mean().item()
    assert scale > 1000 * tol, f"the reference output is near zero (mean |x| {scale:.1e}): it would hide differences"
    diff = (got - expected).abs().max().item()
    assert diff <= tol, f"max |diff| {diff:.2e} > {tol}"


def test_assert_same_output_refuses_a_near_zero_reference():
    class ZeroReference(torch.nn.Module):  # diffusers' calling convention, outputs zeros
        def forward(self, latent, t, context):
            return SimpleNamespace(sample=torch.zeros_like(latent))

    class ZeroModel(torch.nn.Module):  # the course's calling convention, outputs zeros
        def forward(self, latent, context, time):
            return torch.zeros_like(latent)

    with pytest.raises(AssertionError, match="near zero"):  # equal outputs, but they would hide any mistake
        assert_same_output(ZeroModel(), ZeroReference())


@pytest.fixture(scope="module")
def ref():
    return random_unet()


@pytest.fixture(scope="module")
def files(ref, tmp_path_factory):
    """The same tiny UNet written in every supported layout and format."""
    d = tmp_path_factory.mktemp("ckpt")
    single = compvis_checkpoint(ref.state_dict())
    save_file(single, str(d / "v1-tiny.safetensors"))
    torch.save({"state_dict": single, "global_step": 1}, d / "v1-tiny.ckpt")  # zip pickle, Lightning-style
    torch.save(single, d / "v1-tiny-legacy.ckpt", _use_new_zipfile_serialization=False)
    ref.save_pretrained(d / "pipeline" / "unet")  # diffusers writes its own layout + config.json
    (d / "pipeline" / "model_index.json").write_text("{}")
    return d


# ------------------------------------------------------------------ the writer itself is right
def test_the_tests_compvis_writer_agrees_with_diffusers_converter(ref):
    sd = ref.state_dict()
    back = convert_ldm_unet_checkpoint(compvis_checkpoint(sd), dict(ref.config))
    assert set(back) == set(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def test_export_unet_writes_the_original_layouts(ref):
    notes = convert_diffusers_unet(ref.state_dict())
    expected = compvis_checkpoint(ref.state_dict(), extras=False)
    got = export_unet(notes, "compvis")
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    got = export_unet(notes, "diffusers")
    assert set(got) == set(ref.state_dict())
    assert all(torch.equal(got[k], v) for k, v in ref.state_dict().items())


def test_source_keys_name_the_original_layers():
    assert source_keys("unet.encoders.3.0.weight", "compvis") == ["model.diffusion_model.input_blocks.3.0.op.weight"]
    assert source_keys("unet.decoders.2.1.conv.bias", "compvis") == ["model.diffusion_model.output_blocks.2.1.conv.bias"]
    assert source_keys("unet.decoders.8.2.conv.weight", "diffusers") == ["up_blocks.2.upsamplers.0.conv.weight"]
    assert source_keys("time_embedding.linear_2.weight", "compvis") == ["model.diffusion_model.time_embed.2.weight"]
    assert source_keys("unet.bottleneck.2.linear_time.weight", "compvis") == [
        "model.diffusion_model.middle_block.2.emb_layers.1.weight"]
    assert source_keys("unet.encoders.1.1.attention_1.in_proj.weight", "compvis") == [
        f"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_{x}.weight" for x in "qkv"]
    with pytest.raises(ValueError, match="layout"):
        source_keys("final.conv.weight", "ldm")


def test_convert_compvis_unet_matches_diffusers_conversion(ref):
    single = compvis_checkpoint(ref.state_dict())
    a, b = convert_compvis_unet(single), convert_diffusers_unet(ref.state_dict())
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_keys_give_one_error_in_every_layout(ref):
    extra = {"add_embedding.linear_1.weight": torch.zeros(2, 2)}  # an SDXL-only layer
    with pytest.raises(ArchitectureError, match=r"1 key\(s\) of this diffusers checkpoint have no place") as a:
        convert_diffusers_unet({**ref.state_dict(), **extra})
    single = compvis_checkpoint(ref.state_dict(), extras=False)
    single["model.diffusion_model.label_emb.0.0.weight"] = torch.zeros(2, 2)
    with pytest.raises(ArchitectureError, match=r"1 key\(s\) of this CompVis checkpoint have no place") as b:
        convert_compvis_unet(single)
    # one message, the same words apart from the layout and the key
    assert str(a.value).split("\n")[2:] == str(b.value).split("\n")[2:]


# ------------------------------------------------------------------ loading equals diffusers
@pytest.mark.parametrize("name", ["v1-tiny.safetensors", "v1-tiny.ckpt", "v1-tiny-legacy.ckpt"])
def test_single_file_checkpoint_loads_and_equals_diffusers(files, ref, name):
    model = load_unet(files / name, config=TINY)
    assert isinstance(model, Diffusion) and not model.training
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
    assert_same_output(model, ref)


@pytest.mark.parametrize("where", ["pipeline", "pipeline/unet", "pipeline/unet/diffusion_pytorch_model.safetensors"])
def test_diffusers_layout_loads_and_equals_diffusers(files, ref, where):
    model = load_unet(files / where)  # the config comes from unet/config.json
    assert model.config == TINY
    assert_same_output(model, ref)


# ------------------------------------------------------------------ EMA weights in a training checkpoint
def ema_checkpoint(raw_state: dict, ema_state: dict, raw: bool = True) -> dict:
    """A CompVis training checkpoint: raw weights under model.diffusion_model., their EMA under
    model_ema. with the parameter name's dots removed (LitEma's buffer names), and its two counters."""
    out = compvis_checkpoint(raw_state) if raw else {}
    for key, value in compvis_checkpoint(ema_state, extras=False).items():  # model.diffusion_model.x.y
        out["model_ema." + key[len("model."):].replace(".", "")] = value  # model_ema.diffusion_modelxy
    out["model_ema.decay"] = torch.tensor(0.9999)
    out["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    return out


@pytest.fixture(scope="module")
def ema_files(ref, tmp_path_factory):
    d = tmp_path_factory.mktemp("ema")
    ema = random_unet(seed=1)
    both = ema_checkpoint(ref.state_dict(), ema.state_dict())
    save_file(both, str(d / "full-ema.safetensors"))
    torch.save({"state_dict": both, "global_step": 5}, d / "full-ema.ckpt")
    save_file(ema_checkpoint(ref.state_dict(), ema.state_dict(), raw=False), str(d / "ema-only.safetensors"))
    return d, ema


def test_the_tests_ema_writer_agrees_with_diffusers_converter(ref):
    ema = random_unet(seed=1)
    both = ema_checkpoint(ref.state_dict(), ema.state_dict())
    back = convert_ldm_unet_checkpoint(both, dict(ref.config), extract_ema=True)
    assert set(back) == set(ema.state_dict())
    assert all(torch.equal(back[k], v) for k, v in ema.state_dict().items())


@pytest.mark.parametrize("name", ["full-ema.safetensors", "full-ema.ckpt"])
def test_a_training_checkpoint_loads_its_ema_weights_and_says_so(ema_files, ref, name, capsys):
    folder, ema = ema_files
    assert_same_output(load_unet(folder / name, config=TINY), ema)
    said = capsys.readouterr().out
    assert re.search(r"holds two copies of the UNet: loaded the EMA weights \(model_ema\.\*", said), said
    assert_same_output(load_unet(folder / name, config=TINY, ema=True), ema)
    assert_same_output(load_unet(folder / name, config=TINY, ema=False), ref)
    assert "loaded the raw training weights" in capsys.readouterr().out


def test_ema_choice_errors_name_the_fix(ema_files, files, ref, capsys):
    folder, ema = ema_files
    assert_same_output(load_unet(folder / "ema-only.safetensors", config=TINY), ema)
    assert "EMA weights only" in capsys.readouterr().out
    with pytest.raises(ArchitectureError, match=r"only the EMA copy.*ema=None"):
        load_unet(folder / "ema-only.safetensors", config=TINY, ema=False)
    with pytest.raises(ArchitectureError, match=r"no EMA copy.*ema=None"):
        load_unet(files / "v1-tiny.safetensors", config=TINY, ema=True)
    load_unet(files / "v1-tiny.safetensors", config=TINY)  # one copy only: nothing to say
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("layout", ["bare CompVis keys", "course names"])
def test_other_key_spellings_load(tmp_path, ref, layout):
    if layout == "course names":  # a saved course Diffusion state dict
        tensors = convert_diffusers_unet(ref.state_dict())
    else:  # a UNet-only file of the original layout, without model.diffusion_model.
        tensors = {k[len("model.diffusion_model."):]: v for k, v in compvis_checkpoint(ref.state_dict(), False).items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_path / "unet.safetensors"))
    assert_same_output(load_unet(tmp_path / "unet.safetensors", config=TINY), ref)


def test_dtype_and_device_are_chosen(files, ref):
    model = load_unet(files / "v1-tiny.safetensors", dtype=torch.float64, config=TINY)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert_same_output(model, copy.deepcopy(ref).double(), dtype=torch.float64, tol=1e-10)
    half = load_unet(files / "pipeline", dtype=torch.float16)
    expected = convert_diffusers_unet(ref.state_dict())
    assert all(torch.equal(v, expected[k].half()) for k, v in half.state_dict().items())


def test_fp16_variant_is_preferred_for_fp16(tmp_path, ref):
    ref.save_pretrained(tmp_path / "unet")
    fp16 = {k: v.half() + 0 for k, v in ref.state_dict().items()}
    fp16["conv_out.bias"] = fp16["conv_out.bias"] + 1  # marks which file was read
    save_file(fp16, str(tmp_path / "unet" / "diffusion_pytorch_model.fp16.safetensors"))
    marked = load_unet(tmp_path, dtype=torch.float16).final.conv.bias
    unmarked = load_unet(tmp_path, dtype=torch.float32).final.conv.bias
    assert torch.allclose(marked.float(), unmarked + 1, atol=1e-2)


def test_save_unet_round_trip(tmp_path, ref):
    ref.save_pretrained(tmp_path / "unet")
    model = load_unet(tmp_path / "unet")
    save_unet(model, tmp_path / "compvis.safetensors", layout="compvis")
    save_unet(model, tmp_path / "diffusers.safetensors", layout="diffusers")
    # the diffusers file loads strictly into diffusers' own UNet
    fresh = UNet2DConditionModel(**diffusers_config(TINY))
    fresh.load_state_dict(load_file(str(tmp_path / "diffusers.safetensors")), strict=True)
    assert_same_output(model, fresh.eval())
    again = load_unet(tmp_path / "compvis.safetensors", config=TINY)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError, match="safetensors"):
        save_unet(model, tmp_path / "x.ckpt")


# ------------------------------------------------------------------ refusing other architectures
def test_sd2_like_files_are_refused(tmp_path):
    sd2 = random_unet(use_linear_projection=True, attention_head_dim=[2, 4, 8, 8])
    sd2.save_pretrained(tmp_path / "sd2")
    save_file(compvis_checkpoint(sd2.state_dict()), str(tmp_path / "sd2.safetensors"))
    for path in (tmp_path / "sd2", tmp_path / "sd2.safetensors"):
        with pytest.raises(ArchitectureError, match=r"SD 2\.x UNet, not SD v1\.x.*linear proj_in"):
            load_unet(path, config=TINY)


def test_sdxl_like_files_are_refused(tmp_path, ref):
    xl = random_unet(
        block_out_channels=(32, 64, 128), down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 2,
        up_block_types=("CrossAttnUpBlock2D",) * 2 + ("UpBlock2D",), transformer_layers_per_block=(1, 2, 2),
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=80,
        use_linear_projection=True,
    )
    xl.save_pretrained(tmp_path / "xl")
    single = compvis_checkpoint(ref.state_dict())  # an SD v1 file with SDXL's size embedding added
    single["model.diffusion_model.label_emb.0.0.weight"] = torch.randn(128, 80)
    save_file(single, str(tmp_path / "xl.safetensors"))
    for path in (tmp_path / "xl", tmp_path / "xl.safetensors"):
        with pytest.raises(ArchitectureError, match=r"SDXL UNet, not SD v1\.x.*size"):
            load_unet(path, config=TINY)


@pytest.mark.parametrize("kind, overrides, pattern", [
    ("SD 2.1", dict(attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024, use_linear_projection=True),
     r"SD 2\.x.*1024-wide"),
    ("SDXL", dict(block_out_channels=(320, 640, 1280), down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 2,
                  up_block_types=("CrossAttnUpBlock2D",) * 2 + ("UpBlock2D",), transformer_layers_per_block=(1, 2, 10),
                  attention_head_dim=[5, 10, 20], cross_attention_dim=2048, use_linear_projection=True,
                  addition_embed_type="text_time", addition_time_embed_dim=256,
                  projection_class_embeddings_input_dim=2816), r"SDXL.*2048-wide"),
])
def test_full_size_sd2_and_sdxl_are_recognised_from_shapes_alone(kind, overrides, pattern):
    with torch.device("meta"):  # shapes only: no memory
        unet = UNet2DConditionModel(**{**diffusers_config(), **overrides})
    with pytest.raises(ArchitectureError, match=pattern):
        check_sd_v1(unet.state_dict())
    if kind == "SD 2.1":  # same block plan: also writable in the original layout
        with pytest.raises(ArchitectureError, match=pattern):
            check_sd_v1(compvis_checkpoint(unet.state_dict(), extras=False))
    with pytest.raises(ArchitectureError, match=r"SD 2\.x" if kind == "SD 2.1" else "SDXL"):
        config_from_diffusers(unet.config)
    with torch.device("meta"):
        check_sd_v1(UNet2DConditionModel(**diffusers_config()).state_dict())  # SD v1 passes


def test_renamed_key_gives_a_readable_table(files, tmp_path):
    single = load_file(str(files / "v1-tiny.safetensors"))
    good = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"
    single[good.replace("in_layers.2", "in_layers.9")] = single.pop(good)
    single["model.diffusion_model.out.2.bias"] = torch.zeros(5)  # and one mis-shaped tensor
    save_file(single, str(tmp_path / "renamed.safetensors"))
    with pytest.raises(ArchitectureError) as info:
        load_unet(tmp_path / "renamed.safetensors", config=TINY)
    message = str(info.value)
    assert re.search(r"missing \(1\):\n  unet\.encoders\.1\.0\.conv_feature\.weight  <- file key " + re.escape(good), message)
    assert re.search(r"unexpected \(1\):\n  model\.diffusion_model\.input_blocks\.1\.0\.in_layers\.9\.weight", message)
    assert re.search(r"mis-shaped \(1\):\n  final\.conv\.bias +file \(5,\) +model \(4,\)", message)


def test_other_widths_need_a_config(files):
    with pytest.raises(ArchitectureError, match=r"\(32, 64, 128\).*UNetConfig\.tiny\(\)"):
        load_unet(files / "v1-tiny.safetensors")  # heads and groups are not in the file


def test_config_from_diffusers_reads_the_architecture():
    assert config_from_diffusers(UNet2DConditionModel(**diffusers_config(TINY)).config) == TINY
    with torch.device("meta"):
        assert config_from_diffusers(UNet2DConditionModel(**diffusers_config()).config) == UNetConfig()
    with pytest.raises(ArchitectureError, match="layers_per_block"):
        config_from_diffusers({**diffusers_config(), "layers_per_block": 3})


def test_bad_arguments_name_the_fix(files, tmp_path):
    with pytest.raises(ValueError, match="floating"):
        load_unet(files / "v1-tiny.safetensors", dtype=torch.int64, config=TINY)
    with pytest.raises(CheckpointError, match="does not exist.*Download"):
        load_unet(tmp_path / "missing.safetensors")
    (tmp_path / "weights.npz").write_bytes(b"123")
    with pytest.raises(CheckpointError, match="unknown file type"):
        load_unet(tmp_path / "weights.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="No UNet weights in the folder"):
        load_unet(tmp_path / "empty")
    save_file({"encoder.conv_in.weight": torch.zeros(1)}, str(tmp_path / "vae.safetensors"))
    with pytest.raises(ArchitectureError, match="No UNet weights found"):
        load_unet(tmp_path / "vae.safetensors")
    with pytest.raises(ValueError, match="ema must be None"):
        load_unet(files / "v1-tiny.safetensors", config=TINY, ema="yes")


# ------------------------------------------------------------------ full size (the lead runs these)
@pytest.mark.slow
def test_full_sd_v15_checkpoints_load_and_equal_diffusers(tmp_path):
    """SD v1.5's real config: 859,520,964 parameters, written in both layouts (~3.4 GB each on disk)."""
    config = UNetConfig()
    ref = random_unet(config)
    assert sum(p.numel() for p in ref.parameters()) == 859_520_964
    save_file(compvis_checkpoint(ref.state_dict()), str(tmp_path / "v1-5-layout.safetensors"))
    model = load_unet(tmp_path / "v1-5-layout.safetensors")  # SD v1 config recognised from the shapes
    assert model.config == config
    assert_same_output(model, ref, config, hw=(8, 8))
    del model
    gc.collect()
    (tmp_path / "v1-5-layout.safetensors").unlink()
    ref.save_pretrained(tmp_path / "unet")
    model = load_unet(tmp_path)
    assert_same_output(model, ref, config, hw=(8, 8))
