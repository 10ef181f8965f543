"""The exercise checkers of notebook 05 (decoder channels, nearest upsampling, Upsample,
SwitchSequential, UNET, and the any-latent-size forward checked against diffusers): a stub gives
[todo] and the reference, a right answer passes and is returned, each typical mistake is named and
lies at least 10x the tolerance away from the right answer, and F.interpolate is refused where the
exercise asks for the upsampling by hand. Answers are written as a learner would."""
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import sdcourse
from sdcourse import checks
from sdcourse.checks import ExerciseError


def verdict(checker, *args):
    return checker(*args, raise_on_failure=False)


def assert_names(checker, answer, mistake, tol=1e-5):
    """Named in the result and in the error, and at least 10x the tolerance away from the right answer."""
    result = verdict(checker, answer)
    assert not result.passed and result.mistake == mistake, result
    assert result.max_abs_diff >= 10 * tol, result
    with pytest.raises(ExerciseError, match=re.escape(mistake)):
        checker(answer)


def stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError()


class StubModule(nn.Sequential):
    def __init__(self, *args, **kwargs):
        super().__init__()
        raise NotImplementedError()


def todo(checker, answer, capsys):
    capsys.readouterr()  # forget what earlier checks printed
    got = checker(answer)
    assert capsys.readouterr().out.startswith(f"[todo] {checker.exercise_name}:")
    return got


# --- decoder channels ---------------------------------------------------------------------------------

NOTES = [2560, 2560, 2560, 2560, 2560, 1920, 1920, 1280, 960, 960, 640, 640]  # the notes' decoder comments


def decoder_in_channels(config):
    c1, c2, c3 = config.channels
    stack = [c1] * 4 + [c2] * 3 + [c3] * 5  # conv_in, 2 blocks, down; ... pushed in this order
    current, out = c3, []
    for width in [c3] * 6 + [c2] * 3 + [c1] * 3:
        out.append(current + stack.pop())
        current = width
    return out


def test_decoder_channels_passes_the_notes_numbers_and_a_general_answer(capsys):
    assert decoder_in_channels(sdcourse.UNetConfig()) == NOTES
    assert checks.check_decoder_channels(decoder_in_channels) is decoder_in_channels
    reference = todo(checks.check_decoder_channels, stub, capsys)
    assert reference(sdcourse.UNetConfig()) == NOTES


def test_decoder_channels_names_the_mistakes():
    def without_skip(config):
        c1, c2, c3 = config.channels
        return [c3] * 7 + [c2] * 3 + [c1] * 2

    def as_queue(config):
        c1, c2, c3 = config.channels
        pushed = [c1] * 4 + [c2] * 3 + [c3] * 5
        return [cur + skip for cur, skip in zip([c3] * 7 + [c2] * 3 + [c1] * 2, pushed)]

    def floats(config):
        return [c / 1 for c in decoder_in_channels(config)]

    assert_names(checks.check_decoder_channels, without_skip, checks.SKIP_NOT_ADDED, tol=0.1)
    assert_names(checks.check_decoder_channels, as_queue, checks.SKIPS_AS_QUEUE, tol=0.1)
    assert_names(checks.check_decoder_channels, floats, "channel counts as floats")


# --- nearest upsampling, Upsample -------------------------------------------------------------------------

def nearest(x):
    return x.repeat_interleave(2, -1).repeat_interleave(2, -2)


def test_upsample_passes_and_names_the_mistakes(capsys):
    assert checks.check_upsample(nearest) is nearest
    reference = todo(checks.check_upsample, stub, capsys)
    x = torch.randn(1, 2, 3, 4)
    assert torch.equal(reference(x), nearest(x))
    assert_names(checks.check_upsample, lambda x: x.repeat(1, 1, 2, 2), checks.TILED)
    assert_names(checks.check_upsample, lambda x: x.repeat_interleave(2, dim=-1), checks.ONE_AXIS_DOUBLED)


