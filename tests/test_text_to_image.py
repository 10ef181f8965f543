"""The course's whole text-to-image pipeline equals diffusers' on the same tiny random weights.

One tiny random StableDiffusionPipeline (sdcourse.pipeline.tiny_pipeline) is written in both file
layouts: the diffusers pipeline folder (save_pretrained) and an SD v1.x single file
(first_stage_model.*, cond_stage_model.transformer.text_model.*, model.diffusion_model.*). The
course pipeline loaded from either must give diffusers' final image for the same seed, with DDIM and
with DDPM, for text-to-image and img2img. Measured max |diff| on the image (fp32, values in [0, 1]):
2e-6 to 3.7e-6 (the course's steps compute in float64, diffusers' schedulers in float32).
"""
import subprocess
import sys

import pytest
import torch
from diffusers import DDPMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor
from safetensors.torch import save_file

from sdcourse.pipeline import tiny_pipeline
from sdcourse.text_encoder_weights import config_from_transformers
from sdcourse.text_to_image import TextToImage, initial_latents, load_text_to_image, save_single_file
from sdcourse.vae_weights import config_from_diffusers_vae, convert_diffusers_vae
from sdcourse.weights import (
    ArchitectureError,
    TruncatedCheckpointError,
    UnsafeCheckpointError,
    config_from_diffusers,
    convert_diffusers_unet,
    export_unet,
)

PROMPT = "a photo of a red cat on the grass"
TOL = 1e-5  # on images in [0, 1]; measured <= 3.7e-6
SIZE = dict(height=64, width=128)  # latents 8 x 16


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(seed=0)


@pytest.fixture(scope="module")
def files(pipe, tmp_path_factory):
    root = tmp_path_factory.mktemp("t2i")
    pipe.save_pretrained(root / "pipeline")
    unet = export_unet(convert_diffusers_unet(pipe.unet.state_dict()), "compvis")  # model.diffusion_model.*
    vae, _ = convert_diffusers_vae(pipe.vae.state_dict(), config_from_diffusers_vae(pipe.vae.config))
    text = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in pipe.text_encoder.state_dict().items()}
    single = {**unet, **{f"first_stage_model.{k}": v for k, v in vae.items()},
              **{f"cond_stage_model.transformer.{k}": v for k, v in text.items()}}
    single = {k: v.detach().contiguous() for k, v in single.items()}
    save_file(single, str(root / "v1-tiny.safetensors"))
    return root, single


def configs(pipe):
    """The widths a tiny single file cannot state (heads, GroupNorm groups)."""
    return dict(unet_config=config_from_diffusers(pipe.unet.config), vae_config=config_from_diffusers_vae(pipe.vae.config),
                text_encoder_config=config_from_transformers(pipe.text_encoder.config))


def load(layout, files, pipe) -> TextToImage:
    root, _ = files
    if layout == "folder":
        return load_text_to_image(root / "pipeline")
    return load_text_to_image(root / "v1-tiny.safetensors", tokenizer=root / "pipeline" / "tokenizer", **configs(pipe))


def with_scheduler(pipe, sampler, cls=StableDiffusionPipeline):
    scheduler = pipe.scheduler if sampler == "ddim" else DDPMScheduler.from_config(pipe.scheduler.config)
    return cls(**{**pipe.components, "scheduler": scheduler})


def seed():
    return torch.Generator().manual_seed(7)


def assert_close(got, want, tol=TOL):
    assert got.shape == want.shape
    assert want.std().item() > 0.01, "the reference image is flat: it would hide differences"
    diff = (got - want).abs().max().item()
    assert diff <= tol, f"max |diff| {diff:.2e} > {tol}"


def test_seeding_matches_diffusers_randn_tensor():
    for dtype in (torch.float32, torch.float16):
        want = randn_tensor((2, 4, 8, 16), generator=seed(), device=torch.device("cpu"), dtype=dtype)
        assert torch.equal(initial_latents((2, 4, 8, 16), seed(), dtype), want)
    assert not torch.equal(initial_latents((1, 4, 8, 8), seed()), initial_latents((1, 4, 8, 8), torch.Generator()))


@pytest.mark.parametrize("layout", ["folder", "single_file"])
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_text_to_image_equals_diffusers(pipe, files, layout, sampler):
    course = load(layout, files, pipe)
    want = with_scheduler(pipe, sampler)(PROMPT, num_inference_steps=4, guidance_scale=7.5, generator=seed(),
                                         output_type="pt", **SIZE).images
    got = course(PROMPT, num_inference_steps=4, guidance_scale=7.5, sampler=sampler, generator=seed(),
                 progress=False, **SIZE)
    assert_close(got, want)
    # the check can fail: another seed, or no guidance, gives another image
    other = course(PROMPT, num_inference_steps=4, sampler=sampler, generator=torch.Generator().manual_seed(8),
                   progress=False, **SIZE)
    assert (other - want).abs().max() > 100 * TOL


