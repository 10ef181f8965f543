"""The exercise checkers of notebook 09 (the diagonal Gaussian, the asymmetric Downsample, the VAE's
attention block, the latent scale): a stub gives [todo] and the reference, a right answer passes and
is returned, each named mistake is named and lies at least 10x the tolerance away from the right answer,
forbidden shortcuts are refused.

Every answer, right or wrong, is written here as a learner would (its own code, not sdcourse's).
Independent facts: CompVis' Downsample pads (0, 1, 0, 1); its logvar clamp is [-30, 20]; diffusers'
AutoencoderKL default scaling_factor is 0.18215.
"""
import inspect
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import sdcourse
from sdcourse import checks
from sdcourse.checks import ExerciseError
from sdcourse.checks import nb09_vae as nb09
from sdcourse.checks.core import MARGINS

from checker_asserts import StubModule, assert_names, assert_todo_then_reference, stub, verdict


def assert_margins(checker, answer):
    MARGINS.clear()
    assert verdict(checker, answer).passed
    assert MARGINS, "the checker recorded no named mistakes"
    for check, mistake, ratio in MARGINS:
        assert ratio >= 10, (check, mistake, ratio)


# --- the diagonal Gaussian -----------------------------------------------------------------------------

def gaussian_class(bug=None):
    class Gaussian:
        def __init__(self, parameters):
            if bug == "batch":
                self.mean, logvar = torch.chunk(parameters, 2, dim=0)
            elif bug == "swapped":
                logvar, self.mean = torch.chunk(parameters, 2, dim=1)
            else:
                self.mean, logvar = torch.chunk(parameters, 2, dim=1)
            self.logvar = logvar if bug == "no-clamp" else torch.clamp(logvar, -30.0, 20.0)
            self.var = torch.exp(self.logvar)
            self.std = self.var if bug == "exp-logvar" else torch.sqrt(self.var)

        def sample(self, generator=None):
            if bug == "no-generator":
                noise = torch.randn(self.mean.shape)
            elif bug == "uniform":
                noise = torch.rand(self.mean.shape, generator=generator)
            else:
                noise = torch.randn(self.mean.shape, generator=generator)
            if bug == "var":
                return self.mean + self.var * noise
            if bug == "no-noise":
                return self.mean
            return self.mean + self.std * noise

        def mode(self):
            if bug == "mode-samples":
                return self.sample()
            if bug == "mode-seeded":
                return self.sample(torch.Generator().manual_seed(7))
            return self.mean
    return Gaussian


def test_gaussian_passes_and_stub_gives_the_reference(capsys):
    cls = gaussian_class()
    assert checks.check_diagonal_gaussian(cls) is cls
    assert "[ok] DiagonalGaussianDistribution" in capsys.readouterr().out
    assert_todo_then_reference(checks.check_diagonal_gaussian, StubModule,
                               sdcourse.vae.DiagonalGaussianDistribution, capsys)
    assert verdict(checks.check_diagonal_gaussian, sdcourse.vae.DiagonalGaussianDistribution).passed


@pytest.mark.parametrize("bug, mistake", [
    ("exp-logvar", nb09.STD_IS_EXP_LOGVAR), ("no-clamp", nb09.NO_CLAMP), ("swapped", nb09.HALVES_SWAPPED),
    ("batch", nb09.SPLIT_BATCH), ("var", nb09.SAMPLE_WITH_VAR), ("uniform", nb09.SAMPLE_UNIFORM),
    ("no-noise", nb09.SAMPLE_NO_NOISE), ("no-generator", nb09.GENERATOR_IGNORED),
    ("mode-samples", nb09.MODE_SAMPLES), ("mode-seeded", nb09.MODE_SAMPLES),
])
def test_gaussian_names_the_mistake(bug, mistake):
    assert_names(checks.check_diagonal_gaussian, gaussian_class(bug), mistake)


def test_gaussian_mistakes_are_far_from_the_answer():
    assert_margins(checks.check_diagonal_gaussian, gaussian_class())


def test_gaussian_clamp_is_compvis_and_diffusers():
    """The clamp the checker expects is the one diffusers' DiagonalGaussianDistribution applies."""
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    params = torch.cat([torch.zeros(1, 4, 1, 2), torch.tensor([50.0, -50.0]).expand(1, 4, 1, 2)], dim=1)
    reference = DiagonalGaussianDistribution(params)
    assert reference.logvar.flatten()[:2].tolist() == [nb09.LOGVAR_HIGH, nb09.LOGVAR_LOW]


