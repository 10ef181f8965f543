"""Checkers of notebook 07: the training loss, one training step, the space-to-depth "VAE" and the
localisation score.

The loss and the step are checked on a small `TinySD` (the capstone model with narrow widths, so
that a check takes a second), against `sdcourse.train.diffusion_loss` and a reference step.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict

import torch

from .core import CheckResult, _call, _finish, _max_diff, _named, compare, exercise
from .hints import register

# --- the training loss ------------------------------------------------------------------------


def _small_model(loud: bool = False):
    """A small capstone model, the same for every call (its own random stream). loud: its output
    conv scaled up 30x, so that the loss and its gradient norm are large (clipping to 1 matters)."""
    from ..train import TinySD, TrainConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(70)
        model = TinySD(TrainConfig(batch_size=4, channels=(32, 32, 32), seed=3))
    if loud:
        with torch.no_grad():
            model.diffusion.final.conv.weight.mul_(30)
    return model


def _loss_batch(model, step: int, high_noise: bool = False) -> Dict[str, torch.Tensor]:
    from ..train import training_batch

    batch = training_batch(model, step)
    # timesteps spread over the whole range (nearly clean ... pure noise), so that every weight matters
    batch["t"] = torch.tensor([990, 940, 500, 30]) if high_noise else torch.tensor([15, 300, 700, 985])
    return batch


_LOSS_HINTS = {
    "no loss weights (plain MSE)": "Multiply each image's MSE by loss_weight(model, t) before the mean.",
    "the MSE taken against x0 instead of the noise": "The target is the noise that was added: (predicted - noise).",
    "the model saw the clean x0 (no noise added)": "Noise the latents first: x_t = model.schedule.add_noise(x0, noise, t).",
    "the network's raw output (v) compared with the noise": "This model's UNet outputs v; model.predict_noise(x_t, "
                                                            "context, t) turns it into the noise it implies.",
    "squared error summed, not averaged": "Average over channels and pixels: .pow(2).mean(dim=(1, 2, 3)), then "
                                          "the weighted mean over the batch.",
}


def _loss_reference():
    from ..train import diffusion_loss
    return diffusion_loss


def _loss_mistakes(model, x0, ids, t, noise) -> Dict[str, torch.Tensor]:
    from ..time_embedding import sinusoidal_embedding
    from ..train import loss_weight

    x_t = model.schedule.add_noise(x0, noise, t).float()  # (B, 27, h, w)
    ctx = model.text_encoder(ids)  # (B, L, D)
    w = loss_weight(model, t)  # (B,)
    pred = model.predict_noise(x_t, ctx, t)  # (B, 27, h, w)
    raw = model.diffusion(x_t, ctx, sinusoidal_embedding(t, model.diffusion.config.n_time_embd))
    mse = lambda a, b: (a - b).pow(2).mean(dim=(1, 2, 3))  # noqa: E731 - (B, C, h, w) x 2 -> (B,)
    return {
        "no loss weights (plain MSE)": mse(pred, noise).mean(),
        "the MSE taken against x0 instead of the noise": (mse(pred, x0) * w).mean(),
        "the model saw the clean x0 (no noise added)": (mse(model.predict_noise(x0, ctx, t), noise) * w).mean(),
        "the network's raw output (v) compared with the noise": (mse(raw, noise) * w).mean(),
        "squared error summed, not averaged": ((pred - noise).pow(2).sum(dim=(1, 2, 3)) * w).mean(),
    }


@exercise("diffusion_loss", todo="the weighted noise-prediction loss of a batch: a scalar tensor that can be backpropagated.",
          reference=_loss_reference)
def check_training_loss(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 07): fn(model, x0, ids, t, noise) -> the scalar training loss of
    `sdcourse.train.diffusion_loss`: x_t = model.schedule.add_noise(x0, noise, t); context =
    model.text_encoder(ids); predicted = model.predict_noise(x_t, context, t); per-image MSE
    against the noise, times loss_weight(model, t), averaged. The loss must keep its graph."""
    from ..train import diffusion_loss

    model = _small_model()
    batch = _loss_batch(model, step=5)
    name = "diffusion_loss(model, x0, ids, t, noise)"  # i18n: no
    got = _call(name, fn, model, *(batch[k].clone() for k in ("x0", "ids", "t", "noise")),
                hint="fn(model, x0, ids, t, noise) returns a scalar tensor.")
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.requires_grad:
        return _finish(CheckResult(name, False, float("inf"), "the loss detached from the graph",
                                   "It looks like: the loss detached from the graph. Keep it a tensor (no .item(), "
                                   "no torch.no_grad()): backward() needs its graph."), raise_on_failure)
    with torch.no_grad():
        expected = diffusion_loss(model, **batch)
        mistakes = _loss_mistakes(model, **batch)
    got = got.detach().reshape(()) if isinstance(got, torch.Tensor) and got.numel() == 1 else got
    return compare(name, got, expected, mistakes, _named(_LOSS_HINTS), atol=1e-5,
                   general_hint="x_t = add_noise, context = text_encoder(ids), predicted = predict_noise(x_t, context, t), "
                                "((predicted - noise)^2 per image * loss_weight).mean().",
                   raise_on_failure=raise_on_failure)


