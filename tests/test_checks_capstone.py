"""The checkers of notebooks 06-08 accept a right answer, give [todo] and the reference for a stub,
and NAME typical wrong ones.

Each wrong answer is written the way a learner would write it (real wrong code, not the checker's
own mistake table), so a checker whose table drifts from real mistakes fails.
"""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import sdcourse
from sdcourse import checks
from sdcourse.checks import ExerciseError
from sdcourse.checks.core import _max_diff
from sdcourse.time_embedding import TimeEmbedding
from sdcourse.unet import UNET, UNetConfig, UNET_OutputLayer


def expect_mistake(check, answer, mistake):
    result = check(answer, raise_on_failure=False)
    assert not result.passed
    assert result.mistake == mistake, result
    with pytest.raises(ExerciseError, match=r"\[wrong\]") as info:
        check(answer)
    assert mistake in str(info.value)


def expect_todo(check, stub, capsys):
    returned = check(stub)
    assert returned is check.reference() or returned.__class__ is check.reference().__class__
    assert f"[todo] {check.exercise_name}" in capsys.readouterr().out
    return returned


# --- 06: the output layer -----------------------------------------------------------------------

def make_output_layer(order="right", eps=1e-5, act=F.silu):
    class Layer(nn.Module):
        def __init__(self, in_channels, out_channels, n_groups=32):
            super().__init__()
            self.groupnorm = nn.GroupNorm(n_groups, in_channels, eps=eps)
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

        def forward(self, x):
            if order == "silu first":
                return self.conv(self.groupnorm(act(x)))
            if order == "no norm":
                return self.conv(act(x))
            if order == "no act":
                return self.conv(self.groupnorm(x))
            return self.conv(act(self.groupnorm(x)))
    return Layer


def test_output_layer_accepts_the_answer(capsys):
    answer = make_output_layer()
    assert checks.check_output_layer(answer) is answer
    assert "[ok]" in capsys.readouterr().out


def test_output_layer_stub_gives_todo_and_the_reference(capsys):
    class Stub(nn.Module):
        def __init__(self, in_channels, out_channels, n_groups=32):
            raise NotImplementedError()
    assert checks.check_output_layer(Stub) is UNET_OutputLayer
    assert "[todo] UNET_OutputLayer" in capsys.readouterr().out


@pytest.mark.parametrize("answer, mistake", [
    (make_output_layer(order="no act"), "no SiLU"),
    (make_output_layer(order="silu first"), "SiLU before the GroupNorm"),
    (make_output_layer(act=F.relu), "ReLU instead of SiLU"),
    (make_output_layer(order="no norm"), "no GroupNorm"),
    (make_output_layer(eps=1e-6), "GroupNorm eps 1e-6 instead of the default 1e-5"),
])
def test_output_layer_names_mistakes(answer, mistake):
    expect_mistake(checks.check_output_layer, answer, mistake)


# --- 06: Diffusion ------------------------------------------------------------------------------

def make_diffusion(fwd):
    class Model(nn.Module):
        def __init__(self, config=UNetConfig()):
            super().__init__()
            self.config = config
            self.time_embedding = TimeEmbedding(config.n_time_embd)
            self.unet = UNET(config)
            self.final = UNET_OutputLayer(config.channels[0], config.out_channels, n_groups=config.n_groups)
        forward_ = fwd

        def forward(self, latent, context, time):
            return self.forward_(latent, context, time)
    return Model


RIGHT_DIFFUSION = make_diffusion(lambda self, x, c, t: self.final(self.unet(x, c, self.time_embedding(t))))


def test_diffusion_accepts_the_answer(capsys):
    assert checks.check_diffusion(RIGHT_DIFFUSION) is RIGHT_DIFFUSION
    assert "[ok]" in capsys.readouterr().out


def test_diffusion_stub_gives_todo(capsys):
    class Stub(nn.Module):
        def __init__(self, config=UNetConfig()):
            raise NotImplementedError()
    assert checks.check_diffusion(Stub) is sdcourse.Diffusion
    assert "[todo] Diffusion" in capsys.readouterr().out


