"""The exercise checkers of notebooks 03-05 pass a correct answer and name typical mistakes.

Every answer below, right or wrong, is written here independently of sdcourse (other PyTorch
calls: unflatten/permute, F.scaled_dot_product_attention with `scale=`, GELU from its erf or
tanh formula), so a checker that computed a mistake's output wrongly would not recognise it.
"""
import math
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import sdcourse
from sdcourse import checks
from sdcourse.checks import ExerciseError


def verdict(checker, *args):
    """Run a checker without raising; return its CheckResult."""
    return checker(*args, raise_on_failure=False)


def assert_names(checker, answer, mistake):
    """The checker recognises `mistake` both in its result and in the error a notebook would see."""
    result = verdict(checker, answer)
    assert not result.passed and result.mistake == mistake, result
    with pytest.raises(ExerciseError, match=re.escape(mistake)):
        checker(answer)


# --- heads ---------------------------------------------------------------------------------------

def split_right(x, n_heads):
    return x.unflatten(-1, (n_heads, -1)).permute(0, 2, 1, 3)


def merge_right(x):
    return x.permute(0, 2, 1, 3).flatten(2)


def test_split_heads_passes_a_correct_answer(capsys):
    assert verdict(checks.check_split_heads, split_right, merge_right).passed
    assert capsys.readouterr().out.count("[ok]") == 2


def test_split_heads_names_view_without_transpose():
    def split(x, n_heads):
        b, length, d = x.shape
        return x.view(b, n_heads, length, d // n_heads)

    assert_names(checks.check_split_heads, split, checks.HEADS_BY_VIEW)


def test_split_heads_names_interleaved_heads():
    def split(x, n_heads):
        return x.unflatten(-1, (-1, n_heads)).permute(0, 3, 1, 2)

    assert_names(checks.check_split_heads, split, checks.HEADS_INTERLEAVED)


def test_merge_heads_names_the_missing_transpose():
    def merge(x):
        b, h, length, dh = x.shape
        return x.reshape(b, length, h * dh)

    result = verdict(lambda s, m, **kw: checks.check_split_heads(s, m, **kw), split_right, merge)
    assert result.mistake == checks.HEADS_MERGED_BY_VIEW


# --- scaled dot-product attention ------------------------------------------------------------------

def test_scaled_dot_product_passes_torch_sdpa():
    assert verdict(checks.check_scaled_dot_product, F.scaled_dot_product_attention).passed


@pytest.mark.parametrize("answer, mistake", [
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0), checks.MISSING_SCALE),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0 / q.shape[-1]), checks.SCALE_BY_D_HEAD),
    (lambda q, k, v: torch.softmax(q @ k.mT / math.sqrt(q.shape[-1]), dim=2) @ v, checks.SOFTMAX_OVER_QUERIES),
], ids=["no-scale", "by-d_head", "softmax-axis"])
def test_scaled_dot_product_names_the_mistake(answer, mistake):
    assert_names(checks.check_scaled_dot_product, answer, mistake)


def test_scaled_dot_product_accepts_output_and_weights():
    def attention(q, k, v):
        weights = torch.softmax(q @ k.mT / math.sqrt(q.shape[-1]), dim=-1)
        return weights @ v, weights

    assert verdict(checks.check_scaled_dot_product, attention).passed


# --- SelfAttention / CrossAttention -----------------------------------------------------------------

