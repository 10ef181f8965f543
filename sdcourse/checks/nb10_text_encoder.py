"""Checkers of notebook 10: padding a prompt to 77 ids, CLIP's causal mask, quick-GELU, the text
embeddings and one CLIP layer.

Each checker computes the reference (sdcourse's `text_encoder` module) and the outputs of typical
mistakes written out below (a switch per mistake), so that a wrong answer is named: the mask over
the wrong triangle, the exact GELU where CLIP uses quick-GELU, the positions not added, post-LN
where CLIP is pre-LN, ...
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch
from torch.nn import functional as F

from .core import (CheckResult, ExerciseError, _build, _finish, _named, _run, _seeded, compare, copy_weights, exercise,
                   perturb_)
from .hints import register

# --- typical mistakes, by name ------------------------------------------------------------------
MASK_UPPER = "mask over the wrong triangle (token i sees the later tokens)"
MASK_NO_DIAGONAL = "diagonal left out (a token cannot see itself)"
MASK_INVERTED = "True where blocked instead of where allowed"
MASK_NOT_BOOL = "not a bool mask"
EXACT_GELU = "exact GELU instead of quick-GELU"
TANH_GELU_NOT_QUICK = "tanh-approximate GELU instead of quick-GELU"
SILU_NOT_QUICK = "x * sigmoid(x) (SiLU): the 1.702 is missing"
SIGMOID_ONLY = "sigmoid(1.702 x) without the factor x"
POSITIONS_MISSING = "positions not added"
POSITIONS_FROM_IDS = "position embedding looked up with the token ids"
SCALED_BY_SQRT_D = "token embedding scaled by sqrt(d) (the 2017 Transformer does, CLIP does not)"
POST_LN = "post-LN instead of pre-LN"
NO_ATTENTION_RESIDUAL = "forgot the residual around the attention"
NO_MLP_RESIDUAL = "forgot the residual around the MLP"
ONE_NORM_TWICE = "layer_norm1 used twice (layer_norm2 never used)"
NO_CAUSAL_MASK = "attention without the causal mask"
PAD_WITH_ZERO = "padded with id 0 instead of <|endoftext|>"
LEFT_PADDING = "padding put before the prompt"
END_TOKEN_CUT = "a long prompt cut after adding <|endoftext|> (the end token lost)"
NO_START_TOKEN = "<|startoftext|> missing"

ADVICE = {
    MASK_UPPER: "Token i may look at tokens 0..i: True on and BELOW the diagonal, j <= i (torch.tril).",
    MASK_NO_DIAGONAL: "Keep the diagonal: token i may look at itself (row 0 would otherwise see nothing and its "
                      "softmax would give NaN).",
    MASK_INVERTED: "Return True where attention is ALLOWED (the lower triangle); the attention then fills the "
                   "scores at ~mask with -inf.",
    MASK_NOT_BOOL: "Return a bool tensor (dtype=torch.bool): masked_fill(~mask, -inf) needs one.",
    EXACT_GELU: "CLIP ViT-L/14 uses quick-GELU, x * sigmoid(1.702 x), not F.gelu: the weights were trained with it.",
    TANH_GELU_NOT_QUICK: "Not the tanh formula: quick-GELU is x * sigmoid(1.702 x).",
    SILU_NOT_QUICK: "Multiply inside the sigmoid by 1.702: x * sigmoid(1.702 * x).",
    SIGMOID_ONLY: "The sigmoid is a gate: multiply it by x.",
    POSITIONS_MISSING: "Add the learned position vectors: position_embedding.weight[:L] (one per position 0..L-1).",
    POSITIONS_FROM_IDS: "Positions are 0, 1, ..., L-1, whatever the tokens: index the position table with "
                        "torch.arange(L), not with input_ids.",
    SCALED_BY_SQRT_D: "CLIP adds token and position vectors as they are, with no sqrt(d) factor.",
    POST_LN: "CLIP is pre-LN: x = x + self_attn(layer_norm1(x)); x = x + mlp(layer_norm2(x)). The LayerNorm comes "
             "before each sublayer, inside the residual branch, not after the sum.",
    NO_ATTENTION_RESIDUAL: "x = x + self_attn(layer_norm1(x)): add the layer's input back.",
    NO_MLP_RESIDUAL: "x = x + mlp(layer_norm2(x)): add the MLP's input back.",
    ONE_NORM_TWICE: "Each sublayer has its own LayerNorm: layer_norm1 before the attention, layer_norm2 before the MLP.",
    PAD_WITH_ZERO: "SD v1's tokenizer pads with its end token <|endoftext|> (eos_id). Id 0 is '!' in CLIP's "
                   "vocabulary: SD 2.x's pad token, not SD v1's.",
    LEFT_PADDING: "CLIP pads on the right: start token, the prompt, end token, then the padding.",
    END_TOKEN_CUT: "Cut the prompt's own tokens to length - 2 first, then add the start and end tokens: every row "
                   "ends its text with <|endoftext|>.",
    NO_START_TOKEN: "Every row starts with <|startoftext|> (bos_id), then the prompt's tokens.",
    NO_CAUSAL_MASK: "CLIP's text attention is causal: scores.masked_fill(~causal_mask(L), -inf) before the softmax "
                    "(sdcourse's CLIPAttention does it for you).",
}


def _hints(*names: str) -> Dict[str, str]:
    return _named({name: ADVICE[name] for name in names})


def _mistake(name: str, mistake: str, raise_on_failure: bool, detail: str = "") -> CheckResult:
    """A named mistake found without comparing numbers (a wrong dtype, ...)."""
    hint = (detail + " " + _hints(mistake)[mistake]).strip()
    return _finish(CheckResult(name, False, float("inf"), mistake=mistake, hint=hint), raise_on_failure)


def _shape_or_type(name: str, got, shape: tuple, raise_on_failure: bool) -> Optional[CheckResult]:
    """A failing result when `got` is not a tensor of `shape` (int sizes), else None."""
    if not isinstance(got, torch.Tensor):
        return _finish(CheckResult(name, False, float("inf"), hint=f"Expected a torch.Tensor, got {type(got).__name__}."),
                       raise_on_failure)
    if tuple(got.shape) != tuple(shape):
        return _finish(CheckResult(name, False, float("inf"),
                                   hint=f"Shape {tuple(got.shape)}, expected {tuple(shape)}."), raise_on_failure)
    return None


# --- the causal mask ------------------------------------------------------------------------------

def _mask(length: int, mistake: Optional[str] = None) -> torch.Tensor:
    """(L, L) bool, True where query i may look at key j (j <= i); or a typical mistake."""
    full = torch.ones(length, length, dtype=torch.bool)
    if mistake == MASK_UPPER:
        return full.triu()
    if mistake == MASK_NO_DIAGONAL:
        return full.tril(-1)
    if mistake == MASK_INVERTED:
        return full.triu(1)
    return full.tril()


def causal_mask_reference(length: int) -> torch.Tensor:
    """The reference answer: (L, L) bool, True on and below the diagonal."""
    return _mask(length)


register("causal_mask",
         "Row i is the query token i, column j the key token j. Which j may token i read while the text is "
         "read left to right?",
         "torch.ones(L, L, dtype=torch.bool) and one of torch.tril / torch.triu; mind the diagonal.")


@exercise("causal_mask", todo="return the (L, L) bool mask, True where key j <= query i (the lower triangle)",
          reference=lambda: causal_mask_reference)
def check_causal_mask(causal_mask: Callable, raise_on_failure: bool = True) -> CheckResult:
    """causal_mask(length) -> (length, length) bool, True where query i may attend to key j (j <= i)."""
    name = "causal_mask"
    length = 7
    got = _run(lambda: causal_mask(length), name)
    failed = _shape_or_type(name, got, (length, length), raise_on_failure)
    if failed is not None:
        return failed
    if got.dtype != torch.bool:
        kind = "an additive 0/-inf mask" if bool(torch.isinf(got.double()).any()) else f"dtype {got.dtype}"
        return _mistake(name, MASK_NOT_BOOL, raise_on_failure, f"Got {kind}.")
    mistakes = (MASK_UPPER, MASK_NO_DIAGONAL, MASK_INVERTED)
    # 0/1 masks: any wrong entry is 1 away; the tolerance 0.05 keeps every mistake 20 tolerances off
    return compare(name, got.double(), _mask(length).double(), {m: _mask(length, m).double() for m in mistakes},
                   _hints(*mistakes), general_hint="Expected torch.ones(L, L, dtype=torch.bool).tril().",
                   atol=0.05, raise_on_failure=raise_on_failure)


# --- quick-GELU -------------------------------------------------------------------------------------

def _quick_gelu(x: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    if mistake == EXACT_GELU:
        return F.gelu(x)
    if mistake == TANH_GELU_NOT_QUICK:
        return F.gelu(x, approximate="tanh")
    if mistake == SILU_NOT_QUICK:
        return x * torch.sigmoid(x)
    if mistake == SIGMOID_ONLY:
        return torch.sigmoid(1.702 * x)
    return x * torch.sigmoid(1.702 * x)


def quick_gelu_reference(x: torch.Tensor) -> torch.Tensor:
    """The reference answer: x * sigmoid(1.702 x), same shape."""
    return _quick_gelu(x)


register("quick_gelu",
         "One line: the input times a sigmoid of the input scaled by a constant.",
         "The constant makes sigmoid(c x) close to the normal CDF: look at the plot above.")


@exercise("quick_gelu", todo="CLIP's quick-GELU activation, elementwise, any shape", reference=lambda: quick_gelu_reference)
def check_quick_gelu(quick_gelu: Callable, raise_on_failure: bool = True) -> CheckResult:
    """quick_gelu(x) -> x * sigmoid(1.702 x), any shape."""
    name = "quick_gelu"
    with _seeded(0):
        x = torch.cat([torch.linspace(-6, 6, 97), 3 * torch.randn(63)]).view(2, 80)  # where the curves part: |x| ~ 1-3
    got = _run(lambda: quick_gelu(x.clone()), name)
    failed = _shape_or_type(name, got, x.shape, raise_on_failure)
    if failed is not None:
        return failed
    mistakes = (EXACT_GELU, TANH_GELU_NOT_QUICK, SILU_NOT_QUICK, SIGMOID_ONLY)
    return compare(name, got, _quick_gelu(x), {m: _quick_gelu(x, m) for m in mistakes}, _hints(*mistakes),
                   general_hint="Expected x * torch.sigmoid(1.702 * x).", raise_on_failure=raise_on_failure)


# --- the embeddings ---------------------------------------------------------------------------------

def _embeddings(module, ids: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """(B, L) ids -> (B, L, D) with the reference module's tables; or a typical mistake."""
    length = ids.shape[1]
    # (B, L) -> (B, L, D)
    tokens = module.token_embedding(ids)
    if mistake == SCALED_BY_SQRT_D:
        tokens = tokens * math.sqrt(tokens.shape[-1])
    if mistake == POSITIONS_MISSING:
        return tokens
    if mistake == POSITIONS_FROM_IDS:
        return tokens + module.position_embedding(ids)
    # (B, L, D) + (L, D) -> (B, L, D)
    return tokens + module.position_embedding.weight[:length]


