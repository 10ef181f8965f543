"""Checkers of notebook 03: heads, scaled dot-product attention, SelfAttention, CrossAttention.

Attention is checked twice: the output AND the attention weights. A learner can compute the output
right and hand back wrong weights (None, the scores before the softmax, a softmax over the wrong
axis): the weights are what notebook 07's recorder shows, so they are checked and named too.
Inside these checks `F.scaled_dot_product_attention` and `F.multi_head_attention_forward`
(`nn.MultiheadAttention`) are blocked: the exercises ask for attention written by hand.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import torch

from .advice import *  # noqa: F401,F403 - the mistake names
from .advice import _as_result, _first_failure, _mistake, _named_hints, _quiet, _shape_mistakes
from .core import CheckResult, ExerciseError, _build, _run, _seeded, compare, copy_weights, exercise, perturb_
from .hints import register

BY_HAND = ("scaled_dot_product_attention", "multi_head_attention_forward")


# --- attention, written out with a switch for each typical mistake -----------------------------

def _split_heads(x: torch.Tensor, n_heads: int, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, L, H * Dh) -> (B, H, L, Dh), or what a typical mistake makes of it."""
    b, length, d = x.shape
    if mistake == HEADS_BY_VIEW:
        # (B, L, H * Dh) -> (B, H, L, Dh) by reinterpreting memory: tokens cut into heads
        return x.reshape(b, n_heads, length, d // n_heads)
    if mistake == HEADS_INTERLEAVED:
        # (B, L, H * Dh) -> (B, L, Dh, H) -> (B, H, L, Dh): head h gets channels h, h + H, ...
        return x.reshape(b, length, d // n_heads, n_heads).permute(0, 3, 1, 2)
    # (B, L, H * Dh) -> (B, L, H, Dh) -> (B, H, L, Dh)
    return x.reshape(b, length, n_heads, d // n_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, H, L, Dh) -> (B, L, H * Dh), or what a typical mistake makes of it."""
    b, h, length, dh = x.shape
    if mistake in (HEADS_BY_VIEW, HEADS_MERGED_BY_VIEW):
        # (B, H, L, Dh) -> (B, L, H * Dh) without the transpose
        return x.reshape(b, length, h * dh)
    if mistake == HEADS_INTERLEAVED:
        # (B, H, L, Dh) -> (B, L, Dh, H) -> (B, L, H * Dh)
        return x.permute(0, 2, 3, 1).reshape(b, length, h * dh)
    # (B, H, L, Dh) -> (B, L, H, Dh) -> (B, L, H * Dh)
    return x.transpose(1, 2).reshape(b, length, h * dh)


def _weights(q: torch.Tensor, k: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """softmax(Q K^T / sqrt(Dh)) over the keys, or a typical mistake. (B, H, Lq, Dh), (B, H, Lk, Dh) -> (B, H, Lq, Lk)."""
    d_head = q.shape[-1]
    d_embed = q.shape[1] * d_head  # all heads together
    scale = {MISSING_SCALE: 1.0, SCALE_BY_D_HEAD: 1.0 / d_head, SCALE_BY_D_EMBED: d_embed ** -0.5}.get(mistake, d_head ** -0.5)
    # (B, H, Lq, Dh) @ (B, H, Dh, Lk) -> (B, H, Lq, Lk)
    scores = (q @ k.transpose(-1, -2)) * scale
    if mistake == SCORES_AS_WEIGHTS:
        return scores
    return scores.softmax(dim=-2 if mistake == SOFTMAX_OVER_QUERIES else -1)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """softmax(Q K^T / sqrt(Dh)) V, or a typical mistake. (B, H, Lq, Dh), (B, H, Lk, Dh) x2 -> (B, H, Lq, Dh)."""
    # (B, H, Lq, Lk) @ (B, H, Lk, Dh) -> (B, H, Lq, Dh)
    return _weights(q, k, mistake) @ v


def _multi_head(q, k, v, n_heads: int, out_proj, mistake: Optional[str] = None):
    """Projected (B, Lq, C), (B, Lk, C), (B, Lk, C) -> output (B, Lq, C) and weights (B, H, Lq, Lk)."""
    q, k, v = (_split_heads(t, n_heads, mistake) for t in (q, k, v))
    weights = _weights(q, k, mistake)
    # (B, H, Lq, Lk) @ (B, H, Lk, Dh) -> (B, H, Lq, Dh) -> (B, Lq, C)
    return out_proj(_merge_heads(weights @ v, mistake)), weights


def scaled_dot_product_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """The reference answer of the scaled dot-product exercise: (output (B, H, Lq, Dh), weights (B, H, Lq, Lk)),
    written by hand (no F.scaled_dot_product_attention), so that it also runs inside a check that blocks it."""
    weights = _weights(q, k)
    return weights @ v, weights


def _references(*names: str):
    from .. import attention
    return lambda: getattr(attention, names[0])


# --- heads ---------------------------------------------------------------------------------------

register("split_heads",
         "Two steps: first cut each token's H * d_head features into H slices (a view that splits the last "
         "dimension), then move the head dimension next to the batch.",
         "Print the shapes after each step; check that head 1 of token 0 is features d_head..2*d_head-1 of token 0.")
register("merge_heads",
         "The inverse of split_heads, steps in reverse order: bring the tokens back next to the batch, then join "
         "the last two dimensions. After a transpose, joining needs reshape (view raises).")


@exercise("split_heads", todo="x (B, L, H*Dh) -> (B, H, L, Dh): each head gets its own Dh channels of every token",
          reference=_references("split_heads"))
def check_split_heads(split_heads: Callable, merge_heads: Optional[Callable] = None, raise_on_failure: bool = True):
    """split_heads(x (B, L, H*Dh), n_heads) -> (B, H, L, Dh); merge_heads((B, H, L, Dh)) -> (B, L, H*Dh).

    Returns the CheckResult of the last check made (merge_heads when it is given).
    """
    with _seeded(0):
        x = torch.randn(2, 5, 24)  # B=2, L=5, 4 heads x 6
    mistakes = (HEADS_BY_VIEW, HEADS_INTERLEAVED)
    expected = _split_heads(x, 4)
    got = _run(lambda: split_heads(x.clone(), 4), "split_heads")
    named = _shape_mistakes("split_heads", got, {NO_HEAD_TRANSPOSE: (2, 5, 4, 6)}, raise_on_failure)
    if named is not None:
        return named
    result = compare(
        "split_heads", got, expected, {m: _split_heads(x, 4, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected x.view(B, L, n_heads, d_head).transpose(1, 2).", raise_on_failure=raise_on_failure,
    )
    if merge_heads is None or not result.passed:
        return result
    return _check_merge(merge_heads, raise_on_failure)


def _check_merge(merge_heads: Callable, raise_on_failure: bool) -> CheckResult:
    with _seeded(0):
        x = torch.randn(2, 5, 24)
    heads = _split_heads(x, 4)
    mistakes = (HEADS_MERGED_BY_VIEW, HEADS_INTERLEAVED)
    got = _run(lambda: merge_heads(heads.clone()), "merge_heads")
    named = _shape_mistakes("merge_heads", got, {HEADS_NOT_MERGED: (2, 5, 4, 6)}, raise_on_failure)
    if named is not None:
        return named
    return compare(
        "merge_heads", got, x, {m: _merge_heads(heads, m) for m in mistakes}, _named_hints(*mistakes),
        general_hint="Expected x.transpose(1, 2).reshape(B, L, n_heads * d_head).", raise_on_failure=raise_on_failure,
    )


@exercise("merge_heads", todo="x (B, H, L, Dh) -> (B, L, H*Dh): the inverse of split_heads",
          reference=_references("merge_heads"))
def check_merge_heads(merge_heads: Callable, raise_on_failure: bool = True) -> CheckResult:
    """merge_heads((B, H, L, Dh)) -> (B, L, H*Dh), the inverse of split_heads."""
    return _check_merge(merge_heads, raise_on_failure)


# --- scaled dot-product attention ----------------------------------------------------------------

register("scaled_dot_product",
         "Scores: every query against every key, divided by sqrt of the LAST dimension of q (d_head).",
         "Softmax along the keys: for each query, the weights over the keys sum to 1. Which dimension is that?",
         "Return a pair: (weights @ v, weights).")


@exercise("scaled_dot_product", todo="return (output (B, H, Lq, Dh), weights (B, H, Lq, Lk)) of "
          "scaled dot-product attention, written by hand", reference=lambda: scaled_dot_product_reference)
def check_scaled_dot_product(attention: Callable, raise_on_failure: bool = True) -> CheckResult:
    """attention(q, k, v) with (B, H, Lq, Dh), (B, H, Lk, Dh), (B, H, Lk, Dh) -> (output (B, H, Lq, Dh),
    weights (B, H, Lq, Lk)). Both are checked; F.scaled_dot_product_attention is blocked."""
    name = "scaled dot-product attention"
    with _seeded(0):
        q, k, v = 2 * torch.randn(2, 3, 6, 8), 2 * torch.randn(2, 3, 4, 8), torch.randn(2, 3, 4, 8)
    got = _run(lambda: attention(q.clone(), k.clone(), v.clone()), name, forbidden=BY_HAND)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return _mistake(name, WEIGHTS_MISSING, raise_on_failure,
                        f"Got one {type(got).__name__}, expected a pair (output, weights).")
    out, weights = got
    if weights is None:
        return _mistake(name, WEIGHTS_MISSING, raise_on_failure)
    mistakes = (MISSING_SCALE, SCALE_BY_D_HEAD, SOFTMAX_OVER_QUERIES)
    hint = "Expected softmax(q @ k.transpose(-1, -2) / sqrt(d_head), dim=-1) @ v."
    results = [_quiet(compare, f"{name}: output", out, _attend(q, k, v), {m: _attend(q, k, v, m) for m in mistakes},
                      _named_hints(*mistakes), general_hint=hint)]
    weight_mistakes = mistakes + (SCORES_AS_WEIGHTS,)
    results.append(_quiet(compare, f"{name}: weights", weights, _weights(q, k),
                          {m: _weights(q, k, m) for m in weight_mistakes}, _named_hints(*weight_mistakes),
                          general_hint="Expected the weights softmax(q @ k.transpose(-1, -2) / sqrt(d_head), dim=-1)."))
    return _first_failure(results, f"{name} (output and weights)", raise_on_failure)


# --- the two attention classes ---------------------------------------------------------------------

def _bias_mistake(learner: torch.nn.Module, reference: torch.nn.Module) -> bool:
    extra = [k for k in learner.state_dict() if k not in reference.state_dict()]
    return any(k.endswith(("in_proj.bias", "q_proj.bias", "k_proj.bias", "v_proj.bias")) for k in extra)


def _load_reference_weights(learner: torch.nn.Module, reference: torch.nn.Module, name: str) -> None:
    """Copy the reference's weights into the learner's module; a q/k/v bias is named."""
    if _bias_mistake(learner, reference):
        raise ExerciseError(f"[wrong] {name}: It looks like: {QKV_BIAS}. {_named_hints(QKV_BIAS)[QKV_BIAS]}")
    copy_weights(learner, reference)


def _observed(module: torch.nn.Module, seen: List) -> None:
    """Set an observer on `module` (the sdcourse protocol: observer(module, weights)) that keeps every call."""
    module.observer = lambda m, weights: seen.append(weights)


def _check_attention_class(name: str, learner, reference, run_learner, outputs, weights, mistakes, weight_mistakes,
                           raise_on_failure: bool) -> CheckResult:
    """Shared tail of the two class checkers: run the learner with an observer, compare output and weights."""
    seen: List = []
    _observed(learner, seen)
    got = _run(run_learner, name, forbidden=BY_HAND,
               hint="forward computes the attention by hand (F.scaled_dot_product_attention is blocked here).")
    expected, expected_weights = outputs.pop(None), weights.pop(None)
    results = [_quiet(compare, name, got, expected, outputs, _named_hints(*mistakes))]
    if results[0].passed:
        if not seen or seen[-1] is None:
            return _mistake(name, WEIGHTS_NOT_OBSERVED, raise_on_failure,
                            "The output is right, but the module never gave its weights to observer(module, weights).")
        results.append(_quiet(compare, f"{name}: weights", seen[-1], expected_weights,
                              {m: weights[m] for m in weight_mistakes}, _named_hints(*weight_mistakes),
                              general_hint="observer(self, weights) should receive the (B, H, Lq, Lk) softmax weights."))
    return _first_failure(results, f"{name} (output and attention weights)", raise_on_failure)


register("SelfAttention",
         "__init__: in_proj (d_embed -> 3 d_embed, bias=in_proj_bias) and out_proj (d_embed -> d_embed); "
         "keep self.observer = None.",
         "forward: in_proj, chunk(3), split heads, scores / sqrt(d_head), softmax over the keys, hand the weights to "
         "self.observer when it is set, weights @ v, merge heads, out_proj.",
         "Compare with sections 2.1-2.5 above: the same lines, inside a class.")
register("CrossAttention",
         "Like SelfAttention, but three projections: q_proj reads x (d_embed wide), k_proj and v_proj read the "
         "context y (d_cross wide); all three without bias.",
         "The weights are (B, H, Lq, Lk): one row per image token, one column per context token.")


@exercise("SelfAttention", todo="build in_proj and out_proj in __init__; write forward by hand (no "
          "F.scaled_dot_product_attention), handing the weights to self.observer", reference=_references("SelfAttention"))
def check_self_attention(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(n_heads, d_embed) with `in_proj` (fused q/k/v, no bias) and `out_proj`, forward(x (B, L, d_embed)),
    calling self.observer(self, weights (B, H, L, L)) when an observer is set."""
    from ..attention import SelfAttention

    name = "SelfAttention"
    with _seeded(0):
        reference = perturb_(SelfAttention(4, 32), seed=1)
        x = 2 * torch.randn(2, 6, 32)
    with _seeded(1):  # the learner's init draws no numbers from the learner's stream
        learner = _build(cls, name, 4, 32)
    try:
        _load_reference_weights(learner, reference, name)
    except ExerciseError as error:
        if _bias_mistake(learner, reference):
            return _mistake(name, QKV_BIAS, raise_on_failure)
        return _as_result(name, error, raise_on_failure)
    mistakes = (MISSING_SCALE, SCALE_BY_D_EMBED, SOFTMAX_OVER_QUERIES, HEADS_BY_VIEW, HEADS_MERGED_BY_VIEW,
                HEADS_INTERLEAVED)
    with torch.no_grad():
        # (B, L, C) -> (B, L, 3C) -> 3 x (B, L, C): the fused projection
        q, k, v = reference.in_proj(x).chunk(3, dim=-1)
        both = {m: _multi_head(q, k, v, 4, reference.out_proj, m) for m in (None,) + mistakes + (SCORES_AS_WEIGHTS,)}
    outputs = {m: o for m, (o, _) in both.items() if m != SCORES_AS_WEIGHTS}
    weights = {m: w for m, (_, w) in both.items()}
    return _check_attention_class(name, learner, reference, lambda: learner(x.clone()), outputs, weights, mistakes,
                                  (MISSING_SCALE, SCALE_BY_D_EMBED, SOFTMAX_OVER_QUERIES, HEADS_INTERLEAVED,
                                   SCORES_AS_WEIGHTS),
                                  raise_on_failure)


@exercise("CrossAttention", todo="build q_proj, k_proj, v_proj (no bias) and out_proj; write forward(x, y) by hand, "
          "handing the weights to self.observer", reference=_references("CrossAttention"))
def check_cross_attention(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(n_heads, d_embed, d_cross) with q_proj, k_proj, v_proj (no bias), out_proj; forward(x, context),
    calling self.observer(self, weights (B, H, Lq, Lk)) when an observer is set."""
    from ..attention import CrossAttention

    name = "CrossAttention"
    with _seeded(0):
        reference = perturb_(CrossAttention(4, 32, 24), seed=2)
        x, context = 2 * torch.randn(2, 6, 32), 2 * torch.randn(2, 5, 24)
    with _seeded(1):  # the learner's init draws no numbers from the learner's stream
        learner = _build(cls, name, 4, 32, 24)
    try:
        _load_reference_weights(learner, reference, name)
    except ExerciseError as error:
        if _bias_mistake(learner, reference):
            return _mistake(name, QKV_BIAS, raise_on_failure)
        return _as_result(name, error, raise_on_failure)
    mistakes = (MISSING_SCALE, SCALE_BY_D_EMBED, SOFTMAX_OVER_QUERIES, HEADS_BY_VIEW, HEADS_MERGED_BY_VIEW)
    with torch.no_grad():
        q, k, v = reference.q_proj(x), reference.k_proj(context), reference.v_proj(context)
        both = {m: _multi_head(q, k, v, 4, reference.out_proj, m) for m in (None,) + mistakes + (SCORES_AS_WEIGHTS,)}
        both[KEYS_VALUES_SWAPPED] = _multi_head(q, v, k, 4, reference.out_proj)
    outputs = {m: o for m, (o, _) in both.items() if m != SCORES_AS_WEIGHTS}
    weights = {m: w for m, (_, w) in both.items()}
    return _check_attention_class(name, learner, reference, lambda: learner(x.clone(), context.clone()), outputs,
                                  weights, mistakes + (KEYS_VALUES_SWAPPED,),
                                  (MISSING_SCALE, SCALE_BY_D_EMBED, SOFTMAX_OVER_QUERIES, KEYS_VALUES_SWAPPED,
                                   SCORES_AS_WEIGHTS),
                                  raise_on_failure)