def test_upsample_refuses_interpolate_and_nn_upsample():
    with pytest.raises(ExerciseError, match="F.interpolate"):
        checks.check_upsample(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"))
    with pytest.raises(ExerciseError, match="F.interpolate"):
        checks.check_upsample(nn.Upsample(scale_factor=2))


def upsample_class(bug=None):
    class LearnerUpsample(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

        def forward(self, x):
            if bug == "conv-first":
                return nearest(self.conv(x))
            if bug == "interpolate":
                x = F.interpolate(x, scale_factor=2.0)
            elif bug == "nn.Upsample":
                x = nn.Upsample(scale_factor=2)(x)
            else:
                x = x.repeat(1, 1, 2, 2) if bug == "tiled" else nearest(x)
            return x if bug == "no-conv" else self.conv(x)

    return LearnerUpsample


def test_upsample_module_passes_and_its_stub_gives_the_reference(capsys):
    cls = upsample_class()
    assert checks.check_upsample_module(cls) is cls
    assert todo(checks.check_upsample_module, StubModule, capsys) is sdcourse.Upsample


@pytest.mark.parametrize("bug, mistake", [
    ("tiled", checks.TILED), ("no-conv", checks.NO_UPSAMPLE_CONV), ("conv-first", checks.CONV_BEFORE_UPSAMPLE),
])
def test_upsample_module_names_the_mistake(bug, mistake):
    assert_names(checks.check_upsample_module, upsample_class(bug), mistake)


@pytest.mark.parametrize("bug", ["interpolate", "nn.Upsample"])
def test_upsample_module_refuses_interpolate(bug):
    with pytest.raises(ExerciseError, match="F.interpolate"):
        checks.check_upsample_module(upsample_class(bug))


# --- SwitchSequential ----------------------------------------------------------------------------------------

def switch_class(bug=None):
    class LearnerSwitch(nn.Sequential):
        def forward(self, x, context, time):
            layers = list(self)[::-1] if bug == "reversed" else list(self)
            for layer in layers:
                if isinstance(layer, sdcourse.UNET_AttentionBlock):
                    x = layer(x, context)
                elif isinstance(layer, sdcourse.UNET_ResidualBlock):
                    x = layer(x, time)
                elif bug != "no-else":
                    x = layer(x)
                if bug == "return-in-loop":
                    return x
            return x

    return LearnerSwitch


def test_switch_sequential_passes_and_its_stub_gives_the_reference(capsys):
    cls = switch_class()
    assert checks.check_switch_sequential(cls) is cls
    capsys.readouterr()
    assert todo(checks.check_switch_sequential, StubModule, capsys) is sdcourse.SwitchSequential


@pytest.mark.parametrize("bug, mistake", [
    ("return-in-loop", checks.RETURN_IN_LOOP), ("no-else", checks.LAYER_SKIPPED), ("reversed", checks.LAYERS_REVERSED),
])
def test_switch_sequential_names_the_mistake(bug, mistake):
    assert_names(checks.check_switch_sequential, switch_class(bug), mistake, tol=1e-4)


def test_switch_sequential_explains_swapped_arguments():
    class Swapped(nn.Sequential):
        def forward(self, x, context, time):
            for layer in self:
                if isinstance(layer, sdcourse.UNET_AttentionBlock):
                    x = layer(x, time)  # <- the time embedding given to the attention block
                elif isinstance(layer, sdcourse.UNET_ResidualBlock):
                    x = layer(x, context)
                else:
                    x = layer(x)
            return x

    with pytest.raises(ExerciseError, match="raised"):
        checks.check_switch_sequential(Swapped)


# --- the UNET ------------------------------------------------------------------------------------------

def unet_class(bug=None):
    class LearnerUNET(sdcourse.UNET):
        def forward(self, x, context, time):
            skips = []
            for layers in self.encoders:
                x = layers(x, context, time)
                skips.append(x)
            if bug != "no-bottleneck":
                x = self.bottleneck(x, context, time)
            for i, layers in enumerate(self.decoders):
                skip = {"queue": lambda: skips.pop(0), "index": lambda: skips[i]}.get(bug, skips.pop)()
                x = layers(torch.cat([skip, x] if bug == "skip-first" else [x, skip], dim=1), context, time)
            return x

    return LearnerUNET


def test_unet_passes_and_its_stub_gives_the_reference(capsys):
    cls = unet_class()
    assert checks.check_unet(cls) is cls
    capsys.readouterr()
    assert todo(checks.check_unet, StubModule, capsys) is sdcourse.UNET


@pytest.mark.parametrize("bug, mistake", [
    ("skip-first", checks.SKIP_FIRST),
    ("no-bottleneck", checks.NO_BOTTLENECK),
    ("queue", checks.SKIPS_AS_QUEUE),
    ("index", checks.SKIPS_AS_QUEUE),
])
def test_unet_names_the_mistake(bug, mistake):
    assert_names(checks.check_unet, unet_class(bug), mistake, tol=1e-4)


def test_unet_check_leaves_torch_cat_alone():
    verdict(checks.check_unet, unet_class("queue"))
    assert torch.cat.__name__ == "cat" and torch.cat([torch.ones(1), torch.zeros(1)]).tolist() == [1.0, 0.0]


# --- beyond the notes: any latent size, against diffusers -------------------------------------------------

def any_size(mode="nearest", conv_first=False):
    def forward_any_size(unet, x, context, time):
        skips = []
        for layers in unet.encoders:
            x = layers(x, context, time)
            skips.append(x)
        x = unet.bottleneck(x, context, time)
        for layers in unet.decoders:
            x = torch.cat((x, skips.pop()), dim=1)
            for layer in layers:
                if isinstance(layer, sdcourse.Upsample):
                    size = skips[-1].shape[-2:]
                    if conv_first:
                        x = F.interpolate(layer.conv(x), size=size, mode=mode)
                    else:
                        x = layer.conv(F.interpolate(x, size=size, mode=mode))
                elif isinstance(layer, sdcourse.UNET_AttentionBlock):
                    x = layer(x, context)
                elif isinstance(layer, sdcourse.UNET_ResidualBlock):
                    x = layer(x, time)
                else:
                    x = layer(x)
        return x
    return forward_any_size


def notes_forward(unet, x, context, time):
    return sdcourse.UNET.forward(unet, x, context, time)  # doubles blindly: fails unless sides are multiples of 8


def test_any_latent_size_passes_against_diffusers_and_its_stub_gives_the_reference(capsys):
    fn = any_size()
    assert checks.check_any_latent_size(fn) is fn
    assert "12x20, 9x13 == diffusers" in capsys.readouterr().out
    reference = todo(checks.check_any_latent_size, stub, capsys)
    assert verdict(checks.check_any_latent_size, reference).passed


@pytest.mark.parametrize("answer, mistake", [
    (any_size(mode="nearest-exact"), checks.NEAREST_EXACT),
    (any_size(mode="bilinear"), checks.BILINEAR_RESIZE),
    (any_size(conv_first=True), checks.CONV_BEFORE_UPSAMPLE),
], ids=["nearest-exact", "bilinear", "conv-first"])
def test_any_latent_size_names_the_mistake(answer, mistake):
    assert_names(checks.check_any_latent_size, answer, mistake, tol=1e-4)


def test_the_notes_forward_fails_the_any_size_check():
    with pytest.raises(ExerciseError, match="12 x 20 latent.*Sizes of tensors must match"):
        checks.check_any_latent_size(notes_forward)