def _reference_class(name: str):
    def reference():
        from .. import text_encoder
        return getattr(text_encoder, name)
    return reference


register("CLIPTextEmbeddings",
         "__init__: two nn.Embedding tables, token_embedding (vocab_size rows) and position_embedding "
         "(n_positions rows), both n_embd wide.",
         "forward: look the ids up in the token table; the positions are 0..L-1 (L = input_ids.shape[1], which "
         "can be less than n_positions); add the two.")


@exercise("CLIPTextEmbeddings", todo="token_embedding and position_embedding tables; forward adds the token "
          "vectors and the first L position vectors", reference=_reference_class("CLIPTextEmbeddings"))
def check_text_embeddings(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(vocab_size, n_positions, n_embd) with `token_embedding`, `position_embedding`;
    forward(input_ids (B, L), L <= n_positions) -> (B, L, n_embd)."""
    from ..text_encoder import CLIPTextEmbeddings

    name = "CLIPTextEmbeddings"
    vocab, positions, width = 60, 77, 16  # vocab < 77 so that the ids-as-positions mistake runs and is named
    with _seeded(0):
        reference = CLIPTextEmbeddings(vocab, positions, width)
        ids = torch.randint(0, vocab, (2, 12))  # L = 12 < 77: a prompt shorter than the table
    with _seeded(1):
        learner = _build(cls, name, vocab, positions, width)
    try:
        copy_weights(learner, reference)
    except ExerciseError as error:
        if raise_on_failure:
            raise
        return CheckResult(name, False, float("inf"), hint=str(error))
    got = _run(lambda: learner(ids.clone()), name)
    failed = _shape_or_type(name, got, (2, 12, width), raise_on_failure)
    if failed is not None:
        return failed
    mistakes = (POSITIONS_MISSING, POSITIONS_FROM_IDS, SCALED_BY_SQRT_D)
    with torch.no_grad():
        expected = _embeddings(reference, ids)
        candidates = {m: _embeddings(reference, ids, m) for m in mistakes}
    return compare(name, got, expected, candidates, _hints(*mistakes),
                   general_hint="Expected token_embedding(ids) + position_embedding.weight[:L].",
                   raise_on_failure=raise_on_failure)


# --- one CLIP layer ----------------------------------------------------------------------------------

def _attention(attn, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """CLIPAttention written out with the reference's projections: (B, L, D) -> (B, L, D)."""
    b, length, d = x.shape
    heads = attn.n_head

    def split(t):  # (B, L, D) -> (B, H, L, Dh)
        return t.view(b, length, heads, d // heads).transpose(1, 2)

    q, k, v = split(attn.q_proj(x)), split(attn.k_proj(x)), split(attn.v_proj(x))
    # (B, H, L, Dh) @ (B, H, Dh, L) -> (B, H, L, L)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // heads)
    if causal:
        scores = scores.masked_fill(~_mask(length), float("-inf"))
    # (B, H, L, L) @ (B, H, L, Dh) -> (B, H, L, Dh) -> (B, L, D)
    out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, length, d)
    return attn.out_proj(out)


def _layer(layer, x: torch.Tensor, mistake: Optional[str] = None) -> torch.Tensor:
    """CLIPLayer.forward written out with the reference layer's modules; or a typical mistake."""
    ln1, ln2 = layer.layer_norm1, layer.layer_norm2
    if mistake == ONE_NORM_TWICE:
        ln2 = ln1
    activation = F.gelu if mistake == EXACT_GELU else _quick_gelu

    def attention(h):
        return _attention(layer.self_attn, h, causal=mistake != NO_CAUSAL_MASK)

    def mlp(h):  # (B, L, D) -> (B, L, d_mlp) -> (B, L, D)
        return layer.mlp.fc2(activation(layer.mlp.fc1(h)))

    if mistake == POST_LN:
        x = ln1(x + attention(x))
        return ln2(x + mlp(x))
    x = attention(ln1(x)) if mistake == NO_ATTENTION_RESIDUAL else x + attention(ln1(x))
    return mlp(ln2(x)) if mistake == NO_MLP_RESIDUAL else x + mlp(ln2(x))


register("CLIPLayer",
         "__init__: layer_norm1, self_attn (sdcourse's CLIPAttention(n_head, n_embd)), layer_norm2, mlp (the MLP "
         "class above); LayerNorm eps from config.layer_norm_eps.",
         "forward: two residual steps. In each, normalise a copy of x, run the sublayer on it, and add the result "
         "to x. Which comes first: the norm or the sum?")


@exercise("CLIPLayer", todo="build layer_norm1, self_attn, layer_norm2, mlp; forward: the pre-LayerNorm "
          "layer with its two residuals", reference=_reference_class("CLIPLayer"))
def check_clip_layer(cls, raise_on_failure: bool = True) -> CheckResult:
    """cls(config) with layer_norm1, self_attn (q/k/v/out_proj), layer_norm2, mlp (fc1, fc2);
    forward(x (B, L, n_embd)) -> (B, L, n_embd). Checked on perturbed weights (LayerNorms off 1 and 0)."""
    from ..text_encoder import CLIPLayer, TextEncoderConfig

    name = "CLIPLayer"
    config = TextEncoderConfig.tiny(n_embd=32, n_head=4, d_mlp=64)
    with _seeded(0):
        reference = perturb_(CLIPLayer(config), seed=3)
        x = 2 * torch.randn(2, 9, 32)
    with _seeded(1):
        learner = _build(cls, name, config)
    try:
        copy_weights(learner, reference)
    except ExerciseError as error:
        if raise_on_failure:
            raise
        return CheckResult(name, False, float("inf"), hint=str(error))
    got = _run(lambda: learner(x.clone()), name)
    failed = _shape_or_type(name, got, x.shape, raise_on_failure)
    if failed is not None:
        return failed
    mistakes = (POST_LN, NO_ATTENTION_RESIDUAL, NO_MLP_RESIDUAL, ONE_NORM_TWICE, EXACT_GELU, NO_CAUSAL_MASK)
    with torch.no_grad():
        expected = _layer(reference, x)
        candidates = {m: _layer(reference, x, m) for m in mistakes}
    return compare(name, got, expected, candidates, _hints(*mistakes),
                   general_hint="Expected x = x + self_attn(layer_norm1(x)); return x + mlp(layer_norm2(x)).",
                   raise_on_failure=raise_on_failure)


# --- padding and truncation to 77 -----------------------------------------------------------------------

def _pad(token_ids, bos_id: int, eos_id: int, length: int, mistake: Optional[str] = None) -> torch.Tensor:
    """The prompt's BPE ids (no special tokens) -> (length,) long: start, ids, end, padding; or a mistake."""
    ids = list(token_ids)
    if mistake == END_TOKEN_CUT:
        row = ([bos_id] + ids + [eos_id])[:length]
    elif mistake == NO_START_TOKEN:
        row = ids[: length - 1] + [eos_id]
    else:
        row = [bos_id] + ids[: length - 2] + [eos_id]
    padding = [0 if mistake == PAD_WITH_ZERO else eos_id] * (length - len(row))
    return torch.tensor(padding + row if mistake == LEFT_PADDING else row + padding, dtype=torch.long)


def pad_prompt_reference(token_ids, bos_id: int, eos_id: int, length: int = 77) -> torch.Tensor:
    """The reference answer: (length,) long, [bos] + token_ids[:length - 2] + [eos] + [eos] * (padding)."""
    return _pad(token_ids, bos_id, eos_id, length)


register("pad_prompt",
         "Three parts: the start token, the prompt's tokens (at most length - 2 of them), the end token; then "
         "fill up to `length`.",
         "Which token fills the rest in SD v1? Print tokenize(tokenizer, 'a cat')[0] above and look.")


@exercise("pad_prompt", todo="start token, at most length - 2 of the prompt's tokens, end token, then "
          "padding up to length: a long tensor",
          reference=lambda: pad_prompt_reference)
def check_pad_prompt(pad_prompt: Callable, raise_on_failure: bool = True) -> CheckResult:
    """pad_prompt(token_ids (list of int), bos_id, eos_id, length) -> (length,) integer tensor.
    Checked on a short prompt and on one longer than `length` (ids like the tiny tokenizer's)."""
    name = "pad_prompt"
    bos, eos, length = 641, 642, 77
    with _seeded(0):
        short = torch.randint(1, 600, (6,)).tolist()
        long = torch.randint(1, 600, (90,)).tolist()
    rows = []
    for ids in (short, long):
        got = _run(lambda: pad_prompt(list(ids), bos, eos, length), name)
        failed = _shape_or_type(name, got, (length,), raise_on_failure)
        if failed is not None:
            return failed
        if got.is_floating_point() or got.is_complex() or got.dtype == torch.bool:
            return _finish(CheckResult(name, False, float("inf"), hint=f"Token ids must be integers (torch.long), "
                                       f"got {got.dtype}: torch.tensor(list_of_ints) gives torch.long."),
                           raise_on_failure)
        rows.append(got.double())
    mistakes = (PAD_WITH_ZERO, LEFT_PADDING, END_TOKEN_CUT, NO_START_TOKEN)

    def both(mistake=None):  # (2, length): the short and the long prompt
        return torch.stack([_pad(ids, bos, eos, length, mistake) for ids in (short, long)]).double()

    # integer ids: any wrong entry is at least 1 away; the tolerance 0.05 keeps every mistake 20 tolerances off
    return compare(name, torch.stack(rows), both(), {m: both(m) for m in mistakes}, _hints(*mistakes),
                   general_hint="Expected [bos] + ids[:length - 2] + [eos], padded with eos to `length`.",
                   atol=0.05, raise_on_failure=raise_on_failure)
