"""Training: the very same Diffusion classes, a loss that goes down, checkpoints that round-trip,
and a resumed run that continues exactly where it stopped."""
import json

import pytest
import torch

from sdcourse import Diffusion
from sdcourse.train import (TextEncoder, TinySD, TrainConfig, Trainer, diffusion_loss, load_checkpoint, main,
                            read_metadata, save_checkpoint, training_batch)

SMALL = TrainConfig(channels=(32, 16, 16), batch_size=4, warmup_steps=1)


def test_tiny_model_is_the_course_diffusion():
    model = TinySD(TrainConfig())
    assert type(model.diffusion) is Diffusion
    cfg = model.diffusion.config
    assert cfg.in_channels == cfg.out_channels == 27  # 3 x 3 x 3: the space-to-depth latent
    images = torch.rand(2, 3, 24, 24)
    latents = model.to_latent(images)
    assert latents.shape == (2, 27, 8, 8)
    assert torch.equal(model.to_image(latents), images)  # the "VAE" is lossless
    # a latent cell holds its 3 x 3 pixel patch: channel c * 9 + dy * 3 + dx
    assert latents[1, 2 * 9 + 1 * 3 + 2, 5, 6] == images[1, 2, 5 * 3 + 1, 6 * 3 + 2]


def test_text_encoder_shapes_and_errors():
    enc = TextEncoder(vocab_size=20, max_tokens=12, d_context=64)
    assert enc(torch.zeros(3, 12, dtype=torch.long)).shape == (3, 12, 64)
    with pytest.raises(ValueError, match="Tokenizer"):
        enc(torch.zeros(3, 11, dtype=torch.long))


