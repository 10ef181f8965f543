"""The noise schedules: SD v1's equals diffusers' DDPMScheduler with the SD v1 settings, the cosine
one equals diffusers' "squaredcos_cap_v2", and forward noising follows its closed form."""
import math

import diffusers  # a dev dependency: a missing one is a failure, not a skip
import pytest
import torch

from sdcourse.schedule import NoiseSchedule

SD_V1 = dict(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
             clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def diffusers_ddim():
    return diffusers.DDIMScheduler(**SD_V1)


def test_sd_v1_betas_and_alphas_cumprod_equal_diffusers():
    ref = diffusers_ddim()
    ours = NoiseSchedule.sd_v1()
    assert torch.allclose(ours.betas.float(), ref.betas, atol=1e-9, rtol=1e-6)
    assert torch.allclose(ours.alphas_cumprod.float(), ref.alphas_cumprod, atol=1e-7, rtol=1e-5)


def test_sd_v1_endpoints_by_hand():
    s = NoiseSchedule.sd_v1()
    assert math.isclose(float(s.betas[0]), 0.00085, rel_tol=1e-9)
    assert math.isclose(float(s.betas[-1]), 0.012, rel_tol=1e-9)
    # sqrt(beta) is linear: the middle of sqrt(betas) is the mean of the ends
    mid = (0.00085 ** 0.5 + 0.012 ** 0.5) / 2
    assert math.isclose(float((s.betas[499].sqrt() + s.betas[500].sqrt()) / 2), mid, rel_tol=1e-9)
    # alpha_bar is the running product of (1 - beta)
    assert math.isclose(float(s.alphas_cumprod[2]), (1 - 0.00085) * float(1 - s.betas[1]) * float(1 - s.betas[2]), rel_tol=1e-12)


def test_cosine_equals_diffusers_squaredcos():
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    ours = NoiseSchedule.cosine()
    assert torch.allclose(ours.alphas_cumprod.float(), ref.alphas_cumprod, atol=1e-6)
    # the cosine schedule leaves (almost) no signal at the last step, SD v1's leaves 0.068
    assert float(ours.alphas_cumprod[-1].sqrt()) < 1e-3
    assert 0.06 < float(NoiseSchedule.sd_v1().alphas_cumprod[-1].sqrt()) < 0.075


def test_add_noise_equals_diffusers_and_formula():
    ref = diffusers_ddim()
    s = NoiseSchedule.sd_v1()
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    t = torch.tensor([0, 500, 999])
    ours = s.add_noise(x0, noise, t)
    assert torch.allclose(ours, ref.add_noise(x0, noise, t), atol=1e-5)
    ab = float(s.alphas_cumprod[500])
    assert torch.allclose(ours[1], ab ** 0.5 * x0[1] + (1 - ab) ** 0.5 * noise[1], atol=1e-6)


def test_leading_timesteps_equal_diffusers():
    ref = diffusers_ddim()
    s = NoiseSchedule.sd_v1()
    for n in (1, 10, 25, 50, 999):
        ref.set_timesteps(n)
        assert torch.equal(s.inference_timesteps(n, "leading", 1), ref.timesteps.long()), n
    assert s.inference_timesteps(50)[:3].tolist() == [981, 961, 941]


def test_trailing_timesteps_equal_diffusers():
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing="trailing")
    s = NoiseSchedule.cosine()
    for n in (10, 25, 50):
        ref.set_timesteps(n)
        assert torch.equal(s.inference_timesteps(n, "trailing"), ref.timesteps.long()), n


def test_bad_inputs_raise_clear_errors():
    s = NoiseSchedule.sd_v1()
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="0 .. 999"):
        s.add_noise(x, x, torch.tensor([0, 1000]))
    with pytest.raises(ValueError, match="integer"):
        s.add_noise(x, x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        s.add_noise(x, x[:1], torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="'sd_v1' or 'cosine'"):
        NoiseSchedule.from_name("linear")
    with pytest.raises(ValueError, match="num_inference_steps"):
        s.inference_timesteps(0)
