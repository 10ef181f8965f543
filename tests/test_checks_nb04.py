"""The exercise checkers of notebook 04 (image <-> sequence, GeGLU, UNET_AttentionBlock): a stub
gives [todo] and the reference, a right answer passes and is returned, each typical mistake is named
and lies at least 10x the tolerance away from the right answer, and the block's attention weights
are checked as well as its output.

Answers are written here as a learner would, independently of sdcourse (flatten/permute, GELU from
its erf or tanh formula), so a checker that computed a mistake's output wrongly would not recognise it.
"""
import math
import re

import pytest
import torch
from torch import nn

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


def assert_todo_then_reference(checker, answer, capsys):
    got = checker(answer)
    assert capsys.readouterr().out.startswith(f"[todo] {checker.exercise_name}:")
    return got


# --- image <-> sequence, GeGLU --------------------------------------------------------------------

def to_sequence_right(x):
    return x.flatten(2).permute(0, 2, 1)


def to_image_right(seq, height, width):
    return seq.permute(0, 2, 1).unflatten(2, (height, width))


def test_image_to_sequence_passes_and_returns_a_correct_answer(capsys):
    assert checks.check_image_to_sequence(to_sequence_right) is to_sequence_right
    assert checks.check_sequence_to_image(to_image_right) is to_image_right
    assert verdict(checks.check_image_to_sequence, to_sequence_right, to_image_right).passed
    assert capsys.readouterr().out.count("[ok]") == 4


def test_image_sequence_stubs_give_working_references(capsys):
    to_sequence = assert_todo_then_reference(checks.check_image_to_sequence, stub, capsys)
    to_image = assert_todo_then_reference(checks.check_sequence_to_image, stub, capsys)
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(to_sequence(x), to_sequence_right(x))
    assert torch.equal(to_image(to_sequence(x), 4, 5), x)


def test_image_to_sequence_names_reshape_without_transpose():
    def to_sequence(x):
        b, c, h, w = x.shape
        return x.reshape(b, h * w, c)

    assert_names(checks.check_image_to_sequence, to_sequence, checks.RESHAPE_WITHOUT_TRANSPOSE)


def test_image_to_sequence_names_column_major_order():
    assert_names(checks.check_image_to_sequence, lambda x: x.permute(0, 3, 2, 1).flatten(1, 2), checks.COLUMN_MAJOR)


def test_image_to_sequence_names_the_missing_transpose():
    assert_names(checks.check_image_to_sequence, lambda x: x.flatten(2), checks.NO_SEQUENCE_TRANSPOSE)


def test_sequence_to_image_names_height_and_width_swapped():
    assert_names(checks.check_sequence_to_image, lambda seq, h, w: seq.transpose(1, 2).unflatten(2, (w, h)),
                 checks.HW_SWAPPED)


def test_sequence_to_image_names_the_mistakes():
    def to_image(seq, height, width):
        return seq.reshape(seq.shape[0], seq.shape[2], height, width)

    def column_major(seq, height, width):
        return seq.permute(0, 2, 1).unflatten(2, (width, height)).transpose(2, 3)

    assert_names(checks.check_sequence_to_image, to_image, checks.RESHAPE_WITHOUT_TRANSPOSE)
    assert_names(checks.check_sequence_to_image, column_major, checks.COLUMN_MAJOR)