# --- one training step ------------------------------------------------------------------------

_STEP_HINTS = {
    "optimizer.zero_grad() forgotten (last step's gradients added)": "PyTorch ADDS new gradients to .grad: clear "
        "them with optimizer.zero_grad() before loss.backward().",
    "no gradient clipping": "Before optimizer.step(): torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).",
    "optimizer.step() with no gradients (before backward, or after a second zero_grad)": "The order is zero_grad, "
        "backward, clip, step: step uses the gradients that backward has just computed.",
    "the loss returned as a tensor": "Return loss.item(), a Python float: a tensor keeps the whole graph of the step alive.",
}


def _step_reference():
    def training_step(model, optimizer, batch):
        from ..train import diffusion_loss

        loss = diffusion_loss(model, **batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()
    return training_step


_WARM: Dict[str, object] = {}


def _warm_model_and_optimizer():
    """The small model after one earlier step: AdamW has moments, and that step's gradients are
    still in .grad (unclipped). Computed once, then copied for each call."""
    from ..train import diffusion_loss

    if not _WARM:
        model = _small_model(loud=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        diffusion_loss(model, **_loss_batch(model, step=1)).backward()
        optimizer.step()
        _WARM.update(model=model.state_dict(), optimizer=optimizer.state_dict(),
                     grads=[p.grad.clone() for p in model.parameters()])
    model = _small_model(loud=True)
    model.load_state_dict(_WARM["model"])
    for p, grad in zip(model.parameters(), _WARM["grads"]):
        p.grad = grad.clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    optimizer.load_state_dict(copy.deepcopy(_WARM["optimizer"]))  # its moments are updated in place
    return model, optimizer


def _step_variant(variant: str):
    """Run one step the right way (variant "") or with one mistake; -> (parameters after, loss)."""
    from ..train import diffusion_loss

    model, optimizer = _warm_model_and_optimizer()
    batch = _loss_batch(model, step=2, high_noise=False)
    loss = diffusion_loss(model, **batch)
    if variant.startswith("optimizer.step() with no gradients"):  # i18n: no
        optimizer.zero_grad()
        optimizer.step()
        loss.backward()
    else:
        if variant != "optimizer.zero_grad() forgotten (last step's gradients added)":
            optimizer.zero_grad()
        loss.backward()
        if variant != "no gradient clipping":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return _flat(model), loss.item()


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()


@exercise("training_step", todo="one optimisation step of the model on a batch; return the loss as a float.", reference=_step_reference)
def check_training_step(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 07): fn(model, optimizer, batch) -> float. One step: the loss of `batch`
    (a dict x0, ids, t, noise), optimizer.zero_grad(), loss.backward(), clip the gradient norm to 1,
    optimizer.step(); return the loss as a Python float.

    Checked on a small model whose AdamW already took one step (so the old gradients are still in
    .grad, and the moments make gradient clipping visible), on a batch of noisy timesteps, whose
    gradient norm is well above 1. The parameters after the step and the returned loss are compared."""
    name = "training_step(model, optimizer, batch)"  # i18n: no
    model, optimizer = _warm_model_and_optimizer()
    batch = _loss_batch(model, step=2, high_noise=False)
    got_loss = _call(name, fn, model, optimizer, batch, hint="fn(model, optimizer, batch) returns the loss as a float.")
    got = _flat(model)
    expected, expected_loss = _step_variant("")
    mistakes = {m: _step_variant(m)[0] for m in _STEP_HINTS if m != "the loss returned as a tensor"}
    if _max_diff(got, expected) <= 1e-6:  # the parameters are right: now the returned loss
        if isinstance(got_loss, torch.Tensor):
            mistake = "the loss returned as a tensor"
            return _finish(CheckResult(name, False, float("inf"), mistake, _named(_STEP_HINTS)[mistake]), raise_on_failure)
        if not isinstance(got_loss, (int, float)) or abs(float(got_loss) - expected_loss) > 1e-5:
            return _finish(CheckResult(name, False, float("inf"), None,
                                       f"The parameters are right but it returned {got_loss!r}, expected the batch's "
                                       f"loss {expected_loss:.5f} (loss.item())."), raise_on_failure)
    return compare(name, got, expected, mistakes, _named(_STEP_HINTS), atol=1e-6,
                   general_hint="zero_grad, backward, clip_grad_norm_(..., 1.0), step, in this order.",
                   raise_on_failure=raise_on_failure)


# --- the space-to-depth "VAE" and the localisation score (warm-ups) ---------------------------

def _fold_reference():
    def fold(images, p):
        return torch.nn.functional.pixel_unshuffle(images, p)
    return fold


@exercise("fold", todo="(B, C, H, W) -> (B, C p^2, H/p, W/p), by hand (pixel_unshuffle is blocked).",
          reference=_fold_reference)
def check_space_to_depth(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 07): fn(images, p) -> F.pixel_unshuffle(images, p): (B, C, S, S) -> (B, C p^2, S/p, S/p),
    channel c * p^2 + dy * p + dx of cell (i, j) = pixel (i p + dy, j p + dx) of channel c."""
    g = torch.Generator().manual_seed(8)
    images = torch.randn(2, 3, 8, 12, generator=g)  # not square, so that swapped axes show
    name = "fold(images (2, 3, 8, 12), p=4)"
    got = _call(name, fn, images.clone(), 4, hint="fn(images, p) with images (B, C, H, W).",
                forbidden=("pixel_unshuffle",))
    b, c, h, w = images.shape
    x = images.view(b, c, h // 4, 4, w // 4, 4)
    mistakes = {
        "offsets (dy, dx) swapped": x.permute(0, 1, 5, 3, 2, 4).reshape(b, c * 16, h // 4, w // 4),
        "channel last in the channel order": x.permute(0, 3, 5, 1, 2, 4).reshape(b, c * 16, h // 4, w // 4),
        "a plain reshape without permute": images.reshape(b, c * 16, h // 4, w // 4),
    }
    hints = _named({
        "offsets (dy, dx) swapped": "Within a cell, the row offset dy comes before the column offset dx: permute(0, 1, 3, 5, 2, 4).",
        "channel last in the channel order": "The colour channel is the slowest index: c * p^2 + dy * p + dx.",
        "a plain reshape without permute": "A reshape alone mixes pixels of different cells: first view (B, C, H/p, p, W/p, p), "
                                           "then move the two offsets next to the channel with permute.",
    })
    return compare(name, got, torch.nn.functional.pixel_unshuffle(images, 4), mistakes, hints, atol=0,
                   raise_on_failure=raise_on_failure)


def _score_reference():
    def score(token_map, mask):
        g = token_map.shape[-1]
        cover = torch.nn.functional.adaptive_avg_pool2d(mask.float()[None, None], g)[0, 0]  # (g, g)
        return float((token_map * cover).sum() / token_map.sum() / cover.mean())
    return score


@exercise("localisation_score", todo="token_map (g, g), mask (S, S) -> how many times its fair share of the map's mass lies in the mask (a float).",
          reference=_score_reference)
def check_localisation_score(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 07): fn(token_map (g, g), mask (S, S) bool) -> float:
    (share of the map's mass in the mask, the mask average-pooled to g x g) / (the mask's area share)."""
    g = torch.Generator().manual_seed(9)
    token_map = torch.rand(8, 8, generator=g) ** 3
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[3:14, 5:17] = True  # cuts through cells, so that pooling matters
    name = "score(token_map (8, 8), mask (32, 32))"
    got = _call(name, fn, token_map.clone(), mask.clone(), hint="fn(token_map, mask) returns a float.")
    cover = torch.nn.functional.adaptive_avg_pool2d(mask.float()[None, None], 8)[0, 0]  # (8, 8)
    inside = float((token_map * cover).sum() / token_map.sum())
    expected = inside / float(cover.mean())
    hard = (cover > 0).float()
    values = {
        "not divided by the area share": inside,
        "mass inside not normalised by the total mass": float((token_map * cover).sum()) / float(cover.mean()),
        "cells counted as inside when the object touches them at all":
            float((token_map * hard).sum() / token_map.sum()) / float(hard.mean()),
    }
    hints = _named({
        "not divided by the area share": "Divide by mask.float().mean(): a big object gets a lot of mass by chance.",
        "mass inside not normalised by the total mass": "Divide the mass inside by token_map.sum(): a share, between 0 and 1.",
        "cells counted as inside when the object touches them at all": "Weigh each cell by the fraction the object covers "
                                                                       "(average pooling), not 0 or 1.",
    })
    as_tensor = torch.tensor(float(got)) if isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1) else got
    return compare(name, as_tensor.reshape(()) if isinstance(as_tensor, torch.Tensor) else as_tensor,
                   torch.tensor(expected), {k: torch.tensor(v) for k, v in values.items()}, hints, atol=1e-5,
                   raise_on_failure=raise_on_failure)


register("training_loss", "Four steps: noise the latents, encode the captions, predict the noise, compare.",
         "model.predict_noise already turns the UNet's v into the noise; the MSE is per image, then weighted.")
register("training_step", "Five lines in a fixed order; PyTorch accumulates gradients until you clear them.",
         "The Trainer of sdcourse.train does the same in train_step: read it if you are stuck.")
register("fold", "Split each side into (cell, offset) with view, then move the offsets next to the channel.")
register("localisation_score", "Average-pool the mask to the map's grid: each cell gets the fraction the object covers.")