def test_batches_are_seeded_by_step():
    model = TinySD(SMALL)
    a, b, c = training_batch(model, 7), training_batch(model, 7), training_batch(model, 8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["x0"], c["x0"])


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    model = TinySD(SMALL)
    batch = training_batch(model, 0)
    batch["t"] = torch.tensor([100, 400, 700, 900])
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss = diffusion_loss(model, **batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def test_loss_weighting_by_hand():
    model = TinySD(TrainConfig(channels=(32, 16, 16), min_snr_gamma=5.0, max_noise_weight=20.0))
    plain = TinySD(TrainConfig(channels=(32, 16, 16), min_snr_gamma=0.0, max_noise_weight=0.0))
    plain.load_state_dict(model.state_dict())
    batch = training_batch(model, 0)
    abar = model.schedule.alphas_cumprod
    # nearly clean: gamma / SNR; middle: 1; noisy: 1 / SNR; very noisy: the cap 20
    for t in (10, 400, 700, 990):
        snr = float(abar[t] / (1 - abar[t]))
        expected = 5.0 / snr if snr > 5 else 1.0 if snr >= 1 else min(1 / snr, 20.0)
        batch["t"] = torch.full((model.config.batch_size,), t)
        with torch.no_grad():
            ratio = float(diffusion_loss(model, **batch) / diffusion_loss(plain, **batch))
        assert ratio == pytest.approx(expected, rel=1e-4), t
    assert float(abar[10] / (1 - abar[10])) > 5 and float(abar[990] / (1 - abar[990])) < 1 / 20


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TinySD(SMALL).eval()
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, model, {"steps": 3})
    loaded = load_checkpoint(path)
    assert loaded.config == SMALL
    assert read_metadata(path)["training"] == {"steps": 3}
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    save_checkpoint(tmp_path / "half.safetensors", model, dtype=torch.float16)
    half = load_checkpoint(tmp_path / "half.safetensors")
    x = model.to_latent(torch.rand(1, 3, 24, 24))
    ctx = model.encode(["red circle top left"])
    with torch.no_grad():
        a = model.predict_noise(x, ctx, torch.tensor([500]))
        b = half.predict_noise(x, half.encode(["red circle top left"]), torch.tensor([500]))
    assert (a - b).abs().max() < 0.05  # fp16 weights, fp32 compute
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_resume_continues_exactly(tmp_path):
    straight = Trainer(SMALL)
    straight.run(steps=4, progress=False)
    first = Trainer(SMALL)
    first.run(steps=2, progress=False)
    first.save_state(tmp_path / "state.safetensors")
    resumed = Trainer(SMALL)
    resumed.load_state(tmp_path / "state.safetensors")
    assert resumed.step == 2
    resumed.run(steps=4, progress=False)
    for (k, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), k
    for a, b in zip(straight.ema.parameters(), resumed.ema.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert [round(v, 5) for _, v in straight.losses] == [round(v, 5) for _, v in resumed.losses]
    other = Trainer(TrainConfig(channels=(32, 16, 16), batch_size=8))
    with pytest.raises(ValueError, match="different config"):
        other.load_state(tmp_path / "state.safetensors")


def test_cli_trains_resumes_and_exports(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--out", str(out), "--steps", "2", "--seed", "1", "--channels", "32", "16", "16", "--batch-size", "2",
            "--export", str(tmp_path / "exported.safetensors")]
    main(args)
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["steps"] == 2
    main(args[:3] + ["3"] + args[4:])  # --steps 3: resumes from step 2
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 3
    meta = read_metadata(tmp_path / "exported.safetensors")
    assert meta["config"]["seed"] == 1 and meta["training"]["steps"] == 3
    assert "python -m sdcourse.train" in meta["training"]["command"] and "--steps 2" in meta["training"]["command"]
    assert len(meta["training"]["commands"]) == 2 and "--steps 3" in meta["training"]["commands"][1]
    assert load_checkpoint(tmp_path / "exported.safetensors").config.channels == (32, 16, 16)
    assert (out / "state.safetensors").exists() and (out / "log.jsonl").exists()


def test_config_errors():
    with pytest.raises(ValueError, match="multiple of 8"):
        TrainConfig(image_size=24, patch=4)
    with pytest.raises(ValueError, match="multiple of 8"):
        TrainConfig(image_size=32, patch=3)
    with pytest.raises(ValueError, match="unknown setting"):
        TrainConfig.from_dict({"learning_rate": 1.0})


def test_phrase_mixing_by_hand():
    model = TinySD(TrainConfig(channels=(32, 16, 16), text_mixing="phrase"))
    enc = model.text_encoder
    ids = model.tokenizer(["red circle top left and blue square", ""])  # (2, 12)
    words = enc.token_embedding(ids)  # (2, 12, 64)
    mixed = enc.phrase_mean(ids, words)
    # tokens: <start> red circle top left and blue square <end> <pad> ...
    assert torch.allclose(mixed[0, 2], words[0, 1:5].mean(0))  # "circle": mean of red, circle, top, left
    assert torch.allclose(mixed[0, 6], words[0, 6:8].mean(0))  # "blue": mean of blue, square
    for i in (0, 5, 8, 9):  # <start>, "and", <end>, <pad> carry nothing extra
        assert torch.count_nonzero(mixed[0, i]) == 0
    assert torch.count_nonzero(mixed[1]) == 0  # the empty caption
    plain = TinySD(TrainConfig(channels=(32, 16, 16), text_mixing="none"))
    plain.load_state_dict(model.state_dict())
    a, b = model.encode(["red circle top left"]), plain.encode(["red circle top left"])
    assert torch.allclose(a[0, 0], b[0, 0]) and not torch.allclose(a[0, 2], b[0, 2])
    with pytest.raises(ValueError, match="mixing"):
        TextEncoder(mixing="all")


def test_old_checkpoints_load_with_the_settings_they_were_trained_with(tmp_path):
    from safetensors.torch import load_file, save_file

    model = TinySD(TrainConfig(channels=(32, 16, 16), text_mixing="none", prediction="epsilon"))
    save_checkpoint(tmp_path / "new.safetensors", model)
    meta = read_metadata(tmp_path / "new.safetensors")["config"]
    for key in ("text_mixing", "prediction", "max_noise_weight"):  # settings the course added later
        del meta[key]
    save_file(load_file(tmp_path / "new.safetensors"), tmp_path / "old.safetensors",
              metadata={"sdcourse_config": json.dumps(meta)})
    old = load_checkpoint(tmp_path / "old.safetensors")
    assert (old.config.text_mixing, old.config.prediction, old.config.max_noise_weight) == ("none", "epsilon", 0.0)
    assert TrainConfig.from_dict(meta).text_mixing == TrainConfig().text_mixing  # not a checkpoint: today's defaults


def test_the_package_keeps_its_names_and_its_command():
    """sdcourse.train is a package of one-idea modules; the names notebooks, tests and benchmarks
    import from it, and `python -m sdcourse.train`, keep working."""
    import subprocess
    import sys

    import sdcourse.train as pkg

    for name in ("TinySD", "TrainConfig", "Trainer", "TextEncoder", "diffusion_loss", "loss_weight", "training_batch",
                 "training_step", "step_generator", "save_checkpoint", "load_checkpoint", "read_metadata",
                 "load_shipped", "shipped_checkpoint_path", "train", "main", "LEGACY"):
        assert hasattr(pkg, name), name
    assert pkg.shipped_checkpoint_path().is_file()
    done = subprocess.run([sys.executable, "-m", "sdcourse.train", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--cpu-minutes" in done.stdout, done.stderr


def test_v_prediction_is_turned_into_noise_by_hand():
    """With prediction="v" the UNet's output v becomes eps = sqrt(abar) v + sqrt(1 - abar) x_t, per image."""
    torch.manual_seed(0)
    model = TinySD(TrainConfig(channels=(32, 16, 16), prediction="v")).eval()
    x = torch.randn(3, 27, 8, 8)
    ctx = model.encode(["red circle top left"] * 3)
    t = torch.tensor([990, 500, 10])
    from sdcourse.time_embedding import sinusoidal_embedding

    with torch.no_grad():
        v = model.diffusion(x, ctx, sinusoidal_embedding(t, dim=32))
        eps = model.predict_noise(x, ctx, t)
    abar = model.schedule.alphas_cumprod[t].float()[:, None, None, None]  # (3,) -> (3, 1, 1, 1)
    assert torch.allclose(eps, abar.sqrt() * v + (1 - abar).sqrt() * x, atol=1e-5)
    assert (eps[0] - x[0]).abs().max() < 0.2 * (eps[2] - x[2]).abs().max()  # near pure noise eps is mostly x_t
