"""DDPM and DDIM steps equal diffusers' schedulers (SD v1 settings) on the same inputs; classifier-free
guidance uses the batch order [uncond, cond]; the sampling loop runs a real (tiny) Diffusion."""
import diffusers  # a dev dependency: a missing one is a failure, not a skip
import pytest
import torch

from sdcourse import Diffusion, UNetConfig
from sdcourse.sampling import cfg_inputs, ddim_step, ddpm_mean_std, ddpm_step, guided_noise, predict_x0, sample
from sdcourse.schedule import NoiseSchedule

SD_V1 = dict(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
             clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def tensors(seed=0, shape=(2, 4, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("n_steps", [50, 25])
def test_ddim_steps_equal_diffusers(n_steps):
    ref = diffusers.DDIMScheduler(**SD_V1)
    ref.set_timesteps(n_steps)
    s = NoiseSchedule.sd_v1()
    timesteps = s.inference_timesteps(n_steps)
    x, _ = tensors(1)
    for i, t in enumerate(timesteps.tolist()):
        eps, _ = tensors(100 + i)
        prev_t = timesteps[i + 1].item() if i + 1 < len(timesteps) else t - 1000 // n_steps
        ours = ddim_step(s, eps, t, x, prev_t)
        theirs = ref.step(eps, t, x, eta=0.0).prev_sample
        assert torch.allclose(ours, theirs, atol=1e-5), (t, (ours - theirs).abs().max())
        x = theirs


def test_ddim_step_with_clipping_equals_diffusers():
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                                  set_alpha_to_one=False, timestep_spacing="trailing")
    ref.set_timesteps(25)
    s = NoiseSchedule.cosine()
    x, eps = tensors(2)
    x = x * 3  # so that x0_hat really gets clipped
    for i in (0, 5):
        t, prev_t = ref.timesteps[i].item(), ref.timesteps[i + 1].item()
        for clipped_eps in (False, True):
            theirs = ref.step(eps, t, x, use_clipped_model_output=clipped_eps).prev_sample
            ours = ddim_step(s, eps, t, x, prev_t, clip=1.0, clipped_eps=clipped_eps)
            assert torch.allclose(ours, theirs, atol=1e-4), (t, clipped_eps)
    assert not torch.allclose(ddim_step(s, eps, t, x, prev_t), theirs, atol=1e-3)  # the clip matters here


def test_ddpm_mean_equals_diffusers():
    ref = diffusers.DDPMScheduler(**{k: v for k, v in SD_V1.items() if k != "set_alpha_to_one"})
    s = NoiseSchedule.sd_v1()
    x, eps = tensors(3)
    for t in (999, 500, 1):
        # with zero noise, diffusers' step returns exactly the posterior mean
        zero = torch.zeros_like(x)
        g = torch.Generator().manual_seed(0)
        theirs_noisy = ref.step(eps, t, x, generator=g).prev_sample
        mean, std = ddpm_mean_std(s, eps, t, x)
        # the same draw of noise: diffusers uses randn(shape, generator) then variance ** 0.5
        g = torch.Generator().manual_seed(0)
        noise = torch.randn(x.shape, generator=g)
        assert torch.allclose(mean + std * noise, theirs_noisy, atol=1e-5), t
        assert torch.allclose(ddpm_step(s, eps, t, x, noise=zero), mean)


def test_ddpm_posterior_by_hand():
    """One step t -> t-1 with the textbook formulas (Ho et al. eq. 7), written out independently."""
    s = NoiseSchedule.sd_v1()
    x, eps = tensors(4, (1, 1, 2, 2))
    t = 300
    ab, ab_prev, beta = (float(v) for v in (s.alphas_cumprod[t], s.alphas_cumprod[t - 1], s.betas[t]))
    x0 = (x - (1 - ab) ** 0.5 * eps) / ab ** 0.5
    mean = ab_prev ** 0.5 * beta / (1 - ab) * x0 + (1 - beta) ** 0.5 * (1 - ab_prev) / (1 - ab) * x
    got_mean, got_std = ddpm_mean_std(s, eps, t, x)
    assert torch.allclose(got_mean, mean, atol=1e-6)
    assert abs(got_std - ((1 - ab_prev) / (1 - ab) * beta) ** 0.5) < 1e-9


def test_predict_x0_inverts_add_noise():
    s = NoiseSchedule.sd_v1()
    x0, noise = tensors(5)
    t = 700
    xt = s.add_noise(x0, noise, torch.full((2,), t))
    assert torch.allclose(predict_x0(s, noise, t, xt), x0, atol=1e-4)
    # DDIM with the true noise lands exactly on the forward process at prev_t
    assert torch.allclose(ddim_step(s, noise, t, xt, 650), s.add_noise(x0, noise, torch.full((2,), 650)), atol=1e-5)


def test_guidance_order_is_uncond_then_cond():
    eps_uncond, eps_cond = torch.zeros(1, 4, 8, 8), torch.ones(1, 4, 8, 8)
    guided = guided_noise(torch.cat([eps_uncond, eps_cond]), 7.5)
    assert torch.allclose(guided, torch.full_like(eps_cond, 7.5))  # uncond + 7.5 (cond - uncond)
    assert torch.allclose(guided_noise(torch.cat([eps_uncond, eps_cond]), 1.0), eps_cond)
    x = torch.randn(2, 4, 8, 8)
    cond, uncond = torch.ones(1, 3, 5), torch.zeros(1, 3, 5)
    xx, ctx = cfg_inputs(x, cond, uncond)
    assert xx.shape == (4, 4, 8, 8) and torch.equal(xx[:2], xx[2:])
    assert torch.equal(ctx[:2], torch.zeros(2, 3, 5)) and torch.equal(ctx[2:], torch.ones(2, 3, 5))
    with pytest.raises(ValueError, match=r"\[uncond, cond\]"):
        guided_noise(torch.zeros(3, 4, 8, 8), 7.5)


def test_sampling_loop_runs_and_is_deterministic():
    torch.manual_seed(0)
    model = Diffusion(UNetConfig.tiny()).eval()
    ctx = torch.randn(1, 5, model.config.d_context)
    uncond = torch.zeros(1, 5, model.config.d_context)
    seen = []
    kwargs = dict(shape=(2, 4, 8, 8), num_inference_steps=3, guidance_scale=5.0, progress=False)
    a = sample(model, ctx, uncond, generator=torch.Generator().manual_seed(1),
               callback=lambda i, t, x, x0: seen.append(t), **kwargs)
    b = sample(model, ctx, uncond, generator=torch.Generator().manual_seed(1), **kwargs)
    assert a.shape == (2, 4, 8, 8) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert seen == [667, 334, 1]
    c = sample(model, ctx, uncond, sampler="ddpm", generator=torch.Generator().manual_seed(1), **kwargs)
    assert c.shape == a.shape and not torch.equal(a, c)


def test_sampling_bad_inputs():
    model = Diffusion(UNetConfig.tiny()).eval()
    ctx = torch.randn(1, 5, model.config.d_context)
    with pytest.raises(ValueError, match="uncond_context"):
        sample(model, ctx, None, shape=(1, 4, 8, 8), num_inference_steps=2, progress=False)
    with pytest.raises(ValueError, match="'ddim' or 'ddpm'"):
        sample(model, ctx, ctx, shape=(1, 4, 8, 8), sampler="euler", progress=False)
    with pytest.raises(ValueError, match="prev_t"):
        ddim_step(NoiseSchedule.sd_v1(), torch.zeros(1), 10, torch.zeros(1), 20)


def test_v_prediction_converts_to_the_true_noise():
    from sdcourse.sampling import eps_from_v

    s = NoiseSchedule.cosine()
    x0, noise = tensors(6)
    for t in (999, 600, 5):
        ab = s.alphas_cumprod[t].float()
        x_t = s.add_noise(x0, noise, torch.full((2,), t))
        v = ab.sqrt() * noise - (1 - ab).sqrt() * x0  # Salimans & Ho's v, written out
        assert torch.allclose(eps_from_v(s, v, t, x_t), noise, atol=1e-4), t


def test_v_to_eps_per_image_equals_one_timestep_at_a_time():
    """Training converts v with one timestep per image, sampling with one for the batch: one function."""
    from sdcourse.sampling import eps_from_v

    s = NoiseSchedule.cosine()
    x, v = tensors(8, shape=(3, 4, 8, 8))
    t = torch.tensor([999, 400, 3])
    per_image = eps_from_v(s, v, t, x)
    for i in range(3):
        assert torch.equal(per_image[i:i + 1], eps_from_v(s, v[i:i + 1], int(t[i]), x[i:i + 1]))
    assert not torch.allclose(per_image[0], per_image[2], atol=1e-2)


def test_progress_bars_end_finished_or_are_absent(capsys):
    """Outside a terminal (pytest's capture, Jupyter, a notebook run by nbclient) a bar prints one
    line at 100% when done and nothing before: never a bar frozen at 0% in a saved notebook."""
    from sdcourse.device import progress_bar

    torch.manual_seed(0)
    model = Diffusion(UNetConfig.tiny()).eval()
    ctx = torch.randn(1, 5, model.config.d_context)
    sample(model, ctx, ctx, shape=(1, 4, 8, 8), num_inference_steps=3, progress=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "100%" in err and "3/3" in err and "0%|" not in err.replace("100%", ""), err
    assert "\r" not in err and "\x1b" not in err, repr(err)
    sample(model, ctx, ctx, shape=(1, 4, 8, 8), num_inference_steps=3, progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="True, False or 'live'"):
        progress_bar(range(3), progress="yes")


def test_ddim_with_v_prediction_equals_diffusers():
    from sdcourse.sampling import eps_from_v

    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                                  set_alpha_to_one=False, timestep_spacing="trailing", prediction_type="v_prediction")
    ref.set_timesteps(25)
    s = NoiseSchedule.cosine()
    x, v = tensors(7)
    for i in (0, 3, 12):
        t, prev_t = ref.timesteps[i].item(), ref.timesteps[i + 1].item()
        ours = ddim_step(s, eps_from_v(s, v, t, x), t, x, prev_t)
        assert torch.allclose(ours, ref.step(v, t, x).prev_sample, atol=2e-4), t  # diffusers computes in float32