def test_no_guidance_and_a_batch_equal_diffusers(pipe, files):
    course = load("folder", files, pipe)
    prompts = [PROMPT, "a blue house"]
    want = pipe(prompts, num_inference_steps=3, guidance_scale=1.0, generator=seed(), output_type="pt", **SIZE).images
    got = course(prompts, num_inference_steps=3, guidance_scale=1.0, generator=seed(), progress=False, **SIZE)
    assert_close(got, want)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_img2img_equals_diffusers(pipe, files, sampler):
    course = load("single_file", files, pipe)
    image = torch.rand(1, 3, 64, 128, generator=seed())
    ref = with_scheduler(pipe, sampler, StableDiffusionImg2ImgPipeline)
    want = ref(PROMPT, image=image, strength=0.6, num_inference_steps=5, guidance_scale=7.5, generator=seed(),
               output_type="pt").images
    got = course.img2img(PROMPT, image, strength=0.6, num_inference_steps=5, sampler=sampler, generator=seed(),
                         progress=False)
    assert_close(got, want)


def test_save_single_file_round_trip(pipe, files, tmp_path):
    course = load("folder", files, pipe)
    path = save_single_file(course, tmp_path / "written.safetensors")
    again = load_text_to_image(path, tokenizer=course.tokenizer, **configs(pipe))
    for ours, theirs in ((course.unet, again.unet), (course.vae, again.vae), (course.text_encoder, again.text_encoder)):
        a, b = ours.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_callback_sees_every_step(pipe, files):
    course = load("folder", files, pipe)
    seen = []
    course(PROMPT, num_inference_steps=3, generator=seed(), progress=False,
           callback=lambda i, t, x, x0: seen.append((i, t, tuple(x.shape), tuple(x0.shape))), **SIZE)
    assert seen == [(0, 667, (1, 4, 8, 16), (1, 4, 8, 16)), (1, 334, (1, 4, 8, 16), (1, 4, 8, 16)),
                    (2, 1, (1, 4, 8, 16), (1, 4, 8, 16))]


@pytest.mark.parametrize("kwargs, match", [
    (dict(height=100), "height must be a positive multiple of 8"),
    (dict(width=60), "width must be a positive multiple of 8"),
    (dict(guidance_scale=0.5), "guidance_scale must be >= 1.*diffusers silently"),
    (dict(sampler="euler"), "sampler must be one of"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(latents=torch.zeros(1, 4, 8, 8)), r"latents \(1, 4, 8, 8\) must be \(1, 4, 8, 16\)"),
])
def test_bad_inputs_are_named(pipe, files, kwargs, match):
    course = load("folder", files, pipe)
    with pytest.raises(ValueError, match=match):
        course(PROMPT, **{**SIZE, "progress": False, **kwargs})


@pytest.mark.parametrize("strength, match", [(1.5, r"strength must be a number in \[0, 1\]"),
                                             (-0.1, "strength must be"), (0.1, "nothing to denoise")])
def test_bad_strength_is_named(pipe, files, strength, match):
    course = load("folder", files, pipe)
    with pytest.raises(ValueError, match=match):
        course.img2img(PROMPT, torch.rand(1, 3, 64, 64), strength=strength, num_inference_steps=5, progress=False)


def test_a_single_file_needs_a_tokenizer(files):
    root, _ = files
    with pytest.raises(ValueError, match="holds no tokenizer"):
        load_text_to_image(root / "v1-tiny.safetensors")
    with pytest.raises(ValueError, match="not a diffusers pipeline folder: no unet/"):
        load_text_to_image(root / "pipeline" / "tokenizer")


def test_truncated_file_is_refused(files, pipe, tmp_path):
    root, _ = files
    data = (root / "v1-tiny.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedCheckpointError):
        load_text_to_image(tmp_path / "cut.safetensors", tokenizer=root / "pipeline", **configs(pipe))


class _RunsCode:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def test_unsafe_pickle_is_refused_and_not_executed(files, pipe, tmp_path):
    root, single = files
    marker = tmp_path / "code-was-executed"
    torch.save({"state_dict": single, "x": _RunsCode(f"open({str(marker)!r}, 'w')")}, tmp_path / "evil.ckpt")
    with pytest.raises(UnsafeCheckpointError):
        load_text_to_image(tmp_path / "evil.ckpt", tokenizer=root / "pipeline", **configs(pipe))
    assert not marker.exists()


def test_sd2_like_file_is_refused(files, pipe, tmp_path):
    root, single = files
    save_file({**single, "cond_stage_model.model.token_embedding.weight": torch.zeros(2, 2)},
              str(tmp_path / "sd2.safetensors"))
    with pytest.raises(ArchitectureError, match="SD 2"):
        load_text_to_image(tmp_path / "sd2.safetensors", tokenizer=root / "pipeline", **configs(pipe))


def test_runs_without_diffusers_or_transformers_models(files):
    """Loading and generating import nothing of diffusers, and of transformers only the tokenizer."""
    root, _ = files
    code = (
        "import sys, torch\n"
        "from sdcourse.text_to_image import load_text_to_image\n"
        f"pipe = load_text_to_image({str(root / 'pipeline')!r})\n"
        "pipe('a cat', height=64, width=64, num_inference_steps=2, progress=False)\n"
        "used = [m for m in sys.modules if m.startswith('diffusers') or 'modeling' in m]\n"
        "print('USED', used)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "USED []" in out.stdout, out.stdout