# --- the Downsample ------------------------------------------------------------------------------------------

def downsample_class(bug=None):
    class Down(nn.Module):
        def __init__(self, channels):
            super().__init__()
            padding = 1 if bug in ("conv-padding", "twice") else 0
            self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=padding)

        def forward(self, x):
            pad = {"symmetric": (1, 1, 1, 1), "top-left": (1, 0, 1, 0), "height": (0, 0, 1, 1)}.get(bug, (0, 1, 0, 1))
            if bug in ("none", "conv-padding"):
                return self.conv(x)
            if bug == "reflect":
                return self.conv(F.pad(x, pad, mode="reflect"))
            return self.conv(F.pad(x, pad))
    return Down


def test_downsample_passes_and_stub_gives_the_reference(capsys):
    cls = downsample_class()
    assert checks.check_downsample(cls) is cls
    assert "[ok] Downsample" in capsys.readouterr().out
    assert_todo_then_reference(checks.check_downsample, StubModule, sdcourse.vae.Downsample, capsys)


@pytest.mark.parametrize("bug, mistake", [
    ("symmetric", nb09.SYMMETRIC_PADDING), ("conv-padding", nb09.SYMMETRIC_PADDING),
    ("top-left", nb09.SYMMETRIC_PADDING), ("reflect", nb09.REFLECT_PADDING), ("none", nb09.NO_PADDING),
    ("height", nb09.PAD_HEIGHT_ONLY), ("twice", nb09.PADDED_TWICE),
])
def test_downsample_names_the_mistake(bug, mistake):
    assert_names(checks.check_downsample, downsample_class(bug), mistake)


def test_downsample_mistakes_are_far_from_the_answer():
    assert_margins(checks.check_downsample, downsample_class())


def test_downsample_padding_is_diffusers():
    """The padding the checker expects is the one of diffusers' VAE Downsample2D (padding=0)."""
    from diffusers.models.downsampling import Downsample2D

    torch.manual_seed(0)
    theirs = Downsample2D(4, use_conv=True, padding=0)
    ours = downsample_class()(4)
    ours.conv.load_state_dict(theirs.conv.state_dict())
    x = torch.randn(1, 4, 8, 6)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_downsample_wrong_names_are_refused():
    class Renamed(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv2d = nn.Conv2d(channels, channels, 3, stride=2)

    result = verdict(checks.check_downsample, Renamed)
    assert not result.passed and "conv.weight" in result.hint


# --- the attention block -------------------------------------------------------------------------------------

def attention_class(bug=None, shortcut=None):
    class Attention(nn.Module):
        def __init__(self, channels, n_groups=32):
            super().__init__()
            self.norm = nn.GroupNorm(n_groups, channels, eps=1e-5 if bug == "eps" else 1e-6)
            self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

        def forward(self, x):
            h = self.norm(x)
            b, c, height, width = h.shape
            q = self.q(h).reshape(b, c, height * width).permute(0, 2, 1)   # (B, HW, C)
            k = self.k(h).reshape(b, c, height * width)                    # (B, C, HW)
            v = self.v(h).reshape(b, c, height * width).permute(0, 2, 1)   # (B, HW, C)
            if shortcut == "sdpa":
                out = F.scaled_dot_product_attention(q, k.transpose(1, 2), v)
            else:
                scores = torch.bmm(q, k)
                if bug != "no-scale":
                    scores = scores / (c if bug == "by-c" else c ** 0.5)
                weights = torch.softmax(scores, dim=1 if bug == "queries" else 2)
                out = torch.bmm(weights, v)                                # (B, HW, C)
            out = self.proj_out(out.permute(0, 2, 1).reshape(b, c, height, width))
            if bug == "no-residual":
                return out
            return (h if bug == "normed" else x) + out
    return Attention


def test_attention_passes_and_stub_gives_the_reference(capsys):
    cls = attention_class()
    assert checks.check_vae_attention(cls) is cls
    assert "[ok] AttnBlock" in capsys.readouterr().out
    assert_todo_then_reference(checks.check_vae_attention, StubModule, sdcourse.vae.AttnBlock, capsys)


@pytest.mark.parametrize("bug, mistake", [
    ("no-scale", nb09.NO_SCALE), ("by-c", nb09.SCALE_BY_C), ("queries", nb09.SOFTMAX_OVER_QUERIES),
    ("no-residual", nb09.NO_RESIDUAL), ("normed", nb09.NORMED_RESIDUAL), ("eps", nb09.EPS_1E5),
])
def test_attention_names_the_mistake(bug, mistake):
    assert_names(checks.check_vae_attention, attention_class(bug), mistake)


def test_attention_mistakes_are_far_from_the_answer():
    assert_margins(checks.check_vae_attention, attention_class())


def test_attention_shortcut_is_refused():
    with pytest.raises(ExerciseError, match="scaled_dot_product_attention"):
        checks.check_vae_attention(attention_class(shortcut="sdpa"))


def test_attention_is_sdcourse_and_diffusers():
    """The learner-style block equals sdcourse's AttnBlock on the same weights (which equals diffusers',
    tests/test_vae.py)."""
    torch.manual_seed(0)
    reference = checks.perturb_(sdcourse.vae.AttnBlock(16, n_groups=4))
    ours = attention_class()(16, n_groups=4)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 16, 4, 3)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5)


