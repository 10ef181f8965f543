"""The checkers of notebook 11 accept a right answer, give [todo] and the reference for a stub, and
NAME typical wrong ones, each written the way a learner would write it (real wrong code)."""
import pytest
import torch

from sdcourse import checks
from sdcourse.checks import ExerciseError
from sdcourse.checks import nb11_text_to_image as nb11
from sdcourse.checks.core import MARGINS
from sdcourse.sampling import ddim_step
from sdcourse.text_encoder import tokenize
from sdcourse.time_embedding import sinusoidal_embedding


def expect_mistake(check, answer, mistake):
    result = check(answer, raise_on_failure=False)
    assert not result.passed
    assert result.mistake == mistake, result
    with pytest.raises(ExerciseError, match=r"\[wrong\]") as info:
        check(answer)
    assert mistake in str(info.value)


def expect_todo(check, capsys):
    def stub(*args):
        raise NotImplementedError()
    returned = check(stub)
    assert callable(returned) and returned is not stub
    assert f"[todo] {check.exercise_name}" in capsys.readouterr().out
    return returned


def expect_ok(check, answer, capsys):
    assert check(answer) is answer
    assert "[ok]" in capsys.readouterr().out


def expect_margins(check, answer):
    MARGINS.clear()
    check(answer)
    mine = [m for m in MARGINS]
    assert len(mine) >= 3
    assert all(ratio >= 10 for _, _, ratio in mine), mine


# --- guided context -------------------------------------------------------------------------------

def guided_context(text_encoder, tokenizer, prompts, mistake=None):
    cond = text_encoder(tokenize(tokenizer, prompts))
    uncond = text_encoder(tokenize(tokenizer, [""] * len(prompts)))
    if mistake == "cond first":
        return torch.cat([cond, uncond])
    if mistake == "zeros":
        return torch.cat([torch.zeros_like(cond), cond])
    if mistake == "prompt twice":
        return torch.cat([text_encoder(tokenize(tokenizer, prompts)), cond])
    return torch.cat([uncond, cond])


def test_guided_context(capsys):
    expect_ok(checks.check_guided_context, guided_context, capsys)
    expect_todo(checks.check_guided_context, capsys)
    for mistake, name in (("cond first", nb11.COND_FIRST), ("zeros", nb11.ZERO_UNCOND),
                          ("prompt twice", nb11.PROMPT_TWICE)):
        expect_mistake(checks.check_guided_context, lambda e, t, p, m=mistake: guided_context(e, t, p, m), name)
    expect_margins(checks.check_guided_context, guided_context)


# --- decode ----------------------------------------------------------------------------------------

def decode(vae, latents, mistake=None):
    z = {"no unscale": latents, "times": latents * 0.18215}.get(mistake, latents / 0.18215)
    images = vae.decode(z)
    if mistake == "no map":
        return images.clamp(0, 1)
    if mistake == "no clamp":
        return images / 2 + 0.5
    return (images / 2 + 0.5).clamp(0, 1)


def test_decode(capsys):
    expect_ok(checks.check_decode, decode, capsys)
    expect_todo(checks.check_decode, capsys)
    for mistake, name in (("no unscale", nb11.NO_UNSCALE), ("times", nb11.TIMES_SCALE),
                          ("no map", nb11.NO_RANGE_MAP), ("no clamp", nb11.NO_CLAMP)):
        expect_mistake(checks.check_decode, lambda v, z, m=mistake: decode(v, z, m), name)
    expect_margins(checks.check_decode, decode)


# --- the denoising loop ----------------------------------------------------------------------------

def denoise(unet, latents, context, timesteps, schedule, guidance_scale, mistake=None):
    x = latents
    timesteps = timesteps.tolist()
    for i, t in enumerate(timesteps):
        prev_t = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        if mistake == "t - 1":
            prev_t = t - 1
        time = sinusoidal_embedding(torch.tensor([t]), dim=unet.config.n_time_embd)
        eps_both = unet(torch.cat([x, x]), context, time)
        if mistake == "reversed":
            eps_cond, eps_uncond = eps_both.chunk(2)
        else:
            eps_uncond, eps_cond = eps_both.chunk(2)
        eps = eps_cond if mistake == "cond only" else eps_uncond + guidance_scale * (eps_cond - eps_uncond)
        x = ddim_step(schedule, eps, t, x, prev_t, set_alpha_to_one=(mistake == "to one"))
    return x


def test_denoise(capsys):
    expect_ok(checks.check_denoise, denoise, capsys)
    expect_todo(checks.check_denoise, capsys)
    for mistake, name in (("reversed", nb11.GUIDANCE_REVERSED), ("cond only", nb11.NO_GUIDANCE),
                          ("t - 1", nb11.PREV_T_MINUS_ONE), ("to one", nb11.LAST_TO_ONE)):
        expect_mistake(checks.check_denoise, lambda *a, m=mistake: denoise(*a, mistake=m), name)
    expect_margins(checks.check_denoise, denoise)


def test_the_references_are_the_course_pipeline(capsys):
    """The [todo] references pass their own checks: the notebook keeps running on them."""
    for check in (checks.check_guided_context, checks.check_decode, checks.check_denoise):
        expect_ok(check, check.reference(), capsys)


def test_hints_are_registered(capsys):
    for name in ("guided_context", "decode", "denoise"):
        checks.hint(name)
        assert f"[hint] {name}:" in capsys.readouterr().out
