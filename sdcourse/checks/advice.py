"""Typical mistakes of notebooks 03-05 (attention, the attention block, the UNet), by name, with advice."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch

from .core import CheckResult, ExerciseError, _finish, _named


# ---------------------------------------------------------------------------------------------
# Notebooks 03-05: attention, the image as a sequence, the UNet.
# Each checker runs the reference on fixed inputs, computes what typical mistakes would give
# (written out below, one `mistake` switch each), and hands both to `compare`.
# ---------------------------------------------------------------------------------------------

# Typical mistakes, by name (the names appear in the hints and in CheckResult.mistake).
MISSING_SCALE = "missing 1/sqrt(d_head)"
SCALE_BY_D_HEAD = "divided by d_head instead of sqrt(d_head)"
SCALE_BY_D_EMBED = "1/sqrt(d_embed) instead of 1/sqrt(d_head)"
SOFTMAX_OVER_QUERIES = "softmax over the queries instead of the keys"
HEADS_BY_VIEW = "heads split with a bare view/reshape to (B, H, L, d_head), no transpose"
HEADS_MERGED_BY_VIEW = "heads merged with a bare view/reshape, no transpose back"
HEADS_INTERLEAVED = "heads taken from interleaved channels"
KEYS_VALUES_SWAPPED = "keys and values swapped"
RESHAPE_WITHOUT_TRANSPOSE = "reshape without transpose (channels and pixels mixed)"
COLUMN_MAJOR = "pixels in column-major order (width before height)"
GEGLU_SWAPPED = "GeGLU halves swapped (gate first, value second)"
TANH_GELU = "tanh-approximate GELU instead of the exact one"
RELU_GATE = "ReLU instead of GELU (that is ReGLU)"
SILU_GATE = "SiLU instead of GELU (that is SwiGLU)"
NO_LONG_RESIDUAL = "forgot the long residual"
NO_SELF_RESIDUAL = "forgot the short residual around self-attention"
NO_CROSS_RESIDUAL = "forgot the short residual around cross-attention"
NO_FF_RESIDUAL = "forgot the short residual around the feed-forward"
GROUPNORM_EPS = "GroupNorm eps 1e-5 (attention blocks use 1e-6)"
CROSS_BEFORE_SELF = "cross-attention before self-attention"
SKIP_FIRST = "skips concatenated in the wrong order: cat(skip, x)"
NO_BOTTLENECK = "bottleneck skipped"
SKIP_NOT_ADDED = "forgot to add the skip's channels"
SKIPS_AS_QUEUE = "skips taken first-in-first-out (a queue, not a stack)"
TILED = "repeat instead of repeat_interleave (the image tiled, not each pixel doubled)"
BILINEAR = "bilinear instead of nearest interpolation"
# shapes that give a typical mistake away
NO_HEAD_TRANSPOSE = "no transpose after the view: (B, L, H, d_head)"
HEADS_NOT_MERGED = "transposed back but not merged: (B, L, H, d_head)"
NO_SEQUENCE_TRANSPOSE = "no transpose: (B, C, H*W) is not a sequence of pixels"
HW_SWAPPED = "height and width swapped"
ONE_AXIS_DOUBLED = "only one axis doubled"
# attention weights (checked as well as the output)
WEIGHTS_MISSING = "attention weights not returned (None)"
WEIGHTS_NOT_OBSERVED = "attention weights never handed to self.observer"
SCORES_AS_WEIGHTS = "scores before the softmax given as the weights"
QKV_BIAS = "q/k/v projections with a bias (SD's have none)"
# Upsample, SwitchSequential, the UNET
NO_UPSAMPLE_CONV = "forgot the 3x3 conv after the upsampling"
CONV_BEFORE_UPSAMPLE = "3x3 conv before the upsampling instead of after"
RETURN_IN_LOOP = "return inside the loop: only the first layer ran"
LAYER_SKIPPED = "a plain layer (conv, Upsample) skipped: no else branch"
LAYERS_REVERSED = "layers run in reverse order"
# a UNET for any latent size (beyond the notes)
NEAREST_EXACT = "mode='nearest-exact' instead of 'nearest'"
BILINEAR_RESIZE = "bilinear instead of nearest resizing"
ZERO_PADDED = "zero-padded to the skip's size instead of resized"

_ATTENTION_ADVICE = {
    MISSING_SCALE: "Divide Q K^T by sqrt(d_head) before the softmax; without it the scores grow with d_head "
                   "and the softmax saturates.",
    SCALE_BY_D_HEAD: "The scale is 1/sqrt(d_head): it brings the scores' variance (about d_head) back to 1.",
    SCALE_BY_D_EMBED: "Each head's scores are dot products of d_head numbers, so divide by sqrt(d_head) "
                      "(= sqrt(d_embed / n_heads)), not by sqrt(d_embed) of the whole width.",
    SOFTMAX_OVER_QUERIES: "Use softmax(dim=-1): for each query, the weights over the keys sum to 1.",
    HEADS_BY_VIEW: "Split with .view(B, L, H, d_head).transpose(1, 2). A direct .view(B, H, L, d_head) cuts the "
                   "sequence, not the channels, into heads.",
    HEADS_MERGED_BY_VIEW: "Merge with .transpose(1, 2).reshape(B, L, H * d_head); reshaping (B, H, L, d_head) "
                          "directly mixes the tokens of different heads.",
    HEADS_INTERLEAVED: "Head h owns the contiguous channels h*d_head .. (h+1)*d_head - 1: view as (B, L, H, d_head), "
                       "not (B, L, d_head, H).",
    KEYS_VALUES_SWAPPED: "k_proj(context) gives the keys (compared with the queries), v_proj(context) the values "
                         "(mixed by the weights).",
    RESHAPE_WITHOUT_TRANSPOSE: "Go (B, C, H, W) -> view(B, C, H*W) -> transpose(1, 2). A bare reshape(B, H*W, C) "
                               "keeps the shape right but fills each token with one channel's neighbouring pixels.",
    COLUMN_MAJOR: "Token index = row * W + column (row-major): flatten H and W as they are stored, without "
                  "swapping them first.",
    GEGLU_SWAPPED: "x, gate = h.chunk(2, dim=-1): the FIRST half is the value, the SECOND half goes through GELU.",
    TANH_GELU: "SD uses the exact GELU: F.gelu(gate), not F.gelu(gate, approximate='tanh').",
    RELU_GATE: "The gate goes through GELU, not ReLU.",
    SILU_GATE: "The gate goes through GELU, not SiLU.",
    NO_LONG_RESIDUAL: "Return self.conv_output(x) + residue_long, where residue_long is the block's input.",
    NO_SELF_RESIDUAL: "After self-attention add residue_short (the tokens before layernorm_1).",
    NO_CROSS_RESIDUAL: "After cross-attention add residue_short (the tokens before layernorm_2).",
    NO_FF_RESIDUAL: "After linear_geglu_2 add residue_short (the tokens before layernorm_3).",
    GROUPNORM_EPS: "nn.GroupNorm(n_groups, channels, eps=1e-6) in the attention block (SD's checkpoint was trained so).",
    CROSS_BEFORE_SELF: "Self-attention (layernorm_1, attention_1) comes first, then cross-attention with the context.",
    SKIP_FIRST: "Concatenate the current features first: torch.cat((x, skip_connections.pop()), dim=1).",
    NO_BOTTLENECK: "Run x = self.bottleneck(x, context, time) between the encoders and the decoders.",
    SKIP_NOT_ADDED: "A decoder's input is the current features AND the skip it pops: add both channel counts.",
    SKIPS_AS_QUEUE: "The skips form a stack: the decoder pops the LAST encoder output first (list.pop()).",
    TILED: "Double each pixel: repeat_interleave(2, dim=-1) and repeat_interleave(2, dim=-2), not .repeat(...).",
    BILINEAR: "SD's Upsample uses mode='nearest': every pixel becomes a 2x2 block of copies.",
    NO_HEAD_TRANSPOSE: "After view(B, L, H, d_head), transpose(1, 2) puts the heads next to the batch: (B, H, L, d_head).",
    HEADS_NOT_MERGED: "After transpose(1, 2), join the last two dimensions: .reshape(B, L, H * d_head).",
    NO_SEQUENCE_TRANSPOSE: "view(B, C, H*W) keeps the channels first; transpose(1, 2) makes one row per pixel: (B, H*W, C).",
    HW_SWAPPED: "Split H*W back as (height, width), in that order: the tokens run row by row.",
    ONE_AXIS_DOUBLED: "Double both axes: repeat_interleave(2) along the width (dim=-1) AND the height (dim=-2).",
    WEIGHTS_MISSING: "Return both: (output, weights), where weights is the (B, H, Lq, Lk) softmax you multiplied v by.",
    WEIGHTS_NOT_OBSERVED: "After the softmax add: if self.observer is not None: self.observer(self, weights). That is "
                          "how sdcourse's recorder (notebook 07) reads where each token looks.",
    SCORES_AS_WEIGHTS: "The weights are softmax(scores, dim=-1): positive, each query's row sums to 1.",
    QKV_BIAS: "Use nn.Linear(..., bias=in_proj_bias) with in_proj_bias=False for q, k, v; out_proj keeps its bias.",
    NO_UPSAMPLE_CONV: "After doubling the pixels, run self.conv (3x3, padding 1) on the result.",
    CONV_BEFORE_UPSAMPLE: "Upsample first, then the 3x3 conv: the conv refines the blocky 2x2 copies.",
    RETURN_IN_LOOP: "Put `return x` after the for loop (one indentation level out), so every layer runs.",
    LAYER_SKIPPED: "End the if/elif with `else: x = layer(x)`: convs and Upsample take only x.",
    LAYERS_REVERSED: "Run the layers in their order: `for layer in self:`.",
    NEAREST_EXACT: "diffusers resizes with F.interpolate(x, size=..., mode='nearest'): source pixel floor(i * in / out).",
    BILINEAR_RESIZE: "Resize with mode='nearest' (as the x2 upsampling does), not bilinear.",
    ZERO_PADDED: "Resize to the skip's size with F.interpolate(x, size=skip_size, mode='nearest'); zeros are not "
                 "what the trained convs expect.",
}


def _named_hints(*names: str) -> Dict[str, str]:
    """mistake name -> 'It looks like: <name>. <advice>', so a wrong answer names its mistake."""
    return _named({name: _ATTENTION_ADVICE[name] for name in names})



def _quiet(compare_fn: Callable, *args, **kwargs) -> CheckResult:
    """Run a compare without printing its [ok] line (a checker that compares several values prints
    one line at the end) and without raising: the caller decides with `_first_failure`."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return compare_fn(*args, **kwargs, raise_on_failure=False)


