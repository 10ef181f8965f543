"""The course's UNet inside diffusers' StableDiffusionPipeline, offline.

One tiny random pipeline of the real classes (own tokenizer files, random CLIP text encoder, VAE
and UNet, no downloads) is built once for the module. Swapping in the course's UNet must give the
same noise predictions and the same images as diffusers' own UNet.
"""
import json

import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTokenizer

from sdcourse import Diffusion, UNetConfig
from sdcourse.pipeline import (
    TINY_WORDS,
    CourseUNet,
    diffusion_from_unet,
    tiny_pipeline,
    timestep_embedding,
    with_course_unet,
    write_tiny_tokenizer,
)
from sdcourse.record import AttentionRecorder
from sdcourse.weights import load_unet

PROMPT = "a photo of a red cat on the grass"


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(seed=0)


@pytest.fixture(scope="module")
def course(pipe):
    return with_course_unet(pipe)


def assert_close(got, expected, tol=1e-5):
    """|got - expected| <= tol everywhere, for a reference far from zero (a ~0 output would hide differences)."""
    got, expected = torch.as_tensor(got), torch.as_tensor(expected)
    scale = expected.abs().mean().item()
    assert scale > 1000 * tol, f"the reference is near zero (mean |x| {scale:.1e})"
    diff = (got - expected).abs().max().item()
    assert diff <= tol, f"max |diff| {diff:.2e} > {tol}"


def generate(p, prompt=PROMPT, **kwargs):
    kwargs = {"num_inference_steps": 3, "guidance_scale": 7.5, "output_type": "np", **kwargs}
    return p(prompt, generator=torch.Generator().manual_seed(0), **kwargs).images


def test_assert_close_refuses_a_near_zero_reference():
    with pytest.raises(AssertionError, match="near zero"):
        assert_close(torch.zeros(4), torch.zeros(4))  # equal, but a model printing zeros would pass
    with pytest.raises(AssertionError, match="max \\|diff\\|"):
        assert_close(torch.ones(4) + 1e-3, torch.ones(4))


def test_tiny_tokenizer_files_make_whole_word_tokens(tmp_path):
    folder = write_tiny_tokenizer(tmp_path, words=["red", "cat"], max_length=16)
    assert {"vocab.json", "merges.txt"} <= {p.name for p in folder.iterdir()}
    vocab = json.loads((folder / "vocab.json").read_text())
    tok = CLIPTokenizer.from_pretrained(folder)
    assert tok.model_max_length == 16
    assert tok.tokenize("Red CAT") == ["red</w>", "cat</w>"]  # lower-cased, one token per known word
    assert tok.tokenize("dog") == ["d", "o", "g</w>"]  # an unknown word falls back to bytes
    ids = tok("red cat").input_ids
    assert ids == [vocab["<|startoftext|>"], vocab["red</w>"], vocab["cat</w>"], vocab["<|endoftext|>"]]
    every_word = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path / "all"))
    assert every_word.tokenize(" ".join(TINY_WORDS)) == [w + "</w>" for w in TINY_WORDS]
    with pytest.raises(ValueError, match="lowercase"):
        write_tiny_tokenizer(tmp_path, words=["Cat"])


def test_course_unet_answers_like_a_diffusers_unet(pipe, course):
    unet = course.unet
    assert isinstance(unet, CourseUNet) and isinstance(unet.diffusion, Diffusion)
    assert isinstance(pipe.unet, UNet2DConditionModel), "the original pipeline must be left unchanged"
    assert pipe.text_encoder is course.text_encoder and pipe.vae is course.vae  # shared, not copied
    assert unet.config.in_channels == 4 and unet.config.sample_size == 16
    assert unet.config.time_cond_proj_dim is None
    assert unet.dtype == torch.float32 and unet.device.type == "cpu"
    assert course.device.type == "cpu" and course.dtype == torch.float32


@pytest.mark.parametrize("timestep", [981, torch.tensor(981), torch.tensor([981]), torch.tensor([981, 3])])
def test_one_denoising_step_equals_diffusers(pipe, course, timestep):
    torch.manual_seed(0)
    latents = torch.randn(2, 4, 16, 16)
    context = torch.randn(2, 77, 64)
    with torch.no_grad():
        expected = pipe.unet(latents, timestep, encoder_hidden_states=context).sample
        got = course.unet(latents, timestep, encoder_hidden_states=context).sample
        as_tuple = course.unet(latents, timestep, context, return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], got)
    assert_close(got, expected)


