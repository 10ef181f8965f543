"""Checkers of notebook 05: decoder channels, Upsample, SwitchSequential, the UNET with its skips,
and (beyond the notes) a UNET forward for any latent size, checked against diffusers."""
from __future__ import annotations

import numbers
from typing import Callable, List, Optional

import torch
from torch.nn import functional as F

from .advice import *  # noqa: F401,F403 - the mistake names
from .advice import _as_result, _first_failure, _mistake, _named_hints, _quiet, _shape_mistakes
from .core import CheckResult, ExerciseError, _build, _run, _seeded, compare, copy_weights, exercise, perturb_
from .hints import register


# --- decoder channels ------------------------------------------------------------------------------

def _decoder_in_channels(config, mistake: Optional[str] = None) -> torch.Tensor:
    """Channels entering each of the 12 decoders: current + popped skip (or a typical mistake)."""
    c1, c2, c3 = config.channels
    pushed = [c1, c1, c1, c1, c2, c2, c2, c3, c3, c3, c3, c3]  # what encoders 0..11 push
    outputs = [c3] * 6 + [c2] * 3 + [c1] * 3  # what decoders 0..11 give
    current, channels = c3, []  # the bottleneck gives c3
    for i in range(12):
        skip = pushed[i] if mistake == SKIPS_AS_QUEUE else pushed[11 - i]
        channels.append(current + (0 if mistake == SKIP_NOT_ADDED else skip))
        current = outputs[i]
    return torch.tensor(channels)


def decoder_in_channels_reference(config) -> List[int]:
    """The reference answer: the 12 decoders' input channels for a UNetConfig."""
    return _decoder_in_channels(config).tolist()


register("decoder_in_channels",
         "Write down what each encoder step pushes (12 channel counts) and what each decoder step gives.",
         "Decoder i receives what came from below (the bottleneck for i = 0) plus the skip it pops: the last one pushed.")


@exercise("decoder_in_channels", todo="return the 12 decoder input channels: current + popped skip, from the stack",
          reference=lambda: decoder_in_channels_reference)
def check_decoder_channels(decoder_in_channels: Callable, raise_on_failure: bool = True) -> CheckResult:
    """decoder_in_channels(config) -> the 12 input channel counts of the decoders, for any UNetConfig.

    Checked on SD v1 and on a config with three different widths; the reference is read from the
    decoders' first layers of a UNET built on the meta device (no memory). Floats (e.g. from `/`)
    are refused: channel counts are ints.
    """
    from ..unet import UNET, UNetConfig

    result = None
    for config in (UNetConfig(), UNetConfig(channels=(24, 40, 56), n_head=4, n_groups=8)):
        with torch.device("meta"):
            unet = UNET(config)
        expected = torch.tensor([decoder[0].in_channels for decoder in unet.decoders])
        values = _run(lambda: list(decoder_in_channels(config)), "decoder channels")
        if not all(isinstance(v, numbers.Integral) or (isinstance(v, torch.Tensor) and not v.is_floating_point())
                   for v in values):
            return _finish_floats(values, raise_on_failure)
        got = torch.as_tensor([int(v) for v in values])
        mistakes = (SKIP_NOT_ADDED, SKIPS_AS_QUEUE)
        result = compare(
            f"decoder channels for channels={config.channels}", got, expected,
            {m: _decoder_in_channels(config, m) for m in mistakes}, _named_hints(*mistakes),
            general_hint="Decoder i receives what decoder i-1 gave (the bottleneck for i=0) plus the output of "
                         "encoder 11-i.", atol=0, raise_on_failure=raise_on_failure,
        )
        if not result.passed:
            return result
    return result


def _finish_floats(values, raise_on_failure: bool) -> CheckResult:
    from .core import _finish

    kinds = sorted({type(v).__name__ for v in values})
    return _finish(CheckResult("decoder channels", False, float("inf"), mistake="channel counts as floats",
                               hint=f"It looks like: channel counts as floats. Got {kinds}: channel counts are ints; "
                                    "use + and //, never /."), raise_on_failure)


