"""The checkers of notebooks 00-02 accept a right answer and NAME typical wrong ones.

Each wrong answer below is written the way a learner would write it (not taken from the
checker's own mistake table), so a checker whose mistake table drifts from real mistakes fails.
"""
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import sdcourse
from sdcourse import checks
from sdcourse.checks import ExerciseError


def expect_mistake(check, answer, mistake):
    """The checker rejects `answer`, names `mistake`, and raises with that name in the message."""
    result = check(answer, raise_on_failure=False)
    assert not result.passed
    assert result.mistake == mistake, result
    with pytest.raises(ExerciseError, match=r"\[wrong\]") as info:
        check(answer)
    assert mistake in str(info.value)


# --- notebook 00 ------------------------------------------------------------------------------

def test_latent_shape_accepts_the_answer(capsys):
    assert checks.check_latent_shape(lambda b, h, w: (b, 4, h // 8, w // 8)).passed
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize("answer, mistake", [
    (lambda b, h, w: (b, 4, h, w), "not divided by 8"),
    (lambda b, h, w: (b, 3, h // 8, w // 8), "3 channels (RGB) instead of 4"),
    (lambda b, h, w: (b, 4, w // 8, h // 8), "height and width swapped"),
    (lambda b, h, w: torch.Size([4, h // 8, w // 8]), "no batch dimension"),
])
def test_latent_shape_names_mistakes(answer, mistake):
    expect_mistake(checks.check_latent_shape, answer, mistake)


def _inputs(latent=None, context=None, time=None):
    def fn(b, h, w):
        return (
            torch.zeros(latent(b, h, w) if latent else (b, 4, h // 8, w // 8)),
            torch.zeros(context(b) if context else (b, 77, 768)),
            torch.zeros(time(b) if time else (1, 320)),
        )
    return fn


def test_unet_inputs_accept_per_sample_and_shared_context_and_time():
    assert checks.check_unet_inputs(_inputs()).passed
    assert checks.check_unet_inputs(_inputs(context=lambda b: (1, 77, 768), time=lambda b: (b, 320))).passed


@pytest.mark.parametrize("answer, mistake", [
    (_inputs(time=lambda b: (b,)), "raw timesteps instead of the sinusoidal embedding"),
    (_inputs(time=lambda b: ()), "raw timesteps instead of the sinusoidal embedding"),
    (_inputs(time=lambda b: (b, 1280)), "the 1280-wide MLP output instead of the 320-wide sinusoidal embedding"),
    (_inputs(context=lambda b: (b, 768)), "one pooled vector per prompt instead of 77 token vectors"),
    (_inputs(latent=lambda b, h, w: (b, 3, h, w)), None),  # an RGB image: neither 4 channels nor /8
    (_inputs(latent=lambda b, h, w: (b, 3, h // 8, w // 8)), "3 channels (RGB) instead of 4"),
])
def test_unet_inputs_name_mistakes(answer, mistake):
    if mistake is None:
        result = checks.check_unet_inputs(answer, raise_on_failure=False)
        assert not result.passed and result.mistake is None
    else:
        expect_mistake(checks.check_unet_inputs, answer, mistake)


def test_unet_inputs_reports_a_crash_as_an_exercise_error():
    def crashes(b, h, w):
        raise RuntimeError("boom")
    with pytest.raises(ExerciseError, match="RuntimeError: boom"):
        checks.check_unet_inputs(crashes)


# --- notebook 01 ------------------------------------------------------------------------------

def learner_embedding(order="cos_sin", divisor="half", interleave=False):
    """A sinusoidal embedding written from the formula with plain Python math (float64)."""
    def fn(t, dim):
        half = dim // 2
        div = {"half": half, "dim": dim, "half-1": half - 1}[divisor]
        rows = []
        for step in t.tolist():
            cos = [math.cos(step * 10000 ** (-i / div)) for i in range(half)]
            sin = [math.sin(step * 10000 ** (-i / div)) for i in range(half)]
            if interleave:
                rows.append([v for pair in zip(cos, sin) for v in pair])
            else:
                rows.append(cos + sin if order == "cos_sin" else sin + cos)
        return torch.tensor(rows)
    return fn


def test_sinusoidal_accepts_a_formula_and_the_package():
    assert checks.check_sinusoidal_embedding(learner_embedding()).passed
    assert checks.check_sinusoidal_embedding(sdcourse.sinusoidal_embedding).passed


@pytest.mark.parametrize("answer, mistake", [
    (learner_embedding(order="sin_cos"), "sin and cos swapped"),
    (learner_embedding(divisor="dim"), "frequencies 10000^(-i/dim) instead of 10000^(-i/half)"),
    (learner_embedding(divisor="half-1"), "frequencies 10000^(-i/(half-1)) instead of 10000^(-i/half)"),
    (learner_embedding(interleave=True), "sin and cos interleaved"),
])
def test_sinusoidal_names_mistakes(answer, mistake):
    expect_mistake(checks.check_sinusoidal_embedding, answer, mistake)


def test_sinusoidal_equals_diffusers_convention():
    """The checker's reference is the convention SD v1 was trained with (diffusers' flip_sin_to_cos=True)."""
    from diffusers.models.embeddings import Timesteps

    proj = Timesteps(320, flip_sin_to_cos=True, downscale_freq_shift=0)
    assert checks.check_sinusoidal_embedding(lambda t, dim: Timesteps(dim, True, 0)(t)).passed
    t = torch.tensor([3, 999])
    assert torch.allclose(proj(t), sdcourse.sinusoidal_embedding(t), atol=1e-4)


class LearnerTimeEmbedding(nn.Module):
    def __init__(self, n_embd, activation=F.silu, last=None):
        super().__init__()
        self.linear_1 = nn.Linear(n_embd, 4 * n_embd)
        self.linear_2 = nn.Linear(4 * n_embd, 4 * n_embd)
        self.activation, self.last = activation, last

    def forward(self, x):
        x = self.linear_2(self.activation(self.linear_1(x)))
        return self.last(x) if self.last else x


def test_time_embedding_accepts_the_answer():
    assert checks.check_time_embedding(LearnerTimeEmbedding).passed


@pytest.mark.parametrize("kwargs, mistake", [
    (dict(activation=lambda x: x), "SiLU missing"),
    (dict(activation=torch.relu), "ReLU instead of SiLU"),
    (dict(last=F.silu), "an extra SiLU after linear_2"),
])
def test_time_embedding_names_mistakes(kwargs, mistake):
    expect_mistake(checks.check_time_embedding, lambda n: LearnerTimeEmbedding(n, **kwargs), mistake)


def test_time_embedding_with_wrong_names_says_so():
    class Named(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(n, 4 * n), nn.Linear(4 * n, 4 * n)
    with pytest.raises(ExerciseError, match="parameter names"):
        checks.check_time_embedding(Named)


# --- notebook 02 ------------------------------------------------------------------------------

def learner_group_norm(groups_of="consecutive", var=lambda x, dims: x.var(dim=dims, keepdim=True, unbiased=False),
                       eps_outside=False, affine=True, over_batch=False):
    def fn(x, num_groups, weight, bias, eps):
        b, c, h, w = x.shape
        if groups_of == "consecutive":
            g = x.reshape(b, num_groups, -1)  # (B, G, C//G*H*W)
        elif groups_of == "channel":
            g = x.reshape(b, c, -1)  # one group per channel
        else:  # every G-th channel
            g = x.reshape(b, c // num_groups, num_groups, h * w).transpose(1, 2).reshape(b, num_groups, -1)
        dims = (0, 2) if over_batch else (2,)
        mean, v = g.mean(dim=dims, keepdim=True), var(g, dims)
        g = (g - mean) / (v.sqrt() + eps if eps_outside else (v + eps).sqrt())
        if groups_of == "every-G":
            g = g.reshape(b, num_groups, c // num_groups, h * w).transpose(1, 2)
        out = g.reshape(b, c, h, w)
        return out * weight[None, :, None, None] + bias[None, :, None, None] if affine else out
    return fn


def test_groupnorm_accepts_a_hand_computation_and_nn_groupnorm():
    assert checks.check_groupnorm(learner_group_norm()).passed
    assert checks.check_groupnorm(lambda x, g, w, b, eps: F.group_norm(x, g, w, b, eps)).passed


@pytest.mark.parametrize("answer, mistake", [
    (learner_group_norm(groups_of="channel"), "one group per channel (that is InstanceNorm)"),
    (learner_group_norm(groups_of="every-G"), "groups made of every G-th channel"),
    (learner_group_norm(over_batch=True), "statistics shared across the batch"),
    (learner_group_norm(var=lambda x, dims: x.var(dim=dims, keepdim=True)), "unbiased variance (divides by n - 1)"),
    (learner_group_norm(eps_outside=True), "eps added outside the square root"),
    (learner_group_norm(affine=False), "weight and bias not applied"),
])
def test_groupnorm_names_mistakes(answer, mistake):
    expect_mistake(checks.check_groupnorm, answer, mistake)


def test_time_broadcast_accepts_the_answer():
    assert checks.check_time_broadcast(lambda f, t: f + t.unsqueeze(-1).unsqueeze(-1)).passed


@pytest.mark.parametrize("answer, mistake", [
    (lambda f, t: f + t, "time added without unsqueeze"),
    (lambda f, t: f + t.view(t.shape[0], 1, 1, t.shape[1]), "time reshaped to (B, 1, 1, C)"),
    (lambda f, t: f + t[0].view(1, -1, 1, 1), "only the first sample's time used"),
])
def test_time_broadcast_names_mistakes(answer, mistake):
    expect_mistake(checks.check_time_broadcast, answer, mistake)


class LearnerBlock(nn.Module):
    """The notes' residual block with switches for typical mistakes."""

    def __init__(self, cin, cout, n_time=1280, residual=True, always_identity=False, always_conv=False,
                 time_act=True, time_after=False):
        super().__init__()
        self.groupnorm_feature = nn.GroupNorm(32, cin)
        self.conv_feature = nn.Conv2d(cin, cout, 3, padding=1)
        self.linear_time = nn.Linear(n_time, cout)
        self.groupnorm_merged = nn.GroupNorm(32, cout)
        self.conv_merged = nn.Conv2d(cout, cout, 3, padding=1)
        if always_conv or (cin != cout and not always_identity):
            self.residual_layer = nn.Conv2d(cin, cout, 1)
        else:
            self.residual_layer = nn.Identity()
        self.residual, self.time_act, self.time_after = residual, time_act, time_after

    def forward(self, feature, time):
        residue = feature
        feature = self.conv_feature(F.silu(self.groupnorm_feature(feature)))
        time = self.linear_time(F.silu(time) if self.time_act else time)[:, :, None, None]
        if self.time_after:
            merged = self.conv_merged(F.silu(self.groupnorm_merged(feature))) + time
        else:
            merged = self.conv_merged(F.silu(self.groupnorm_merged(feature + time)))
        return merged + self.residual_layer(residue) if self.residual else merged


def test_residual_block_accepts_the_answer_and_the_package():
    assert checks.check_residual_block(LearnerBlock).passed
    assert checks.check_residual_block(sdcourse.UNET_ResidualBlock).passed


@pytest.mark.parametrize("kwargs, mistake", [
    (dict(residual=False), "residual forgotten"),
    (dict(always_identity=True), "no 1x1 conv on the residual when the channels change"),
    (dict(always_conv=True), "a 1x1 conv on the residual although the channels are equal"),
    (dict(time_act=False), "no SiLU on the time embedding"),
    (dict(time_after=True), "time added after the second conv"),
])
def test_residual_block_names_mistakes(kwargs, mistake):
    expect_mistake(checks.check_residual_block, lambda cin, cout: LearnerBlock(cin, cout, **kwargs), mistake)


def test_residual_block_broadcast_error_gets_a_hint():
    class NoUnsqueeze(LearnerBlock):
        def forward(self, feature, time):
            return self.conv_feature(feature) + self.linear_time(time)  # (B, C, H, W) + (B, C): shape error

    with pytest.raises(ExerciseError, match=r"\(B, out, 1, 1\)"):
        checks.check_residual_block(NoUnsqueeze)


def formula(cin, cout, n_time, conv_always=False, biases=True, norms=True):
    """Parameters of a residual block counted layer by layer, by hand."""
    b = 1 if biases else 0
    total = 2 * cin * norms + (cin * cout * 9 + cout * b)  # groupnorm_feature, conv_feature
    total += n_time * cout + cout * b  # linear_time
    total += 2 * cout * norms + (cout * cout * 9 + cout * b)  # groupnorm_merged, conv_merged
    if cin != cout or conv_always:
        total += cin * cout + cout * b  # residual_layer 1x1
    return total


def test_residual_block_parameters_accepts_the_formula():
    assert checks.check_residual_block_parameters(formula).passed
    # the hand formula and a count of the real module agree (checked here, not only inside the checker)
    with torch.device("meta"):
        block = sdcourse.UNET_ResidualBlock(320, 640)
    assert sum(p.numel() for p in block.parameters()) == formula(320, 640, 1280)


@pytest.mark.parametrize("kwargs, mistake", [
    (dict(conv_always=True), "1x1 residual conv counted also when the channels are equal"),
    (dict(norms=False), "GroupNorm weights and biases forgotten"),
    (dict(biases=False), "biases forgotten"),
])
def test_residual_block_parameters_names_mistakes(kwargs, mistake):
    expect_mistake(checks.check_residual_block_parameters, lambda i, o, t: formula(i, o, t, **kwargs), mistake)