def test_pipeline_images_are_the_same_with_the_course_unet(pipe, course):
    expected = generate(pipe)
    got = generate(course)
    assert got.shape == (1, 128, 128, 3)
    assert_close(got, expected)
    assert expected.std() > 0.01  # not a flat image that would hide differences
    # the latents before the VAE, with a negative prompt and two images per prompt
    kwargs = dict(output_type="latent", negative_prompt="blue", num_images_per_prompt=2)
    expected, got = generate(pipe, **kwargs), generate(course, **kwargs)
    assert got.shape == (2, 4, 16, 16)
    assert_close(got / expected.abs().max(), expected / expected.abs().max())


def test_course_unet_from_a_saved_checkpoint(pipe, tmp_path):
    pipe.unet.save_pretrained(tmp_path / "unet")
    loaded = with_course_unet(pipe, load_unet(tmp_path))
    assert_close(generate(loaded, num_inference_steps=2), generate(pipe, num_inference_steps=2))


def test_tiny_pipeline_moves_norms_and_biases_only(pipe):
    plain = tiny_pipeline(seed=0, perturb=0.0)
    moved = dict(pipe.unet.named_parameters())
    for name, p in plain.unet.named_parameters():
        if p.ndim == 1:  # norm weights start at 1, norm and layer biases at 0: all moved
            assert (moved[name] - p).abs().min() > 0, name
        else:  # weight matrices and kernels: diffusers' own init, untouched
            assert torch.equal(moved[name], p), name
    norms = [p for n, p in plain.unet.named_parameters() if n.endswith("norm1.weight")]
    assert norms and all(torch.equal(p, torch.ones_like(p)) for p in norms)
    again = tiny_pipeline(seed=0)  # same seed, same pipeline
    assert all(torch.equal(p, moved[n]) for n, p in again.unet.named_parameters())


def test_diffusion_from_unet_shares_the_weights(pipe):
    diffusion = diffusion_from_unet(pipe.unet)
    assert diffusion.config == UNetConfig.tiny()
    assert diffusion.final.conv.weight.data_ptr() == pipe.unet.conv_out.weight.data_ptr()


def test_recorder_sees_cross_attention_through_the_pipeline(course):
    with AttentionRecorder(course.unet.diffusion, kind="cross", cfg=True) as rec:
        generate(course, num_inference_steps=2, output_type="latent")
    assert len(rec.names) == 16  # 6 down + 1 mid + 9 up attention blocks
    maps = rec.maps.token_maps()  # (77, 16, 16): one map per token, pixels' weights over tokens sum to 1
    assert maps.shape[-2:] == (16, 16)
    assert torch.allclose(maps.sum(0), torch.ones(16, 16), atol=1e-4)


def test_other_unet_features_are_refused(course):
    latents, context = torch.randn(1, 4, 16, 16), torch.randn(1, 77, 64)
    with torch.no_grad():
        course.unet(latents, 10, context, cross_attention_kwargs={})  # empty: nothing asked, fine
        for kwargs in (dict(timestep_cond=torch.zeros(1, 8)), dict(cross_attention_kwargs={"scale": 0.5}),
                       dict(down_block_additional_residuals=[torch.zeros(1)])):
            with pytest.raises(ValueError, match="belong to other UNets"):
                course.unet(latents, 10, context, **kwargs)
        with pytest.raises(ValueError, match="one per sample"):
            course.unet(latents.expand(2, -1, -1, -1), torch.tensor([1, 2, 3]), context)
    with pytest.raises(ValueError, match="wraps a sdcourse.Diffusion"):
        CourseUNet(torch.nn.Linear(1, 1))


def test_timestep_embedding_is_cos_then_sin():
    emb = timestep_embedding(torch.tensor(5), batch=3, dim=8, dtype=torch.float64)
    freqs = 10000.0 ** (-torch.arange(4, dtype=torch.float64) / 4)
    assert emb.shape == (1, 8) and emb.dtype == torch.float64
    assert torch.allclose(emb[0], torch.cat([torch.cos(5 * freqs), torch.sin(5 * freqs)]), atol=1e-6)


def test_pipeline_from_a_saved_folder_works_offline(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    again = StableDiffusionPipeline.from_pretrained(tmp_path, local_files_only=True)
    again.set_progress_bar_config(disable=True)
    course = with_course_unet(again, load_unet(tmp_path))
    assert_close(generate(course, num_inference_steps=2), generate(pipe, num_inference_steps=2))
