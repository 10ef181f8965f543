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


def expect_ok(check, answer, capsys=None):
    """A right answer: the checker returns the learner's own answer (and prints [ok])."""
    assert check(answer) is answer


def expect_todo(check, stub, reference, capsys):
    """A stub: the checker prints one [todo] line and hands back sdcourse's reference."""
    assert check(stub) is reference
    out = capsys.readouterr().out
    assert out.startswith("[todo] ") and out.count("\n") == 1, out


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
    answer = lambda b, h, w: (b, 4, h // 8, w // 8)  # noqa: E731
    assert checks.check_latent_shape(answer) is answer
    assert "[ok]" in capsys.readouterr().out


def test_latent_shape_refuses_float_sizes():
    expect_mistake(checks.check_latent_shape, lambda b, h, w: (b, 4, h / 8, w / 8), "float sizes from / instead of //")


def test_latent_shape_stub_gives_todo_and_the_reference(capsys):
    def latent_shape(b, h, w):
        raise NotImplementedError()
    got = checks.check_latent_shape(latent_shape)
    assert "[todo] latent_shape" in capsys.readouterr().out
    assert got(2, 512, 768) == (2, 4, 64, 96)


@pytest.mark.parametrize("answer, mistake", [
    (lambda b, h, w: (b, 4, h, w), "not divided by 8"),
    (lambda b, h, w: (b, 3, h // 8, w // 8), "3 channels (RGB) instead of 4"),
    (lambda b, h, w: (b, 4, w // 8, h // 8), "height and width swapped"),
    (lambda b, h, w: torch.Size([4, h // 8, w // 8]), "no batch dimension"),
])
def test_latent_shape_names_mistakes(answer, mistake):
    expect_mistake(checks.check_latent_shape, answer, mistake)


def _inputs(latent=None, context=None, time=None, t=500):
    def fn(b, h, w):
        shape = time(b) if time else (1, 320)
        emb = sdcourse.sinusoidal_embedding(t)  # (1, 320)
        return (
            torch.zeros(latent(b, h, w) if latent else (b, 4, h // 8, w // 8)),
            torch.zeros(context(b) if context else (b, 77, 768)),
            emb.expand(shape[0], 320).clone() if shape[-1:] == (320,) else torch.zeros(shape),
        )
    return fn


def test_unet_inputs_accept_per_sample_and_shared_context_and_time():
    for answer in (_inputs(), _inputs(context=lambda b: (1, 77, 768), time=lambda b: (b, 320))):
        assert checks.check_unet_inputs(answer) is answer


@pytest.mark.parametrize("time, mistake", [
    (lambda b: torch.randn(1, 320), "a random tensor instead of the embedding of t = 500"),
    (lambda b: sdcourse.sinusoidal_embedding(999), "the embedding of another timestep"),
    (lambda b: sdcourse.sinusoidal_embedding(500).roll(160, dims=-1), "sin and cos swapped"),
])
def test_unet_inputs_check_the_time_values_not_only_the_shape(time, mistake):
    def answer(b, h, w):
        return torch.randn(b, 4, h // 8, w // 8), torch.randn(b, 77, 768), time(b)
    expect_mistake(checks.check_unet_inputs, answer, mistake)


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
    expect_ok(checks.check_sinusoidal_embedding, learner_embedding())
    expect_ok(checks.check_sinusoidal_embedding, sdcourse.sinusoidal_embedding)


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
    expect_ok(checks.check_sinusoidal_embedding, lambda t, dim: Timesteps(dim, True, 0)(t))
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
    expect_ok(checks.check_time_embedding, LearnerTimeEmbedding)


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
    expect_ok(checks.check_groupnorm, learner_group_norm())


@pytest.mark.parametrize("shortcut", [
    lambda x, g, w, b, eps: F.group_norm(x, g, w, b, eps),
    lambda x, g, w, b, eps: nn.GroupNorm(g, x.shape[1], eps=eps)(x) * w[:, None, None] + b[:, None, None],
    lambda x, g, w, b, eps: torch.group_norm(x, g, w, b, eps),
])
def test_groupnorm_by_hand_refuses_the_library_shortcut(shortcut):
    with pytest.raises(ExerciseError, match="group_norm, the very thing this exercise asks you to write by hand"):
        checks.check_groupnorm(shortcut)
    assert F.group_norm(torch.ones(1, 2, 1, 1), 1).shape == (1, 2, 1, 1)  # restored after the check


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
    expect_ok(checks.check_time_broadcast, lambda f, t: f + t.unsqueeze(-1).unsqueeze(-1))


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
                 time_act=True, time_after=False, silu_after=False, eps=1e-5):
        super().__init__()
        self.groupnorm_feature = nn.GroupNorm(32, cin, eps=eps)
        self.conv_feature = nn.Conv2d(cin, cout, 3, padding=1)
        self.linear_time = nn.Linear(n_time, cout)
        self.groupnorm_merged = nn.GroupNorm(32, cout, eps=eps)
        self.conv_merged = nn.Conv2d(cout, cout, 3, padding=1)
        if always_conv or (cin != cout and not always_identity):
            self.residual_layer = nn.Conv2d(cin, cout, 1)
        else:
            self.residual_layer = nn.Identity()
        self.residual, self.time_act, self.time_after, self.silu_after = residual, time_act, time_after, silu_after

    def forward(self, feature, time):
        residue = feature
        feature = self.conv_feature(F.silu(self.groupnorm_feature(feature)))
        if self.silu_after:
            time = F.silu(self.linear_time(time))[:, :, None, None]
        else:
            time = self.linear_time(F.silu(time) if self.time_act else time)[:, :, None, None]
        if self.time_after:
            merged = self.conv_merged(F.silu(self.groupnorm_merged(feature))) + time
        else:
            merged = self.conv_merged(F.silu(self.groupnorm_merged(feature + time)))
        return merged + self.residual_layer(residue) if self.residual else merged


def test_residual_block_accepts_the_answer_and_the_package():
    expect_ok(checks.check_residual_block, LearnerBlock)
    expect_ok(checks.check_residual_block, sdcourse.UNET_ResidualBlock)


@pytest.mark.parametrize("kwargs, mistake", [
    (dict(residual=False), "residual forgotten"),
    (dict(always_identity=True), "no 1x1 conv on the residual when the channels change"),
    (dict(always_conv=True), "a 1x1 conv on the residual although the channels are equal"),
    (dict(time_act=False), "no SiLU on the time embedding"),
    (dict(time_after=True), "time added after the second conv"),
    (dict(silu_after=True), "SiLU after linear_time instead of before"),
    (dict(eps=1e-6), "GroupNorm eps 1e-6 (residual blocks use 1e-5)"),
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
    expect_ok(checks.check_residual_block_parameters, formula)
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


# --- the learner-edition contract and the margins ----------------------------------------------

def _stub(*args, **kwargs):
    raise NotImplementedError()


class StubModule(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        raise NotImplementedError()


@pytest.mark.parametrize("check, stub, reference", [
    (checks.check_sinusoidal_embedding, _stub, sdcourse.sinusoidal_embedding),
    (checks.check_time_embedding, StubModule, sdcourse.TimeEmbedding),
    (checks.check_residual_block, StubModule, sdcourse.UNET_ResidualBlock),
], ids=["sinusoidal_embedding", "TimeEmbedding", "UNET_ResidualBlock"])
def test_a_stub_gives_todo_and_the_sdcourse_reference(check, stub, reference, capsys):
    expect_todo(check, stub, reference, capsys)


@pytest.mark.parametrize("check, args", [
    (checks.check_latent_shape, (1, 512, 512)),
    (checks.check_groupnorm, (torch.randn(1, 4, 2, 2), 2, torch.ones(4), torch.zeros(4), 1e-5)),
    (checks.check_time_broadcast, (torch.zeros(1, 3, 2, 2), torch.ones(1, 3))),
    (checks.check_residual_block_parameters, (320, 640, 1280)),
])
def test_a_stub_gives_todo_and_a_working_reference_function(check, args, capsys):
    got = check(_stub)
    assert "[todo]" in capsys.readouterr().out
    got(*args)  # the reference works in the cells after the check


def test_a_stub_is_written_partly():
    """A class whose __init__ is written but whose forward is still a stub also gives [todo]."""
    class Half(LearnerBlock):
        def forward(self, feature, time):
            raise NotImplementedError()
    assert checks.check_residual_block(Half) is sdcourse.UNET_ResidualBlock


@pytest.mark.parametrize("check, answer", [
    (checks.check_sinusoidal_embedding, sdcourse.sinusoidal_embedding),
    (checks.check_time_embedding, LearnerTimeEmbedding),
    (checks.check_groupnorm, learner_group_norm()),
    (checks.check_time_broadcast, lambda f, t: f + t[:, :, None, None]),
    (checks.check_residual_block, LearnerBlock),
    (checks.check_residual_block_parameters, formula),
], ids=["sinusoidal", "time_embedding", "groupnorm", "broadcast", "residual_block", "parameters"])
def test_named_mistakes_are_far_from_the_answer(check, answer):
    """Each named mistake differs from the reference by at least 10x the check's tolerance, so
    tolerance noise can neither pass a mistake nor name a right answer."""
    from sdcourse.checks import core

    core.MARGINS.clear()
    check(answer)
    assert core.MARGINS, "the check compared nothing"
    close = [(name, mistake, round(ratio, 2)) for name, mistake, ratio in core.MARGINS if ratio < 10]
    assert not close, close


def test_unet_inputs_stub_gives_todo_and_a_working_reference(capsys):
    got = checks.check_unet_inputs(_stub)
    assert capsys.readouterr().out.startswith("[todo] unet_inputs:")
    latent, context, time = got(2, 512, 768)
    assert (tuple(latent.shape), tuple(context.shape)) == ((2, 4, 64, 96), (2, 77, 768))
    assert torch.allclose(time, sdcourse.sinusoidal_embedding(500))


# --- hints and solution links of notebooks 00-02 ----------------------------------------------

import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

NOTEBOOKS_00_02 = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "solutions").glob("0[0-2]_*.ipynb"))


def _markdown(path):
    return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("name", ["latent_shape", "unet_inputs", "sinusoidal_embedding", "TimeEmbedding",
                                  "group_norm", "add_time", "UNET_ResidualBlock", "residual_block_parameters"])
def test_every_exercise_of_00_02_has_a_hint(name, capsys):
    checks.hint(name)
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith(f"[hint] {name}: ") for line in lines), lines


@pytest.mark.parametrize("path", NOTEBOOKS_00_02, ids=[p.stem for p in NOTEBOOKS_00_02])
def test_exercises_of_00_02_offer_a_registered_hint_and_a_working_solution_link(path):
    """Each `checks.hint("x")` a notebook mentions exists, and each self-link's anchor is a heading
    of the notebook, written as JupyterLab makes it (spaces -> '-')."""
    from sdcourse.checks.hints import HINTS

    cells = _markdown(path)
    text = "\n".join(cells)
    named = re.findall(r'checks\.hint\("([^"]+)"\)', text)
    assert named, f"{path.name}: no exercise offers a hint"
    assert not [n for n in named if n not in HINTS], f"{path.name}: hints not registered"
    for cell in cells:
        if "Stuck?" in cell:
            assert "checks.hint(" in cell and f"]({path.name}#" in cell, f"{path.name}: {cell[:80]!r} lacks a hint or a link"
    headings = {line.lstrip("#").strip().replace(" ", "-") for line in text.splitlines() if line.startswith("#")}
    anchors = re.findall(re.escape(path.name) + r"#([^)\s]+)\)", text)
    assert len(anchors) >= sum("Stuck?" in c for c in cells) >= 1
    missing = [a for a in anchors if a not in headings]
    assert not missing, f"{path.name}: solution links to no heading: {missing}"


def test_the_residual_is_what_keeps_a_deep_stack_even():
    """Notebook 02's "Break it" claims, held here: 20 blocks at init without the residual amplify a 1%
    input change more than 10x and spread their gradients over more than 10x; with it, neither."""
    def without_residual(block, h, time):
        h = block.conv_feature(F.silu(block.groupnorm_feature(h))) + block.linear_time(F.silu(time))[:, :, None, None]
        return block.conv_merged(F.silu(block.groupnorm_merged(h)))

    torch.manual_seed(0)
    stack = [sdcourse.UNET_ResidualBlock(64, 64, n_time=128) for _ in range(20)]
    x0, time0 = torch.randn(2, 64, 8, 8), torch.randn(2, 128)
    nudge = 0.01 * torch.randn(2, 64, 8, 8)
    found = {}
    for residual in (True, False):
        for b in stack:
            b.zero_grad()
        h, hn = x0, x0 + nudge
        for b in stack:
            step = (lambda m, v: m(v, time0)) if residual else (lambda m, v: without_residual(m, v, time0))
            h = step(b, h)
            with torch.no_grad():
                hn = step(b, hn)
        h.pow(2).mean().backward()
        grads = [b.conv_feature.weight.grad.norm().item() for b in stack]
        found[residual] = ((hn - h).norm() / h.norm() / (nudge.norm() / x0.norm())).item(), grads[0] / grads[-1]
    assert found[True][0] < 1.5 and found[True][1] < 2, found
    assert found[False][0] > 10 and found[False][1] > 10, found