@pytest.mark.parametrize("forward, mistake", [
    (lambda self, x, c, t: self.final(self.unet(x, c, t)),
     "the time embedding skipped (the UNET got the raw sinusoidal embedding)"),
    (lambda self, x, c, t: self.final(self.unet(x, self.time_embedding(t), c)),
     "context and time swapped in the call to the UNET"),
    (lambda self, x, c, t: self.unet(x, c, self.time_embedding(t)), "the output layer forgotten"),
    (lambda self, x, c, t: self.final(x), "the UNET skipped"),
    (lambda self, x, c, t: self.final(self.unet(x, c, self.time_embedding(self.time_embedding(t)))),
     "the time embedding applied twice"),
])
def test_diffusion_names_mistakes(forward, mistake):
    expect_mistake(checks.check_diffusion, make_diffusion(forward), mistake)


def test_diffusion_refuses_other_attribute_names():
    class Renamed(RIGHT_DIFFUSION):
        def __init__(self, config=UNetConfig()):
            super().__init__(config)
            self.output_layer = self.final
            del self.final
    with pytest.raises(ExerciseError, match="attribute names"):
        checks.check_diffusion(Renamed)


# --- 06: the formulas ---------------------------------------------------------------------------

def add_noise(x0, noise, alpha_bar):
    return alpha_bar ** 0.5 * x0 + (1 - alpha_bar) ** 0.5 * noise