# --- Upsample ------------------------------------------------------------------------------------------

def upsample_nearest_reference(x: torch.Tensor) -> torch.Tensor:
    """The reference answer: (B, C, H, W) -> (B, C, 2H, 2W), every pixel a 2x2 block, without F.interpolate
    (so that it also runs inside a check that blocks F.interpolate)."""
    # (B, C, H, W) -> (B, C, H, 2W) -> (B, C, 2H, 2W)
    return x.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)


register("upsample_nearest",
         "Every pixel is copied twice along the width, then every row twice along the height.",
         "Which torch function repeats each element in place (a a b b), not the whole tensor (a b a b)?")


@exercise("upsample_nearest", todo="copy every pixel into a 2x2 block (no F.interpolate): (B, C, H, W) -> (B, C, 2H, 2W)",
          reference=lambda: upsample_nearest_reference)
def check_upsample(upsample: Callable, raise_on_failure: bool = True) -> CheckResult:
    """upsample(x (B, C, H, W)) -> (B, C, 2H, 2W) by nearest neighbour, written without F.interpolate."""
    with _seeded(0):
        x = torch.randn(2, 3, 4, 5)
    mistakes = {TILED: x.repeat(1, 1, 2, 2), BILINEAR: F.interpolate(x, scale_factor=2, mode="bilinear")}
    got = _run(lambda: upsample(x.clone()), "nearest upsampling", forbidden=("interpolate",))
    named = _shape_mistakes("nearest upsampling", got, {ONE_AXIS_DOUBLED: (2, 3, 4, 10)}, raise_on_failure)
    if named is not None:
        return named
    return compare(
        "nearest upsampling", got, upsample_nearest_reference(x), mistakes, _named_hints(*mistakes),
        general_hint="Every pixel becomes a 2x2 block of copies.", raise_on_failure=raise_on_failure,
    )


def _reference_class(name: str):
    def get():
        from .. import unet
        return getattr(unet, name)
    return get


register("Upsample",
         "__init__: one layer, self.conv, a 3x3 conv that keeps the channels (padding 1 keeps the size).",
         "forward: double the pixels first (your upsample_nearest), then the conv.")


@exercise("Upsample", todo="build the conv in __init__; forward: (B, C, H, W) -> (B, C, 2H, 2W), nearest "
          "by hand, then the conv",
          reference=_reference_class("Upsample"))