# --- the latent scale ----------------------------------------------------------------------------------------

def encode_answer(bug=None):
    def encode_for_unet(vae, images):
        x = images if bug == "range" else 2 * images - 1
        dist = vae.encode(x)
        z = dist.sample() if bug == "sample" else dist.mode()
        factor = 0.18215
        return {"divided": z / factor, "forgotten": z, "twice": z * factor ** 2}.get(bug, z * factor)
    return encode_for_unet


def test_encode_passes_and_stub_gives_the_reference(capsys):
    answer = encode_answer()
    assert checks.check_encode_for_unet(answer) is answer
    assert "[ok] encode_for_unet" in capsys.readouterr().out
    reference = checks.check_encode_for_unet.reference()
    assert_todo_then_reference(checks.check_encode_for_unet, stub, reference, capsys)
    vae = sdcourse.vae.AutoencoderKL(sdcourse.vae.VAEConfig.tiny()).eval()
    images = torch.rand(1, 3, 16, 16)
    from sdcourse.vae_latents import encode_image
    with torch.no_grad():
        assert torch.allclose(reference(vae, images), encode_image(vae, images, sample=False), atol=1e-6)


@pytest.mark.parametrize("bug, mistake", [
    ("range", nb09.RANGE_NOT_MAPPED), ("divided", nb09.SCALE_DIVIDED), ("forgotten", nb09.SCALE_FORGOTTEN),
    ("twice", nb09.SCALE_TWICE), ("sample", nb09.SAMPLED_NOT_MEAN),
])
def test_encode_names_the_mistake(bug, mistake):
    assert_names(checks.check_encode_for_unet, encode_answer(bug), mistake)


def test_encode_mistakes_are_far_from_the_answer():
    assert_margins(checks.check_encode_for_unet, encode_answer())


def test_scale_is_diffusers_default():
    import diffusers

    default = inspect.signature(diffusers.AutoencoderKL.__init__).parameters["scaling_factor"].default
    assert default == 0.18215 == sdcourse.vae.LATENT_SCALE


def test_hints_are_registered(capsys):
    for name in ("DiagonalGaussianDistribution", "Downsample", "AttnBlock", "encode_for_unet"):
        checks.hint(name)
        assert f"[hint] {name}:" in capsys.readouterr().out


def test_notebook_09_offers_registered_hints_and_working_solution_links():
    """Each `checks.hint("x")` notebook 09 mentions exists, each exercise's "Stuck?" has a hint and a
    self-link, and each link's anchor is a heading of the notebook as JupyterLab writes it."""
    import json
    from pathlib import Path

    from sdcourse.checks.hints import HINTS

    path = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "09_vae.ipynb"
    cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
    text = "\n".join(cells)
    named = re.findall(r'checks\.hint\("([^"]+)"\)', text)
    assert set(named) >= {"AttnBlock", "Downsample", "DiagonalGaussianDistribution", "encode_for_unet"}
    assert all(n in HINTS for n in named)
    stuck = [c for c in cells if "Stuck?" in c]
    assert len(stuck) == 4 and all("checks.hint(" in c and "](09_vae.ipynb#" in c for c in stuck)
    headings = {line.lstrip("#").strip().replace(" ", "-") for line in text.splitlines() if line.startswith("#")}
    anchors = re.findall(r"09_vae\.ipynb#([^)\s]+)\)", text)
    assert len(anchors) == 4 and all(a in headings for a in anchors), anchors
