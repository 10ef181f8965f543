"""The exercise checkers of notebook 03 (heads, scaled dot-product attention, SelfAttention,
CrossAttention): a stub gives [todo] and the reference, a right answer passes and is returned,
each typical mistake is named (in the output or in the attention weights) and lies at least 10x
the tolerance away from the right answer, and F.scaled_dot_product_attention is refused.

Every answer below, right or wrong, is written here as a learner would, independently of sdcourse
(unflatten/permute, a softmax written as exp / sum), so that a checker that computed a mistake's
output wrongly would not recognise it.
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

TOL = 1e-5  # the attention checkers' tolerance


def verdict(checker, *args):
    """Run a checker without raising; return its CheckResult."""
    return checker(*args, raise_on_failure=False)


def assert_names(checker, answer, mistake, tol=TOL):
    """The checker names `mistake` in its result and in the error a notebook would see, and the answer
    differs from the right one by at least 10x the tolerance (a mistake the check can always tell apart)."""
    result = verdict(checker, answer)
    assert not result.passed and result.mistake == mistake, result
    assert result.max_abs_diff >= 10 * tol, result
    with pytest.raises(ExerciseError, match=re.escape(mistake)):
        checker(answer)


def assert_todo_then_reference(checker, stub, reference, capsys):
    got = checker(stub)
    assert got is reference
    assert capsys.readouterr().out.startswith(f"[todo] {checker.exercise_name}:")


def stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError()


def softmax(scores, dim):
    e = (scores - scores.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim, keepdim=True)


# --- heads ---------------------------------------------------------------------------------------

def split_right(x, n_heads):
    return x.unflatten(-1, (n_heads, -1)).permute(0, 2, 1, 3)


def merge_right(x):
    return x.permute(0, 2, 1, 3).flatten(2)


def test_split_and_merge_heads_pass_a_correct_answer(capsys):
    assert checks.check_split_heads(split_right) is split_right
    assert checks.check_merge_heads(merge_right) is merge_right
    assert verdict(checks.check_split_heads, split_right, merge_right).passed
    assert capsys.readouterr().out.count("[ok]") == 4


def test_split_and_merge_heads_stubs_give_the_reference(capsys):
    assert_todo_then_reference(checks.check_split_heads, stub, sdcourse.attention.split_heads, capsys)
    assert_todo_then_reference(checks.check_merge_heads, stub, sdcourse.attention.merge_heads, capsys)


def test_split_heads_names_view_without_transpose():
    def split(x, n_heads):
        b, length, d = x.shape
        return x.view(b, n_heads, length, d // n_heads)

    assert_names(checks.check_split_heads, split, checks.HEADS_BY_VIEW)


def test_split_heads_names_interleaved_heads():
    assert_names(checks.check_split_heads, lambda x, n: x.unflatten(-1, (-1, n)).permute(0, 3, 1, 2),
                 checks.HEADS_INTERLEAVED)


def test_split_heads_names_the_missing_transpose():
    assert_names(checks.check_split_heads, lambda x, n: x.unflatten(-1, (n, -1)), checks.NO_HEAD_TRANSPOSE)


def test_merge_heads_names_the_missing_reshape():
    assert_names(checks.check_merge_heads, lambda x: x.transpose(1, 2), checks.HEADS_NOT_MERGED)


def test_merge_heads_names_the_mistakes():
    def merge_by_view(x):
        b, h, length, dh = x.shape
        return x.reshape(b, length, h * dh)

    assert_names(checks.check_merge_heads, merge_by_view, checks.HEADS_MERGED_BY_VIEW)
    assert_names(checks.check_merge_heads, lambda x: x.permute(0, 2, 3, 1).flatten(2), checks.HEADS_INTERLEAVED)


# --- scaled dot-product attention ------------------------------------------------------------------

def sdp(scale=None, dim=-1, weights="softmax"):
    """A learner's scaled_dot_product with switches: scale (None: 1/sqrt(d_head)), softmax axis, what is returned."""
    def attention(q, k, v):
        s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale(q)
        scores = q @ k.mT * s
        w = softmax(scores, dim)
        out = softmax(scores, -1) @ v if weights == "right output" else w @ v
        given = {"softmax": w, "right output": w, "none": None, "scores": scores}[weights]
        return out, given
    return attention


def test_scaled_dot_product_passes_a_correct_answer(capsys):
    answer = sdp()
    assert checks.check_scaled_dot_product(answer) is answer
    assert "[ok] scaled dot-product attention (output and weights)" in capsys.readouterr().out


