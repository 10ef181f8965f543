"""Checkers of notebook 04: the image as a sequence, GeGLU, UNET_AttentionBlock."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .advice import *  # noqa: F401,F403 - the mistake names
from .advice import _as_result, _first_failure, _mistake, _named_hints, _quiet, _shape_mistakes
from .core import CheckResult, ExerciseError, _build, _run, _seeded, compare, exercise, perturb_
from .hints import register
from .nb03_attention import _bias_mistake, _load_reference_weights, _observed


# --- the image as a sequence, GeGLU, the attention block ---------------------------------------

def _to_sequence(x: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C), or a typical mistake."""
    b, c, h, w = x.shape
    if mistake == RESHAPE_WITHOUT_TRANSPOSE:
        return x.reshape(b, h * w, c)
    if mistake == COLUMN_MAJOR:
        # (B, C, H, W) -> (B, C, W, H) -> (B, C, W*H) -> (B, W*H, C)
        return x.transpose(2, 3).reshape(b, c, w * h).transpose(1, 2)
    # (B, C, H, W) -> (B, C, H*W) -> (B, H*W, C)
    return x.reshape(b, c, h * w).transpose(1, 2)


def _to_image(x: torch.Tensor, h: int, w: int, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W), or a typical mistake."""
    b, _, c = x.shape
    if mistake == RESHAPE_WITHOUT_TRANSPOSE:
        return x.reshape(b, c, h, w)
    if mistake == COLUMN_MAJOR:
        # (B, W*H, C) -> (B, C, W*H) -> (B, C, W, H) -> (B, C, H, W)
        return x.transpose(1, 2).reshape(b, c, w, h).transpose(2, 3)
    # (B, H*W, C) -> (B, C, H*W) -> (B, C, H, W)
    return x.transpose(1, 2).reshape(b, c, h, w)


def image_to_sequence_reference(x: torch.Tensor) -> torch.Tensor:
    """The reference answer: (B, C, H, W) -> (B, H*W, C)."""
    return _to_sequence(x)


def sequence_to_image_reference(seq: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The reference answer: (B, H*W, C) -> (B, C, H, W)."""
    return _to_image(seq, height, width)


register("image_to_sequence",
         "Two steps: join H and W into one dimension (they are adjacent in memory, so a view works), then swap the "
         "channel and pixel dimensions.",
         "Test on the small integer tensor of section 2: token 4 must be [11, 111].")
register("sequence_to_image",
         "The same two steps in reverse: swap back to (B, C, H*W), then split H*W into (H, W).")


@exercise("image_to_sequence", todo="x (B, C, H, W) -> (B, H*W, C): one token per pixel, row after row",
          reference=lambda: image_to_sequence_reference)