def ddpm(x_t, eps, a_t, a_prev, z):
    alpha = a_t / a_prev
    beta = 1 - alpha
    x0 = (x_t - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
    mean = a_prev ** 0.5 * beta / (1 - a_t) * x0 + alpha ** 0.5 * (1 - a_prev) / (1 - a_t) * x_t
    return mean + ((1 - a_prev) / (1 - a_t) * beta) ** 0.5 * z


def ddim(x_t, eps, a_t, a_prev):
    x0 = (x_t - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
    return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps


def guidance(eps_both, scale):
    uncond, cond = eps_both.chunk(2)
    return uncond + scale * (cond - uncond)


@pytest.mark.parametrize("check, answer", [
    (checks.check_add_noise, add_noise), (checks.check_ddpm_step, ddpm),
    (checks.check_ddim_step, ddim), (checks.check_guidance, guidance),
])
def test_formulas_accept_the_answer_and_stubs_give_todo(check, answer, capsys):
    assert check(answer) is answer
    assert "[ok]" in capsys.readouterr().out

    def stub(*args):
        raise NotImplementedError()
    reference = check(stub)
    assert f"[todo] {check.exercise_name}" in capsys.readouterr().out
    assert check(reference) is reference  # the reference a stub gets is itself right


@pytest.mark.parametrize("answer, mistake", [
    (lambda x0, n, a: a * x0 + (1 - a) * n, "alpha_bar without the square roots"),
    (lambda x0, n, a: a ** 0.5 * x0 + a ** 0.5 * n, "sqrt(alpha_bar) on both terms"),
    (lambda x0, n, a: (1 - a) ** 0.5 * x0 + a ** 0.5 * n, "the two coefficients swapped"),
    (lambda x0, n, a: a ** 0.5 * x0 + (1 - a) * n, "no square root on the noise coefficient"),
])
def test_add_noise_names_mistakes(answer, mistake):
    expect_mistake(checks.check_add_noise, answer, mistake)


def ddpm_wrong(kind):
    def step(x_t, eps, a_t, a_prev, z):
        alpha = 1 - a_t if kind == "alpha" else a_t / a_prev
        beta = 1 - alpha
        x0 = x_t if kind == "x_t" else (x_t - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        c0, ct = a_prev ** 0.5 * beta / (1 - a_t), alpha ** 0.5 * (1 - a_prev) / (1 - a_t)
        if kind == "swap":
            c0, ct = ct, c0
        mean = c0 * x0 + ct * x_t
        if kind == "mean":
            return mean
        std = beta ** 0.5 if kind == "std" else ((1 - a_prev) / (1 - a_t) * beta) ** 0.5
        return mean + std * z
    return step


@pytest.mark.parametrize("kind, mistake", [
    ("mean", "no noise added (the mean only)"),
    ("std", "std = sqrt(beta') instead of the posterior's"),
    ("swap", "the two coefficients of the mean swapped"),
    ("x_t", "x_t used where x0_hat belongs"),
    ("alpha", "alpha' = 1 - abar_t instead of abar_t / abar_prev"),
])
def test_ddpm_step_names_mistakes(kind, mistake):
    expect_mistake(checks.check_ddpm_step, ddpm_wrong(kind), mistake)


@pytest.mark.parametrize("answer, mistake", [
    (lambda x, e, a, p: p ** 0.5 * x + (1 - p) ** 0.5 * e, "x_t used where x0_hat belongs"),
    (lambda x, e, a, p: (x - (1 - a) ** 0.5 * e) / a ** 0.5, "the noise not put back (x0_hat only)"),
    (lambda x, e, a, p: a ** 0.5 * ((x - (1 - p) ** 0.5 * e) / p ** 0.5) + (1 - a) ** 0.5 * e,
     "alpha_bar_t and alpha_bar_prev swapped"),
])
def test_ddim_step_names_mistakes(answer, mistake):
    expect_mistake(checks.check_ddim_step, answer, mistake)


def guidance_notes_order(eps_both, scale):
    cond, uncond = eps_both.chunk(2)
    return uncond + scale * (cond - uncond)


@pytest.mark.parametrize("answer, mistake", [
    (guidance_notes_order, "halves read as [cond, uncond]"),
    (lambda e, s: e.chunk(2)[1] + s * (e.chunk(2)[1] - e.chunk(2)[0]), "cond + scale * (cond - uncond)"),
    (lambda e, s: s * e.chunk(2)[1], "scale * cond only"),
])
def test_guidance_names_mistakes(answer, mistake):
    expect_mistake(checks.check_guidance, answer, mistake)


# --- 07: the training loss and one training step ------------------------------------------------

def loss_answer(model, x0, ids, t, noise, kind="right"):
    from sdcourse.train import loss_weight

    x_t = x0 if kind == "clean" else model.schedule.add_noise(x0, noise, t).float()
    context = model.text_encoder(ids)
    if kind == "raw v":
        time = sdcourse.sinusoidal_embedding(t, model.diffusion.config.n_time_embd)
        predicted = model.diffusion(x_t, context, time)
    else:
        predicted = model.predict_noise(x_t, context, t)
    target = x0 if kind == "x0" else noise
    per_image = (predicted - target).pow(2)
    per_image = per_image.sum(dim=(1, 2, 3)) if kind == "sum" else per_image.mean(dim=(1, 2, 3))
    if kind == "unweighted":
        return per_image.mean()
    loss = (per_image * loss_weight(model, t)).mean()
    return loss.detach() if kind == "detached" else loss


def test_training_loss_accepts_the_answer_and_stub_gives_todo(capsys):
    assert checks.check_training_loss(loss_answer) is loss_answer
    assert "[ok]" in capsys.readouterr().out

    def stub(model, x0, ids, t, noise):
        raise NotImplementedError()
    from sdcourse.train import diffusion_loss
    assert checks.check_training_loss(stub) is diffusion_loss
    assert "[todo] diffusion_loss" in capsys.readouterr().out


@pytest.mark.parametrize("kind, mistake", [
    ("unweighted", "no loss weights (plain MSE)"),
    ("x0", "the MSE taken against x0 instead of the noise"),
    ("clean", "the model saw the clean x0 (no noise added)"),
    ("raw v", "the network's raw output (v) compared with the noise"),
    ("sum", "squared error summed, not averaged"),
    ("detached", "the loss detached from the graph"),
])
def test_training_loss_names_mistakes(kind, mistake):
    expect_mistake(checks.check_training_loss, lambda *a: loss_answer(*a, kind=kind), mistake)


def step_answer(model, optimizer, batch, kind="right"):
    from sdcourse.train import diffusion_loss

    loss = diffusion_loss(model, **batch)
    if kind == "step first":
        optimizer.zero_grad()
        optimizer.step()
        loss.backward()
        return loss.item()
    if kind != "no zero_grad":
        optimizer.zero_grad()
    loss.backward()
    if kind != "no clip":
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss if kind == "tensor" else loss.item()


def test_training_step_accepts_the_answer_and_stub_gives_todo(capsys):
    assert checks.check_training_step(step_answer) is step_answer
    assert "[ok]" in capsys.readouterr().out

    def stub(model, optimizer, batch):
        raise NotImplementedError()
    reference = checks.check_training_step(stub)
    assert "[todo] training_step" in capsys.readouterr().out
    assert checks.check_training_step(reference) is reference


@pytest.mark.parametrize("kind, mistake", [
    ("no zero_grad", "optimizer.zero_grad() forgotten (last step's gradients added)"),
    ("no clip", "no gradient clipping"),
    ("step first", "optimizer.step() with no gradients (before backward, or after a second zero_grad)"),
    ("tensor", "the loss returned as a tensor"),
])
def test_training_step_names_mistakes(kind, mistake):
    expect_mistake(checks.check_training_step, lambda *a: step_answer(*a, kind=kind), mistake)


def test_fold_refuses_pixel_unshuffle():
    with pytest.raises(ExerciseError, match="pixel_unshuffle"):
        checks.check_space_to_depth(lambda images, p: F.pixel_unshuffle(images, p))


# --- 08: renaming one attention block -----------------------------------------------------------

NAMES = {"norm": "groupnorm", "proj_in": "conv_input", "transformer_blocks.0.norm1": "layernorm_1",
         "transformer_blocks.0.attn1.to_out.0": "attention_1.out_proj",
         "transformer_blocks.0.norm2": "layernorm_2", "transformer_blocks.0.attn2.to_q": "attention_2.q_proj",
         "transformer_blocks.0.attn2.to_k": "attention_2.k_proj", "transformer_blocks.0.attn2.to_v": "attention_2.v_proj",
         "transformer_blocks.0.attn2.to_out.0": "attention_2.out_proj", "transformer_blocks.0.norm3": "layernorm_3",
         "transformer_blocks.0.ff.net.0.proj": "linear_geglu_1", "transformer_blocks.0.ff.net.2": "linear_geglu_2",
         "proj_out": "conv_output"}


def rename_answer(state, names=NAMES, order="qkv", dim=0, fuse=True):
    out = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module in names:
            out[f"{names[module]}.{param}"] = value
    attn1 = "transformer_blocks.0.attn1."
    parts = {x: state[f"{attn1}to_{x}.weight"] for x in "qkv"}
    if fuse:
        out["attention_1.in_proj.weight"] = torch.cat([parts[x] for x in order], dim=dim)
    else:
        out.update({f"attention_1.{x}_proj.weight": parts[x] for x in "qkv"})
    return out


def test_rename_accepts_the_answer_and_stub_gives_todo(capsys):
    assert checks.check_rename_attention_block(rename_answer) is rename_answer
    assert "[ok]" in capsys.readouterr().out

    def stub(state):
        raise NotImplementedError()
    reference = checks.check_rename_attention_block(stub)
    assert "[todo] rename_attention_block" in capsys.readouterr().out
    assert checks.check_rename_attention_block(reference) is reference


def swapped(a, b):
    names = dict(NAMES)
    names[a], names[b] = NAMES[b], NAMES[a]
    return names


@pytest.mark.parametrize("answer, mistake", [
    (lambda s: rename_answer(s, order="kqv"), "q, k, v fused in another order"),
    (lambda s: rename_answer(s, dim=1), "q, k, v stacked along dim 1"),
    (lambda s: rename_answer(s, names=swapped("transformer_blocks.0.norm2", "transformer_blocks.0.norm3")),
     "norm2 and norm3 swapped"),
    (lambda s: rename_answer(s, names=swapped("transformer_blocks.0.ff.net.0.proj", "transformer_blocks.0.ff.net.2")),
     "the two GeGLU linears swapped"),
    (lambda s: rename_answer(s, fuse=False), "q, k, v of the self-attention not fused"),
])
def test_rename_names_mistakes(answer, mistake):
    expect_mistake(checks.check_rename_attention_block, answer, mistake)


def test_rename_self_cross_swap_is_named():
    def answer(state):
        flipped = {}
        for k, v in state.items():
            k2 = k.replace("attn1", "ATTN").replace("attn2", "attn1").replace("ATTN", "attn2")
            flipped[k2] = v
        return rename_answer(flipped)
    expect_mistake(checks.check_rename_attention_block, answer, "self- and cross-attention swapped (attn1 <-> attn2)")


# --- every named mistake is far from the right answer (>= 10x the check's tolerance) -----------

def test_named_mistakes_are_far_from_the_right_answer():
    from sdcourse.checks import nb06_diffusion as n6, nb07_training as n7, nb08_weights as n8

    # the formula checkers compare at atol 1e-6: recompute every mistake table through a wrong answer above
    for check, answers, atol in (
        (checks.check_add_noise, [lambda x0, n, a: a * x0 + (1 - a) * n, lambda x0, n, a: a ** 0.5 * x0 + (1 - a) * n], 1e-6),
        (checks.check_ddpm_step, [ddpm_wrong(k) for k in ("mean", "std", "swap", "x_t", "alpha")], 1e-6),
        (checks.check_training_loss, [lambda *a, k=k: loss_answer(*a, kind=k)
                                      for k in ("unweighted", "x0", "clean", "raw v", "sum")], 1e-5),
        (checks.check_output_layer, [make_output_layer(order="no act"), make_output_layer(eps=1e-6),
                                     make_output_layer(act=F.relu)], 1e-5),
    ):
        for answer in answers:
            result = check(answer, raise_on_failure=False)
            assert result.max_abs_diff >= 10 * atol, (check.exercise_name, result)
    # the training step: every mistake's parameters against the right step's
    right, _ = n7._step_variant("")
    for mistake in n7._STEP_HINTS:
        if mistake != "the loss returned as a tensor":
            assert _max_diff(n7._step_variant(mistake)[0], right) >= 10 * 1e-6, mistake
    # the renaming compares exactly: every mistake changes a key or a tensor by far more than rounding
    source, notes = n8._block_state()
    for mistake, wrong in n8._mistakes(source, notes).items():
        common = [k for k in notes if k in wrong and wrong[k].shape == notes[k].shape]
        reshaped = any(wrong[k].shape != notes[k].shape for k in notes if k in wrong)
        far = set(wrong) != set(notes) or reshaped or any(_max_diff(wrong[k], notes[k]) >= 1e-3 for k in common)
        assert far, mistake


# --- notebook 08, exercise 1: the original file's keys ---------------------------------------------

RIGHT_KEYS = ("model.diffusion_model.output_blocks.5.2.conv.weight", "model.diffusion_model.time_embed.2.weight")


def test_single_file_keys_contract(capsys):
    def answers():
        return RIGHT_KEYS
    assert checks.check_single_file_keys(answers) is answers
    assert "[ok] single_file_keys" in capsys.readouterr().out

    def stub():
        raise NotImplementedError()
    reference = checks.check_single_file_keys(stub)
    assert "[todo] single_file_keys" in capsys.readouterr().out
    assert reference() == RIGHT_KEYS


@pytest.mark.parametrize("keys, mistake", [
    (("output_blocks.5.2.conv.weight", RIGHT_KEYS[1]), "the key without the file's prefix model.diffusion_model."),
    ((RIGHT_KEYS[0], "model.diffusion_model.time_embed.1.weight"), "the SiLU of time_embed not counted"),
    (("model.diffusion_model.output_blocks.6.2.conv.weight", RIGHT_KEYS[1]), "the decoders renumbered"),
])
def test_single_file_keys_mistakes(keys, mistake):
    result = checks.check_single_file_keys(lambda: keys, raise_on_failure=False)
    assert not result.passed and result.mistake == mistake
    with pytest.raises(checks.ExerciseError, match="It looks like"):
        checks.check_single_file_keys(lambda: keys)
    with pytest.raises(checks.ExerciseError, match="two strings"):
        checks.check_single_file_keys(lambda: "model.diffusion_model.time_embed.2.weight")