def test_scaled_dot_product_stub_gives_the_reference(capsys):
    reference = checks.check_scaled_dot_product.reference()
    assert_todo_then_reference(checks.check_scaled_dot_product, stub, reference, capsys)
    assert verdict(checks.check_scaled_dot_product, reference).passed


@pytest.mark.parametrize("answer, mistake", [
    (sdp(scale=lambda q: 1.0), checks.MISSING_SCALE),
    (sdp(scale=lambda q: 1.0 / q.shape[-1]), checks.SCALE_BY_D_HEAD),
    (sdp(dim=-2), checks.SOFTMAX_OVER_QUERIES),
], ids=["no-scale", "by-d_head", "softmax-axis"])
def test_scaled_dot_product_names_the_mistake(answer, mistake):
    assert_names(checks.check_scaled_dot_product, answer, mistake)


@pytest.mark.parametrize("answer, mistake", [
    (sdp(weights="none"), checks.WEIGHTS_MISSING),
    (lambda q, k, v: sdp()(q, k, v)[0], checks.WEIGHTS_MISSING),
    (sdp(weights="scores"), checks.SCORES_AS_WEIGHTS),
    (sdp(dim=-2, weights="right output"), checks.SOFTMAX_OVER_QUERIES),
], ids=["None", "output-only", "scores", "weights-over-queries"])
def test_scaled_dot_product_checks_the_weights_when_the_output_is_right(answer, mistake):
    result = verdict(checks.check_scaled_dot_product, answer)
    assert "weights" in result.name or result.mistake == checks.WEIGHTS_MISSING
    assert_names(checks.check_scaled_dot_product, answer, mistake)


def test_scaled_dot_product_refuses_torch_sdpa():
    def shortcut(q, k, v):
        return F.scaled_dot_product_attention(q, k, v), softmax(q @ k.mT / math.sqrt(q.shape[-1]), -1)

    with pytest.raises(ExerciseError, match="F.scaled_dot_product_attention"):
        checks.check_scaled_dot_product(shortcut)
    assert F.scaled_dot_product_attention.__name__ == "scaled_dot_product_attention"  # restored after the check


def test_a_crashing_answer_becomes_an_exercise_error():
    with pytest.raises(ExerciseError, match="RuntimeError"):
        checks.check_scaled_dot_product(lambda q, k, v: q @ k)  # (.., Lq, Dh) @ (.., Lk, Dh): shapes do not fit


# --- SelfAttention / CrossAttention -----------------------------------------------------------------