def check_image_to_sequence(to_sequence: Callable, to_image: Optional[Callable] = None, raise_on_failure: bool = True):
    """to_sequence(x (B, C, H, W)) -> (B, H*W, C); to_image(seq (B, H*W, C), height, width) -> (B, C, H, W)."""
    with _seeded(0):
        x = torch.randn(2, 3, 4, 5)  # C, H, W all different, so a mix-up cannot hide
    mistakes = (RESHAPE_WITHOUT_TRANSPOSE, COLUMN_MAJOR)
    sequence = _to_sequence(x)
    got = _run(lambda: to_sequence(x.clone()), "image -> sequence")
    named = _shape_mistakes("image -> sequence", got, {NO_SEQUENCE_TRANSPOSE: (2, 3, 20)}, raise_on_failure)
    if named is not None:
        return named
    result = compare(
        "image -> sequence", got, sequence, {m: _to_sequence(x, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected x.view(B, C, H * W).transpose(1, 2).", raise_on_failure=raise_on_failure,
    )
    if to_image is None or not result.passed:
        return result
    return _check_to_image(to_image, raise_on_failure)


@exercise("sequence_to_image", todo="seq (B, H*W, C) -> (B, C, H, W): the inverse of image_to_sequence",
          reference=lambda: sequence_to_image_reference)
def check_sequence_to_image(to_image: Callable, raise_on_failure: bool = True) -> CheckResult:
    """to_image(seq (B, H*W, C), height, width) -> (B, C, H, W), the inverse of image_to_sequence."""
    return _check_to_image(to_image, raise_on_failure)


def _check_to_image(to_image: Callable, raise_on_failure: bool) -> CheckResult:
    with _seeded(0):
        x = torch.randn(2, 3, 4, 5)
    mistakes = (RESHAPE_WITHOUT_TRANSPOSE, COLUMN_MAJOR)
    sequence = _to_sequence(x)
    got = _run(lambda: to_image(sequence.clone(), 4, 5), "sequence -> image")
    named = _shape_mistakes("sequence -> image", got, {HW_SWAPPED: (2, 3, 5, 4)}, raise_on_failure)
    if named is not None:
        return named
    return compare(
        "sequence -> image", got, x, {m: _to_image(sequence, 4, 5, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected seq.transpose(1, 2).reshape(B, C, H, W).", raise_on_failure=raise_on_failure,
    )


def _geglu(h: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """(..., 2D) -> (..., D): value * GELU(gate), value the first half; or a typical mistake."""
    from torch.nn import functional as F

    # (..., 2D) -> 2 x (..., D)
    value, gate = h.chunk(2, dim=-1)
    if mistake == GEGLU_SWAPPED:
        value, gate = gate, value
    activation = {
        TANH_GELU: lambda g: F.gelu(g, approximate="tanh"), RELU_GATE: F.relu, SILU_GATE: F.silu,
    }.get(mistake, F.gelu)
    return value * activation(gate)


def geglu_reference(h: torch.Tensor) -> torch.Tensor:
    """The reference answer: (..., 2D) -> (..., D), value * GELU(gate)."""
    return _geglu(h)


register("geglu",
         "linear_geglu_1 made 2 x 4C numbers per token: split the last dimension into two equal halves.",
         "Which half is the value and which the gate? The notes write `x, gate = ...`. Which GELU: the exact one.")


@exercise("geglu", todo="h (..., 2D) -> (..., D): one half, gated by the GELU of the other half", reference=lambda: geglu_reference)
def check_geglu(geglu: Callable, raise_on_failure: bool = True) -> CheckResult:
    """geglu(h (..., 2D)) -> (..., D), where h is the output of linear_geglu_1."""
    with _seeded(0):
        h = 2 * torch.randn(2, 5, 16)
    mistakes = (GEGLU_SWAPPED, TANH_GELU, RELU_GATE, SILU_GATE)
    got = _run(lambda: geglu(h.clone()), "GeGLU")
    return compare(
        "GeGLU", got, _geglu(h), {m: _geglu(h, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected x, gate = h.chunk(2, dim=-1); x * F.gelu(gate).", raise_on_failure=raise_on_failure,
    )


def _attention_block(block, x: torch.Tensor, context: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """UNET_AttentionBlock.forward written out with the reference block's layers, or a typical mistake."""
    from torch.nn import functional as F

    norm = block.groupnorm
    eps = 1e-5 if mistake == GROUPNORM_EPS else norm.eps
    # (B, C, H, W) -> (B, C, H, W)
    h = block.conv_input(F.group_norm(x, norm.num_groups, norm.weight, norm.bias, eps))
    _, _, height, width = h.shape
    # (B, C, H, W) -> (B, H*W, C)
    tokens = _to_sequence(h, mistake)

    def self_attention(t):
        return block.attention_1(block.layernorm_1(t)) + (0 if mistake == NO_SELF_RESIDUAL else t)

    def cross_attention(t):
        return block.attention_2(block.layernorm_2(t), context) + (0 if mistake == NO_CROSS_RESIDUAL else t)

    for step in ((cross_attention, self_attention) if mistake == CROSS_BEFORE_SELF else (self_attention, cross_attention)):
        tokens = step(tokens)
    # (B, H*W, C) -> (B, H*W, 8C) -> (B, H*W, 4C) -> (B, H*W, C)
    feed_forward = block.linear_geglu_2(_geglu(block.linear_geglu_1(block.layernorm_3(tokens)), mistake))
    tokens = feed_forward + (0 if mistake == NO_FF_RESIDUAL else tokens)
    # (B, H*W, C) -> (B, C, H, W)
    out = block.conv_output(_to_image(tokens, height, width, mistake))
    return out if mistake == NO_LONG_RESIDUAL else out + x


# The block's tolerance: a right answer written independently differs by ~1e-6 (float32 rounding), and
# the closest typical mistake (the tanh GELU) by ~8e-4 on the check's inputs: more than 10x apart.
ATOL = 3e-5


def _reference_block():
    from ..unet import UNET_AttentionBlock
    return UNET_AttentionBlock


register("UNET_AttentionBlock",
         "__init__: the notes' eleven layers in order; GroupNorm with eps=1e-6; the attention layers are sdcourse's "
         "SelfAttention(n_head, channels) and CrossAttention(n_head, channels, d_context) (q/k/v without bias).",
         "forward: keep residue_long; groupnorm, conv_input; image -> sequence; three times LayerNorm + layer + short "
         "residual (self-attention, cross-attention with the context, GeGLU); sequence -> image; conv_output + residue_long.",
         "Section 3 above runs every line of it with shapes.")


@exercise("UNET_AttentionBlock", todo="build the notes' layers in __init__ (GroupNorm eps 1e-6) and write forward: "
          "norm, conv, image -> sequence, self-attn, cross-attn, GeGLU (each with a residual), back, conv + residual",
          reference=_reference_block)
def check_attention_block(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(n_head, n_embd, d_context=...) with the notes' attribute names (groupnorm, conv_input,
    layernorm_1..3, attention_1, attention_2, linear_geglu_1/2, conv_output); forward(x, context).
    Built as cls(8, 8, d_context=24): 64 channels, GroupNorm's default 32 groups.

    The output is checked, and so are the attention weights of attention_1 and attention_2 (read
    through their observers): self-attention (B, heads, H*W, H*W), cross-attention (B, heads, H*W, L)."""
    from ..unet import UNET_AttentionBlock

    name = "UNET_AttentionBlock"
    with _seeded(0):
        reference = perturb_(UNET_AttentionBlock(8, 8, d_context=24), seed=3)
        # small inputs: GroupNorm's eps then matters, so a wrong eps shows
        x, context = 0.01 * torch.randn(2, 64, 4, 3), 2 * torch.randn(2, 5, 24)
    with _seeded(1):  # the learner's init draws no numbers from the learner's stream
        learner = _build(cls, name, 8, 8, d_context=24)
    try:
        _load_reference_weights(learner, reference, name)
    except ExerciseError as error:
        if _bias_mistake(learner, reference):
            return _mistake(name, QKV_BIAS, raise_on_failure)
        return _as_result(name, error, raise_on_failure)
    seen = {"self": [], "cross": []}
    for kind, attr in (("self", "attention_1"), ("cross", "attention_2")):
        _observed(getattr(learner, attr), seen[kind])
    got = _run(lambda: learner(x.clone(), context.clone()), name)
    mistakes = (NO_LONG_RESIDUAL, NO_SELF_RESIDUAL, NO_CROSS_RESIDUAL, NO_FF_RESIDUAL, RESHAPE_WITHOUT_TRANSPOSE,
                GEGLU_SWAPPED, TANH_GELU, GROUPNORM_EPS, CROSS_BEFORE_SELF)
    expected_weights = {"self": [], "cross": []}
    with torch.no_grad():
        _observed(reference.attention_1, expected_weights["self"])
        _observed(reference.attention_2, expected_weights["cross"])
        expected = reference(x, context)
        reference.attention_1.observer = reference.attention_2.observer = None
        outputs = {m: _attention_block(reference, x, context, m) for m in mistakes}
    results = [_quiet(compare, name, got, expected, outputs, _named_hints(*mistakes), atol=ATOL)]
    if results[0].passed:
        for kind in ("self", "cross"):
            if len(seen[kind]) != 1:
                return _mistake(name, WEIGHTS_NOT_OBSERVED, raise_on_failure,
                                f"attention_{1 if kind == 'self' else 2} handed over {len(seen[kind])} sets of weights, "
                                "expected 1: use sdcourse's attention layers (they call their observer).")
            results.append(_quiet(compare, f"{name}: {kind}-attention weights", seen[kind][0], expected_weights[kind][0],
                                  general_hint="The attention layers should see the tokens of section 3.", atol=ATOL))
    return _first_failure(results, f"{name} (output and attention weights)", raise_on_failure)