def heads(q, k, v, n_heads, bug):
    """Multi-head attention on projected (B, L, C) tensors, with an optional bug."""
    b, lq, c = q.shape
    if bug == "view":
        q, k, v = (t.reshape(b, n_heads, t.shape[1], c // n_heads) for t in (q, k, v))
    else:
        q, k, v = (split_right(t, n_heads) for t in (q, k, v))
    if bug == "no-scale":
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)
    elif bug == "softmax-axis":
        out = torch.softmax(q @ k.mT / math.sqrt(c // n_heads), dim=2) @ v
    else:
        out = F.scaled_dot_product_attention(q, k, v)
    return out.reshape(b, lq, c) if bug == "view" else merge_right(out)


def self_attention_class(bug=None, bias=False):
    class LearnerSelfAttention(nn.Module):
        def __init__(self, n_heads, d_embed):
            super().__init__()
            self.n_heads = n_heads
            self.in_proj = nn.Linear(d_embed, 3 * d_embed, bias=bias)
            self.out_proj = nn.Linear(d_embed, d_embed)

        def forward(self, x):
            q, k, v = self.in_proj(x).split(x.shape[-1], dim=-1)
            return self.out_proj(heads(q, k, v, self.n_heads, bug))

    return LearnerSelfAttention


def cross_attention_class(bug=None):
    class LearnerCrossAttention(nn.Module):
        def __init__(self, n_heads, d_embed, d_cross):
            super().__init__()
            self.n_heads = n_heads
            self.q_proj = nn.Linear(d_embed, d_embed, bias=False)
            self.k_proj = nn.Linear(d_cross, d_embed, bias=False)
            self.v_proj = nn.Linear(d_cross, d_embed, bias=False)
            self.out_proj = nn.Linear(d_embed, d_embed)

        def forward(self, x, context):
            k, v = self.k_proj(context), self.v_proj(context)
            if bug == "kv-swapped":
                k, v = v, k
            return self.out_proj(heads(self.q_proj(x), k, v, self.n_heads, bug))

    return LearnerCrossAttention


def test_self_attention_passes_a_correct_class():
    assert verdict(checks.check_self_attention, self_attention_class()).passed


@pytest.mark.parametrize("bug, mistake", [
    ("no-scale", checks.MISSING_SCALE),
    ("softmax-axis", checks.SOFTMAX_OVER_QUERIES),
    ("view", checks.HEADS_BY_VIEW),
])
def test_self_attention_names_the_mistake(bug, mistake):
    assert_names(checks.check_self_attention, self_attention_class(bug), mistake)


def test_self_attention_explains_a_qkv_bias():
    with pytest.raises(ExerciseError, match="bias=False"):
        checks.check_self_attention(self_attention_class(bias=True))


def test_cross_attention_passes_a_correct_class():
    assert verdict(checks.check_cross_attention, cross_attention_class()).passed


@pytest.mark.parametrize("bug, mistake", [
    ("no-scale", checks.MISSING_SCALE),
    ("softmax-axis", checks.SOFTMAX_OVER_QUERIES),
    ("kv-swapped", checks.KEYS_VALUES_SWAPPED),
])
def test_cross_attention_names_the_mistake(bug, mistake):
    assert_names(checks.check_cross_attention, cross_attention_class(bug), mistake)


def test_a_crashing_answer_becomes_an_exercise_error():
    def attention(q, k, v):
        return q @ k  # (.., Lq, Dh) @ (.., Lk, Dh): shapes do not fit

    with pytest.raises(ExerciseError, match="RuntimeError"):
        checks.check_scaled_dot_product(attention)


# --- image <-> sequence, GeGLU --------------------------------------------------------------------

def to_sequence_right(x):
    return x.flatten(2).permute(0, 2, 1)


def to_image_right(seq, height, width):
    return seq.permute(0, 2, 1).unflatten(2, (height, width))


def test_image_to_sequence_passes_a_correct_answer():
    assert verdict(checks.check_image_to_sequence, to_sequence_right, to_image_right).passed


def test_image_to_sequence_names_reshape_without_transpose():
    def to_sequence(x):
        b, c, h, w = x.shape
        return x.reshape(b, h * w, c)

    assert_names(checks.check_image_to_sequence, to_sequence, checks.RESHAPE_WITHOUT_TRANSPOSE)


def test_image_to_sequence_names_column_major_order():
    def to_sequence(x):
        return x.permute(0, 3, 2, 1).flatten(1, 2)  # (B, W, H, C): columns first

    assert_names(checks.check_image_to_sequence, to_sequence, checks.COLUMN_MAJOR)


def test_sequence_to_image_names_reshape_without_transpose():
    def to_image(seq, height, width):
        return seq.reshape(seq.shape[0], seq.shape[2], height, width)

    result = verdict(lambda s, i, **kw: checks.check_image_to_sequence(s, i, **kw), to_sequence_right, to_image)
    assert result.mistake == checks.RESHAPE_WITHOUT_TRANSPOSE


def gelu_erf(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def test_geglu_passes_a_correct_answer():
    assert verdict(checks.check_geglu, lambda h: h[..., : h.shape[-1] // 2] * gelu_erf(h[..., h.shape[-1] // 2:])).passed


@pytest.mark.parametrize("answer, mistake", [
    (lambda h: gelu_erf(h[..., : h.shape[-1] // 2]) * h[..., h.shape[-1] // 2:], checks.GEGLU_SWAPPED),
    (lambda h: h[..., : h.shape[-1] // 2] * gelu_tanh(h[..., h.shape[-1] // 2:]), checks.TANH_GELU),
    (lambda h: h[..., : h.shape[-1] // 2] * h[..., h.shape[-1] // 2:].clamp(min=0), checks.RELU_GATE),
], ids=["swapped", "tanh", "relu"])
def test_geglu_names_the_mistake(answer, mistake):
    assert_names(checks.check_geglu, answer, mistake)


# --- the attention block ----------------------------------------------------------------------------

def attention_block_class(bug=None):
    """The block written independently (on sdcourse's layer layout, so the weights load), with a bug."""

    class LearnerBlock(sdcourse.UNET_AttentionBlock):
        def __init__(self, n_head, n_embd, d_context=768):
            super().__init__(n_head, n_embd, d_context)
            if bug == "eps":
                self.groupnorm = nn.GroupNorm(32, self.channels)  # eps 1e-5

        def forward(self, x, context):
            b, c, h, w = x.shape
            y = self.conv_input(self.groupnorm(x))
            y = y.reshape(b, h * w, c) if bug == "reshape" else y.flatten(2).permute(0, 2, 1)
            y = y + self.attention_1(self.layernorm_1(y))
            if bug == "no-cross-residual":
                y = self.attention_2(self.layernorm_2(y), context)
            else:
                y = y + self.attention_2(self.layernorm_2(y), context)
            hidden = self.linear_geglu_1(self.layernorm_3(y))
            value, gate = hidden[..., : 4 * c], hidden[..., 4 * c:]
            if bug == "swapped":
                value, gate = gate, value
            y = y + self.linear_geglu_2(value * gelu_erf(gate))
            y = y.reshape(b, c, h, w) if bug == "reshape" else y.permute(0, 2, 1).unflatten(2, (h, w))
            y = self.conv_output(y)
            return y if bug == "no-long-residual" else y + x

    return LearnerBlock


def test_attention_block_passes_a_correct_class():
    assert verdict(checks.check_attention_block, attention_block_class()).passed


@pytest.mark.parametrize("bug, mistake", [
    ("no-long-residual", checks.NO_LONG_RESIDUAL),
    ("no-cross-residual", checks.NO_CROSS_RESIDUAL),
    ("reshape", checks.RESHAPE_WITHOUT_TRANSPOSE),
    ("swapped", checks.GEGLU_SWAPPED),
    ("eps", checks.GROUPNORM_EPS),
])
def test_attention_block_names_the_mistake(bug, mistake):
    assert_names(checks.check_attention_block, attention_block_class(bug), mistake)


# --- the UNet ------------------------------------------------------------------------------------------

def test_decoder_channels_passes_the_notes_numbers_and_a_general_answer():
    # the notes' comments: decoder inputs 2560 x5, 1920 x2, 1280, 960 x2, 640 x2
    notes = [2560, 2560, 2560, 2560, 2560, 1920, 1920, 1280, 960, 960, 640, 640]

    def decoder_in_channels(config):
        c1, c2, c3 = config.channels
        stack = [c1] * 4 + [c2] * 3 + [c3] * 5  # conv_in, 2 blocks, down; ... pushed in this order
        current, out = c3, []
        for width in [c3] * 6 + [c2] * 3 + [c1] * 3:
            out.append(current + stack.pop())
            current = width
        return out

    assert decoder_in_channels(sdcourse.UNetConfig()) == notes
    assert verdict(checks.check_decoder_channels, decoder_in_channels).passed


def test_decoder_channels_names_the_mistakes():
    def without_skip(config):
        c1, c2, c3 = config.channels
        return [c3] * 7 + [c2] * 3 + [c1] * 2

    def as_queue(config):
        c1, c2, c3 = config.channels
        pushed = [c1] * 4 + [c2] * 3 + [c3] * 5
        return [cur + skip for cur, skip in zip([c3] * 7 + [c2] * 3 + [c1] * 2, pushed)]

    assert_names(checks.check_decoder_channels, without_skip, checks.SKIP_NOT_ADDED)
    assert_names(checks.check_decoder_channels, as_queue, checks.SKIPS_AS_QUEUE)


def test_upsample_passes_and_names_the_mistakes():
    assert verdict(checks.check_upsample, lambda x: x.repeat_interleave(2, -1).repeat_interleave(2, -2)).passed
    assert_names(checks.check_upsample, lambda x: x.repeat(1, 1, 2, 2), checks.TILED)
    assert_names(checks.check_upsample, lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), checks.BILINEAR)


def unet_class(bug=None):
    class LearnerUNET(sdcourse.UNET):
        def forward(self, x, context, time):
            skips = []
            for layers in self.encoders:
                x = layers(x, context, time)
                skips.append(x)
            if bug != "no-bottleneck":
                x = self.bottleneck(x, context, time)
            for layers in self.decoders:
                skip = skips.pop(0) if bug == "queue" else skips.pop()
                x = layers(torch.cat([skip, x] if bug == "skip-first" else [x, skip], dim=1), context, time)
            return x

    return LearnerUNET


def test_unet_passes_a_correct_class():
    assert verdict(checks.check_unet, unet_class()).passed


@pytest.mark.parametrize("bug, mistake", [
    ("skip-first", checks.SKIP_FIRST),
    ("no-bottleneck", checks.NO_BOTTLENECK),
])
def test_unet_names_the_mistake(bug, mistake):
    assert_names(checks.check_unet, unet_class(bug), mistake)


def test_unet_explains_skips_popped_from_the_front():
    with pytest.raises(ExerciseError, match=r"pop\(\)"):
        checks.check_unet(unet_class("queue"))


def test_checkers_leave_the_learners_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    checks.check_geglu(lambda h: h[..., :8] * F.gelu(h[..., 8:]))
    assert torch.equal(torch.rand(3), expected)