def check_upsample_module(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(channels) with `conv` (3x3, padding 1); forward(x (B, C, H, W)) -> (B, C, 2H, 2W): nearest x2, then
    the conv. F.interpolate (which nn.Upsample calls too) is blocked."""
    from ..unet import Upsample

    name = "Upsample"
    with _seeded(0):
        reference = perturb_(Upsample(6), seed=5)
        x = torch.randn(2, 6, 3, 5)
    with _seeded(1):  # the learner's init draws no numbers from the learner's stream
        learner = _build(cls, name, 6)
    try:
        copy_weights(learner, reference)
    except ExerciseError as error:
        return _as_result(name, error, raise_on_failure)
    got = _run(lambda: learner(x.clone()), name, forbidden=("interpolate",))
    conv = reference.conv
    with torch.no_grad():
        doubled = upsample_nearest_reference(x)
        mistakes = {TILED: conv(x.repeat(1, 1, 2, 2)), BILINEAR: conv(F.interpolate(x, scale_factor=2, mode="bilinear")),
                    NO_UPSAMPLE_CONV: doubled, CONV_BEFORE_UPSAMPLE: upsample_nearest_reference(conv(x))}
        expected = conv(doubled)
    return compare(name, got, expected, mistakes, _named_hints(*mistakes), raise_on_failure=raise_on_failure,
                   general_hint="Expected self.conv(nearest x2 of x).")


# --- SwitchSequential ------------------------------------------------------------------------------------

register("SwitchSequential",
         "Loop over the layers (`for layer in self`); ask each its type with isinstance.",
         "Attention blocks take (x, context), residual blocks (x, time), everything else (x) alone. Return after the loop.")


@exercise("SwitchSequential", todo="forward(x, context, time): run each layer with the inputs its kind needs; "
          "return x", reference=_reference_class("SwitchSequential"))
def check_switch_sequential(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(*layers), an nn.Sequential whose forward(x, context, time) hands each layer what it needs.
    Checked on (residual block, attention block, 3x3 conv): three layers that keep the shape, so that every
    typical mistake gives a tensor of the right shape and can be named."""
    from torch import nn

    from ..unet import UNET_AttentionBlock, UNET_ResidualBlock

    name = "SwitchSequential"
    with _seeded(0):
        layers = [perturb_(UNET_ResidualBlock(16, 16, n_time=12, n_groups=4), seed=6),
                  perturb_(UNET_AttentionBlock(2, 8, d_context=10, n_groups=4), seed=7),
                  perturb_(nn.Conv2d(16, 16, kernel_size=3, padding=1), seed=8)]
        x, context, time = torch.randn(2, 16, 3, 3), torch.randn(2, 4, 10), torch.randn(2, 12)
    with _seeded(1):  # the learner's init draws no numbers from the learner's stream
        learner = _build(cls, name, *layers)
    got = _run(lambda: learner(x.clone(), context.clone(), time.clone()), name,
               hint="Attention blocks take (x, context), residual blocks (x, time), the rest (x).")

    def run(order):
        h = x
        for layer in order:
            if isinstance(layer, UNET_AttentionBlock):
                h = layer(h, context)
            elif isinstance(layer, UNET_ResidualBlock):
                h = layer(h, time)
            else:
                h = layer(h)
        return h

    with torch.no_grad():
        expected = run(layers)
        mistakes = {RETURN_IN_LOOP: run(layers[:1]), LAYER_SKIPPED: run(layers[:2]), LAYERS_REVERSED: run(layers[::-1])}
    return compare(name, got, expected, mistakes, _named_hints(*mistakes), atol=1e-4, raise_on_failure=raise_on_failure)


# --- the UNET --------------------------------------------------------------------------------------------

def _unet(unet, x: torch.Tensor, context: torch.Tensor, time: torch.Tensor, mistake: Optional[str] = None):
    """UNET.forward written out with the reference's layers, or a typical mistake."""
    skip_connections = []
    for layers in unet.encoders:
        x = layers(x, context, time)
        skip_connections.append(x)
    if mistake != NO_BOTTLENECK:
        x = unet.bottleneck(x, context, time)
    for layers in unet.decoders:
        skip = skip_connections.pop()
        # (B, C, h, w) + (B, C_skip, h, w) -> (B, C + C_skip, h, w)
        x = torch.cat((skip, x) if mistake == SKIP_FIRST else (x, skip), dim=1)
        x = layers(x, context, time)
    return x


class _SkipWatch:
    """While active, remember every encoder output and every torch.cat call, so that a UNET that
    crashes in its first concatenation can be told apart: did it take encoder 0's output (a queue)?"""

    def __init__(self, unet):
        self.unet, self.pushed, self.cats = unet, [], []

    def __enter__(self):
        self.handles = [step.register_forward_hook(lambda m, a, out: self.pushed.append(out))
                        for step in getattr(self.unet, "encoders", [])]
        self.saved = [(name, getattr(torch, name)) for name in ("cat", "concat", "concatenate") if hasattr(torch, name)]
        for name, original in self.saved:
            setattr(torch, name, self._recording(original))
        return self

    def _recording(self, original):
        def cat(tensors, *args, **kwargs):
            self.cats.append(list(tensors))
            return original(tensors, *args, **kwargs)
        return cat

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        for name, original in self.saved:
            setattr(torch, name, original)

    def first_skip(self) -> Optional[int]:
        """Index of the encoder whose output the first concatenation used, or None."""
        ids = {id(t): i for i, t in enumerate(self.pushed)}
        for tensors in self.cats:
            for t in tensors:
                if id(t) in ids:
                    return ids[id(t)]
        return None


def _reference_config():
    from ..unet import UNetConfig
    return UNetConfig.tiny(channels=(16, 32, 64), d_context=32)


register("UNET",
         "__init__: the notes' 12 encoder steps, the bottleneck and 12 decoder steps, each a SwitchSequential; "
         "the widths come from config.channels (c1, c2, c3).",
         "forward: push every encoder output onto a list; run the bottleneck; each decoder step concatenates "
         "(x, the LAST skip pushed) along the channels before its layers.")


@exercise("UNET", todo="build encoders, bottleneck, decoders from the config; forward: the encoders "
          "leave skips, the decoders take them back", reference=_reference_class("UNET"))
def check_unet(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(config) with the notes' names (encoders, bottleneck, decoders); forward(x, context, time).
    Checked on an 8x8 latent in a config with half the tiny widths (16/32/64 channels): the same
    layout, a quarter of the parameters, so the check is quick."""
    from ..unet import UNET

    name = "UNET"
    config = _reference_config()
    with _seeded(0):
        reference = perturb_(UNET(config), seed=4, scale=0.02)
        x = torch.randn(1, config.in_channels, 8, 8)
        context, time = torch.randn(1, 3, config.d_context), torch.randn(1, config.n_time)
    with _seeded(1):  # the learner's init draws no numbers from the learner's stream
        learner = _build(cls, name, config)
    try:
        copy_weights(learner, reference)
    except ExerciseError as error:
        return _as_result(name, error, raise_on_failure)
    watch = _SkipWatch(learner)
    try:
        with watch:
            got = _run(lambda: learner(x.clone(), context.clone(), time.clone()), name,
                       hint="If torch.cat failed on sizes: the decoders pop the LAST skip pushed "
                            "(skip_connections.pop()).")
    except ExerciseError as error:
        if watch.first_skip() == 0:  # decoder 0 took encoder 0's output: first in, first out
            return _mistake(name, SKIPS_AS_QUEUE, raise_on_failure, "Decoder 0 received encoder 0's output.")
        return _as_result(name, error, raise_on_failure)
    if watch.first_skip() == 0:
        return _mistake(name, SKIPS_AS_QUEUE, raise_on_failure, "Decoder 0 received encoder 0's output.")
    mistakes = (SKIP_FIRST, NO_BOTTLENECK)
    with torch.no_grad():
        expected = reference(x, context, time)
        outputs = {m: _unet(reference, x, context, time, m) for m in mistakes}
    return compare(name, got, expected, outputs, _named_hints(*mistakes), atol=1e-4, raise_on_failure=raise_on_failure)


# --- beyond the notes: a UNET forward for any latent size ---------------------------------------------

def _resize(x: torch.Tensor, size, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, size[0], size[1]) as diffusers' upsamplers do, or a typical mistake."""
    mode = {NEAREST_EXACT: "nearest-exact", BILINEAR_RESIZE: "bilinear"}.get(mistake, "nearest")
    return F.interpolate(x, size=tuple(size), mode=mode)


def _forward_any_size(unet, x, context, time, mistake: Optional[str] = None) -> torch.Tensor:
    """UNET.forward in which each Upsample goes to the size of the skip the next decoder step pops."""
    from ..unet import UNET_AttentionBlock, UNET_ResidualBlock, Upsample

    skip_connections = []
    for layers in unet.encoders:
        x = layers(x, context, time)
        skip_connections.append(x)
    x = unet.bottleneck(x, context, time)
    for layers in unet.decoders:
        # (B, C, h, w) + (B, C_skip, h, w) -> (B, C + C_skip, h, w)
        x = torch.cat((x, skip_connections.pop()), dim=1)
        for layer in layers:
            if isinstance(layer, Upsample):
                size = skip_connections[-1].shape[-2:]
                if mistake == CONV_BEFORE_UPSAMPLE:
                    x = _resize(layer.conv(x), size)
                else:
                    # (B, C, h, w) -> (B, C, h', w'): the next skip's size, then the 3x3 conv
                    x = layer.conv(_resize(x, size, mistake))
            elif isinstance(layer, UNET_AttentionBlock):
                x = layer(x, context)
            elif isinstance(layer, UNET_ResidualBlock):
                x = layer(x, time)
            else:
                x = layer(x)
    return x


def forward_any_size_reference(unet, x, context, time) -> torch.Tensor:
    """The reference answer: UNET.forward for any latent size (unet: a course UNET; x: (B, C_in, h, w) with any
    h, w; context (B, L, d_context); time (B, n_time)) -> (B, c1, h, w)."""
    return _forward_any_size(unet, x, context, time)


register("forward_any_size",
         "Start from UNET.forward. The only change is inside the decoder steps: run their layers one by one.",
         "An Upsample must not double blindly: it resizes to the spatial size of the skip that the NEXT decoder "
         "step will pop (it is on top of the stack once this step has popped its own).",
         "Resize with F.interpolate(x, size=..., mode='nearest'), then apply the Upsample's own conv.")


@exercise("forward_any_size", todo="UNET.forward for any latent size, as diffusers' UNet runs it "
          "(12x20, 9x13, ...)", reference=lambda: forward_any_size_reference)
def check_any_latent_size(fn: Callable, sizes=((12, 20), (9, 13)), raise_on_failure: bool = True) -> CheckResult:
    """fn(unet, x, context, time) -> (B, c1, h, w) for a course UNET and a latent of any size.

    Checked against diffusers' UNet2DConditionModel itself (small widths 16/32/64, the same weights
    renamed by sdcourse.convert_diffusers_unet) at latents of 12 x 20 and 9 x 13: the course's time
    embedding and output layer wrap the learner's UNet forward, diffusers runs its own.
    """
    from diffusers import UNet2DConditionModel

    from ..time_embedding import sinusoidal_embedding
    from ..unet import Diffusion
    from ..weights import convert_diffusers_unet, diffusers_config

    config = _reference_config()
    with _seeded(0):
        theirs = perturb_(UNet2DConditionModel(**diffusers_config(config)), seed=10, scale=0.02).eval()
        ours = Diffusion(config).eval()
        ours.load_state_dict(convert_diffusers_unet(theirs.state_dict()))
        inputs = [(torch.randn(1, config.in_channels, h, w), torch.randn(1, 3, config.d_context)) for h, w in sizes]
    t = torch.tensor([500])
    results = []
    for (latent, context), (h, w) in zip(inputs, sizes):
        label = f"UNET forward at a {h} x {w} latent"
        with torch.no_grad():
            time = ours.time_embedding(sinusoidal_embedding(t, dim=config.n_time_embd))
            got = _run(lambda: fn(ours.unet, latent.clone(), context.clone(), time.clone()), label,
                       hint="If torch.cat failed on sizes: resize each Upsample's input to the size of the skip on top "
                            "of the stack (skip_connections[-1].shape[-2:]).")
            if isinstance(got, torch.Tensor) and got.shape[1] == config.channels[0]:
                got = ours.final(got)  # (B, c1, h, w) -> (B, 4, h, w), as Diffusion does
            expected = theirs(latent, t, encoder_hidden_states=context).sample
            mistakes = {m: ours.final(_forward_any_size(ours.unet, latent, context, time, m))
                        for m in (NEAREST_EXACT, BILINEAR_RESIZE, CONV_BEFORE_UPSAMPLE)}
        results.append(_quiet(compare, label, got, expected, mistakes, _named_hints(*mistakes), atol=1e-4,
                               general_hint="Compare with UNET.forward: only the Upsample steps change."))
        if not results[-1].passed:
            break
    return _first_failure(results, f"UNET forward at latents {', '.join(f'{h}x{w}' for h, w in sizes)} == diffusers",
                          raise_on_failure)