def _first_failure(results, name: str, raise_on_failure: bool) -> CheckResult:
    """The first failing CheckResult of `results` (raised or returned), else one [ok] line for all."""
    for result in results:
        if not result.passed:
            return _finish(result, raise_on_failure)
    worst = max(r.max_abs_diff for r in results)
    return _finish(CheckResult(name, True, worst), raise_on_failure)


def _mistake(name: str, mistake: str, raise_on_failure: bool, detail: str = "") -> CheckResult:
    """A failure that is a named mistake found without comparing numbers (a missing value, a bias
    that should not exist, ...)."""
    hint = _named_hints(mistake)[mistake]
    return _finish(CheckResult(name, False, float("inf"), mistake=mistake, hint=(detail + " " + hint).strip()),
                   raise_on_failure)


def _shape_mistakes(name: str, got, mistakes: Dict[str, tuple], raise_on_failure: bool) -> Optional[CheckResult]:
    """Name a mistake that shows in the shape alone (a missing transpose, ...), or None if `got` has none of them."""
    if isinstance(got, torch.Tensor):
        for mistake, shape in mistakes.items():
            if tuple(got.shape) == tuple(shape):
                return _mistake(name, mistake, raise_on_failure, f"Your result has shape {tuple(got.shape)}.")
    return None


def _as_result(name: str, error: ExerciseError, raise_on_failure: bool) -> CheckResult:
    """An ExerciseError raised while setting a check up (wrong parameter names, ...) as a CheckResult."""
    if raise_on_failure:
        raise error
    return CheckResult(name, False, float("inf"), hint=str(error))