def heads(module, q, k, v, bug):
    """Multi-head attention on projected (B, L, C) tensors as a learner writes it, with an optional bug;
    hands the weights to module.observer as the exercise asks."""
    b, lq, c = q.shape
    n = module.n_heads
    if bug == "view":
        q, k, v = (t.reshape(b, n, t.shape[1], c // n) for t in (q, k, v))
    else:
        q, k, v = (split_right(t, n) for t in (q, k, v))
    scale = {"no-scale": 1.0, "d-embed-scale": 1 / math.sqrt(c)}.get(bug, 1 / math.sqrt(c // n))
    scores = q @ k.mT * scale
    weights = softmax(scores, 2 if bug == "softmax-axis" else -1)
    given = {"no-observer": "skip", "weights-none": None, "scores-observed": scores,
             "weights-over-queries": softmax(scores, 2)}.get(bug, weights)
    if module.observer is not None and not (isinstance(given, str)):
        module.observer(module, given)
    out = weights @ v
    return out.reshape(b, lq, c) if bug == "view" else merge_right(out)


def self_attention_class(bug=None, bias=False):
    class LearnerSelfAttention(nn.Module):
        def __init__(self, n_heads, d_embed):
            super().__init__()
            self.n_heads, self.observer = n_heads, None
            self.in_proj = nn.Linear(d_embed, 3 * d_embed, bias=bias)
            self.out_proj = nn.Linear(d_embed, d_embed)

        def forward(self, x):
            q, k, v = self.in_proj(x).split(x.shape[-1], dim=-1)
            if bug == "sdpa":
                out = F.scaled_dot_product_attention(*(split_right(t, self.n_heads) for t in (q, k, v)))
                return self.out_proj(merge_right(out))
            return self.out_proj(heads(self, q, k, v, bug))

    return LearnerSelfAttention


def cross_attention_class(bug=None, bias=False):
    class LearnerCrossAttention(nn.Module):
        def __init__(self, n_heads, d_embed, d_cross):
            super().__init__()
            self.n_heads, self.observer = n_heads, None
            self.q_proj = nn.Linear(d_embed, d_embed, bias=bias)
            self.k_proj = nn.Linear(d_cross, d_embed, bias=False)
            self.v_proj = nn.Linear(d_cross, d_embed, bias=False)
            self.out_proj = nn.Linear(d_embed, d_embed)

        def forward(self, x, context):
            k, v = self.k_proj(context), self.v_proj(context)
            if bug == "kv-swapped":
                k, v = v, k
            if bug == "mha":
                mha = nn.MultiheadAttention(x.shape[-1], self.n_heads, batch_first=True)
                return mha(x, x, x)[0]
            return self.out_proj(heads(self, self.q_proj(x), k, v, bug))

    return LearnerCrossAttention


def test_self_attention_passes_a_correct_class(capsys):
    cls = self_attention_class()
    assert checks.check_self_attention(cls) is cls
    assert "[ok] SelfAttention (output and attention weights)" in capsys.readouterr().out


def test_attention_stubs_give_the_reference(capsys):
    class Stub(nn.Module):
        def __init__(self, *args):
            super().__init__()
            raise NotImplementedError()

    assert_todo_then_reference(checks.check_self_attention, Stub, sdcourse.SelfAttention, capsys)
    assert_todo_then_reference(checks.check_cross_attention, Stub, sdcourse.CrossAttention, capsys)


def test_the_references_pass_their_own_checks():
    # sdcourse's classes hand their weights to an observer (the explicit path), as the exercise asks
    assert verdict(checks.check_self_attention, sdcourse.SelfAttention).passed
    assert verdict(checks.check_cross_attention, sdcourse.CrossAttention).passed


@pytest.mark.parametrize("bug, mistake", [
    ("no-scale", checks.MISSING_SCALE),
    ("d-embed-scale", checks.SCALE_BY_D_EMBED),
    ("softmax-axis", checks.SOFTMAX_OVER_QUERIES),
    ("view", checks.HEADS_BY_VIEW),
])
def test_self_attention_names_the_mistake(bug, mistake):
    assert_names(checks.check_self_attention, self_attention_class(bug), mistake)


@pytest.mark.parametrize("bug, mistake", [
    ("no-observer", checks.WEIGHTS_NOT_OBSERVED),
    ("weights-none", checks.WEIGHTS_NOT_OBSERVED),
    ("scores-observed", checks.SCORES_AS_WEIGHTS),
    ("weights-over-queries", checks.SOFTMAX_OVER_QUERIES),
])
def test_self_attention_checks_the_weights_when_the_output_is_right(bug, mistake):
    assert_names(checks.check_self_attention, self_attention_class(bug), mistake)


def test_attention_classes_name_a_qkv_bias():
    assert_names(checks.check_self_attention, self_attention_class(bias=True), checks.QKV_BIAS)
    assert_names(checks.check_cross_attention, cross_attention_class(bias=True), checks.QKV_BIAS)


def test_attention_classes_refuse_the_shortcuts():
    with pytest.raises(ExerciseError, match="F.scaled_dot_product_attention"):
        checks.check_self_attention(self_attention_class("sdpa"))
    with pytest.raises(ExerciseError, match="F.multi_head_attention_forward"):
        checks.check_cross_attention(cross_attention_class("mha"))


def test_cross_attention_passes_a_correct_class():
    assert verdict(checks.check_cross_attention, cross_attention_class()).passed


@pytest.mark.parametrize("bug, mistake", [
    ("no-scale", checks.MISSING_SCALE),
    ("d-embed-scale", checks.SCALE_BY_D_EMBED),
    ("softmax-axis", checks.SOFTMAX_OVER_QUERIES),
    ("kv-swapped", checks.KEYS_VALUES_SWAPPED),
    ("weights-none", checks.WEIGHTS_NOT_OBSERVED),
    ("weights-over-queries", checks.SOFTMAX_OVER_QUERIES),
])
def test_cross_attention_names_the_mistake(bug, mistake):
    assert_names(checks.check_cross_attention, cross_attention_class(bug), mistake)


def test_checkers_leave_the_learners_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    checks.check_self_attention(self_attention_class())
    assert torch.equal(torch.rand(3), expected)