def gelu_erf(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def halves(h):
    return h[..., : h.shape[-1] // 2], h[..., h.shape[-1] // 2:]


def test_geglu_passes_and_its_stub_gives_the_reference(capsys):
    def geglu(h):
        value, gate = halves(h)
        return value * gelu_erf(gate)

    assert checks.check_geglu(geglu) is geglu
    assert capsys.readouterr().out.startswith("[ok] GeGLU")
    reference = assert_todo_then_reference(checks.check_geglu, stub, capsys)
    h = torch.randn(3, 8)
    assert torch.allclose(reference(h), geglu(h), atol=1e-6)


@pytest.mark.parametrize("answer, mistake", [
    (lambda h: gelu_erf(halves(h)[0]) * halves(h)[1], checks.GEGLU_SWAPPED),
    (lambda h: halves(h)[0] * gelu_tanh(halves(h)[1]), checks.TANH_GELU),
    (lambda h: halves(h)[0] * halves(h)[1].clamp(min=0), checks.RELU_GATE),
    (lambda h: halves(h)[0] * halves(h)[1] * torch.sigmoid(halves(h)[1]), checks.SILU_GATE),
], ids=["swapped", "tanh", "relu", "silu"])
def test_geglu_names_the_mistake(answer, mistake):
    assert_names(checks.check_geglu, answer, mistake)


# --- the attention block ----------------------------------------------------------------------------

def attention_block_class(bug=None):
    """The block written as a learner would (its own layers with the notes' names), with a bug."""

    class LearnerBlock(nn.Module):
        def __init__(self, n_head, n_embd, d_context=768):
            super().__init__()
            channels = n_head * n_embd
            self.groupnorm = nn.GroupNorm(32, channels, eps=1e-5 if bug == "eps" else 1e-6)
            self.conv_input = nn.Conv2d(channels, channels, kernel_size=1)
            self.layernorm_1 = nn.LayerNorm(channels)
            self.attention_1 = sdcourse.SelfAttention(n_head, channels)
            self.layernorm_2 = nn.LayerNorm(channels)
            self.attention_2 = sdcourse.CrossAttention(n_head, channels, d_context,
                                                       in_proj_bias=bug == "bias")
            self.layernorm_3 = nn.LayerNorm(channels)
            self.linear_geglu_1 = nn.Linear(channels, 8 * channels)
            self.linear_geglu_2 = nn.Linear(4 * channels, channels)
            self.conv_output = nn.Conv2d(channels, channels, kernel_size=1)

        def forward(self, x, context):
            b, c, h, w = x.shape
            y = self.conv_input(self.groupnorm(x))
            y = y.reshape(b, h * w, c) if bug == "reshape" else y.flatten(2).permute(0, 2, 1)

            def self_attention(y):
                return y + self.attention_1(self.layernorm_1(y))

            def cross_attention(y):
                out = self.attention_2(self.layernorm_2(y), context)
                return out if bug == "no-cross-residual" else y + out

            for step in (cross_attention, self_attention) if bug == "cross-first" else (self_attention, cross_attention):
                y = step(y)
            value, gate = halves(self.linear_geglu_1(self.layernorm_3(y)))
            if bug == "swapped":
                value, gate = gate, value
            y = y + self.linear_geglu_2(value * (gelu_tanh(gate) if bug == "tanh" else gelu_erf(gate)))
            y = y.reshape(b, c, h, w) if bug == "reshape" else y.permute(0, 2, 1).unflatten(2, (h, w))
            y = self.conv_output(y)
            return y if bug == "no-long-residual" else y + x

    return LearnerBlock


def test_attention_block_passes_and_returns_a_correct_class(capsys):
    cls = attention_block_class()
    assert checks.check_attention_block(cls) is cls
    assert "[ok] UNET_AttentionBlock (output and attention weights)" in capsys.readouterr().out


def test_attention_block_stub_gives_the_reference(capsys):
    class Stub(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            raise NotImplementedError()

    assert assert_todo_then_reference(checks.check_attention_block, Stub, capsys) is sdcourse.UNET_AttentionBlock


@pytest.mark.parametrize("bug, mistake", [
    ("no-long-residual", checks.NO_LONG_RESIDUAL),
    ("no-cross-residual", checks.NO_CROSS_RESIDUAL),
    ("reshape", checks.RESHAPE_WITHOUT_TRANSPOSE),
    ("swapped", checks.GEGLU_SWAPPED),
    ("tanh", checks.TANH_GELU),
    ("eps", checks.GROUPNORM_EPS),
    ("cross-first", checks.CROSS_BEFORE_SELF),
])
def test_attention_block_names_the_mistake(bug, mistake):
    assert_names(checks.check_attention_block, attention_block_class(bug), mistake, tol=checks.nb04_attention_block.ATOL)


def test_attention_block_names_a_qkv_bias():
    assert_names(checks.check_attention_block, attention_block_class("bias"), checks.QKV_BIAS, tol=checks.nb04_attention_block.ATOL)


def test_attention_block_checks_the_attention_weights():
    """An output that is right with attention layers that never show their weights (here: layers that
    compute the same numbers but drop the observer) is refused, and named."""

    class Hidden(sdcourse.SelfAttention):
        def forward(self, x):
            self.observer = None  # the weights are never shown
            return super().forward(x)

    class Block(attention_block_class()):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.attention_1 = Hidden(self.attention_1.n_heads, self.attention_1.d_embed)

    assert_names(checks.check_attention_block, Block, checks.WEIGHTS_NOT_OBSERVED, tol=checks.nb04_attention_block.ATOL)


def test_a_right_block_is_far_inside_the_tolerance():
    """The tolerance is not at the edge: an independently written right answer differs by < ATOL / 5."""
    result = verdict(checks.check_attention_block, attention_block_class())
    assert result.passed and result.max_abs_diff < checks.nb04_attention_block.ATOL / 5, result
