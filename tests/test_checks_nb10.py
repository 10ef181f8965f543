"""The exercise checkers of notebook 10 (causal mask, quick-GELU, CLIP's embeddings, one CLIP layer):
a stub gives [todo] and the reference, a right answer passes and is returned, each named mistake is
named and lies at least 10x the tolerance away from the right answer.

Every answer, right or wrong, is written here as a learner would (its own code, not sdcourse's), so
a checker that computed a mistake's output wrongly would not recognise it. Independent facts: the
quick-GELU constant 1.702 (CLIP's paper/code), the pre-LN order of transformers' CLIPEncoderLayer.
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
from sdcourse.checks import nb10_text_encoder as nb10
from sdcourse.checks.core import MARGINS
from sdcourse.text_encoder import CLIPAttention, CLIPTextEncoder, TextEncoderConfig

from checker_asserts import StubModule, assert_names, assert_todo_then_reference, stub, verdict


# --- the causal mask ---------------------------------------------------------------------------------

def mask_answer(bug=None):
    def causal_mask(length):
        i = torch.arange(length)[:, None]  # query
        j = torch.arange(length)[None, :]  # key
        if bug == "additive":
            return torch.zeros(length, length).masked_fill(j > i, float("-inf"))
        if bug == "float":
            return (j <= i).float()
        return {None: j <= i, "upper": j >= i, "no-diagonal": j < i, "inverted": j > i}[bug]
    return causal_mask


def test_causal_mask_passes_and_stub_gives_the_reference(capsys):
    answer = mask_answer()
    assert checks.check_causal_mask(answer) is answer
    assert "[ok] causal_mask" in capsys.readouterr().out
    reference = checks.check_causal_mask.reference()
    assert_todo_then_reference(checks.check_causal_mask, stub, reference, capsys)
    assert torch.equal(reference(5), sdcourse.text_encoder.causal_mask(5))
    assert reference(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]


@pytest.mark.parametrize("bug, mistake", [
    ("upper", nb10.MASK_UPPER), ("no-diagonal", nb10.MASK_NO_DIAGONAL), ("inverted", nb10.MASK_INVERTED),
    ("additive", nb10.MASK_NOT_BOOL), ("float", nb10.MASK_NOT_BOOL),
])
def test_causal_mask_names_the_mistake(bug, mistake):
    assert_names(checks.check_causal_mask, mask_answer(bug), mistake)


def test_causal_mask_refuses_a_wrong_shape():
    result = verdict(checks.check_causal_mask, lambda length: torch.ones(length, dtype=torch.bool))
    assert not result.passed and "expected (7, 7)" in result.hint


# --- quick-GELU ----------------------------------------------------------------------------------------

def gelu_answer(bug=None):
    def quick_gelu(x):
        if bug == "exact":
            return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
        if bug == "tanh":
            return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        if bug == "silu":
            return x / (1 + torch.exp(-x))
        if bug == "gate-only":
            return 1 / (1 + torch.exp(-1.702 * x))
        return x / (1 + torch.exp(-1.702 * x))
    return quick_gelu


def test_quick_gelu_passes_and_stub_gives_the_reference(capsys):
    answer = gelu_answer()
    assert checks.check_quick_gelu(answer) is answer
    assert "[ok] quick_gelu" in capsys.readouterr().out
    reference = checks.check_quick_gelu.reference()
    assert_todo_then_reference(checks.check_quick_gelu, stub, reference, capsys)
    x = torch.linspace(-3, 3, 11)
    assert torch.allclose(reference(x), sdcourse.text_encoder.quick_gelu(x))


@pytest.mark.parametrize("bug, mistake", [
    ("exact", nb10.EXACT_GELU), ("tanh", nb10.TANH_GELU_NOT_QUICK), ("silu", nb10.SILU_NOT_QUICK),
    ("gate-only", nb10.SIGMOID_ONLY),
])
def test_quick_gelu_names_the_mistake(bug, mistake):
    assert_names(checks.check_quick_gelu, gelu_answer(bug), mistake)


# --- the embeddings --------------------------------------------------------------------------------------

def embeddings_class(bug=None):
    class Embeddings(nn.Module):
        def __init__(self, vocab_size, n_positions, n_embd):
            super().__init__()
            self.token_embedding = nn.Embedding(vocab_size, n_embd)
            self.position_embedding = nn.Embedding(n_positions, n_embd)

        def forward(self, input_ids):
            tokens = self.token_embedding.weight[input_ids]
            if bug == "sqrt-d":
                tokens = tokens * tokens.shape[-1] ** 0.5
            if bug == "no-positions":
                return tokens
            positions = input_ids if bug == "ids" else torch.arange(input_ids.shape[1])[None, :]
            return tokens + self.position_embedding(positions)
    return Embeddings


def test_embeddings_pass_and_stub_gives_the_reference(capsys):
    cls = embeddings_class()
    assert checks.check_text_embeddings(cls) is cls
    assert "[ok] CLIPTextEmbeddings" in capsys.readouterr().out
    assert_todo_then_reference(checks.check_text_embeddings, StubModule, sdcourse.text_encoder.CLIPTextEmbeddings,
                               capsys)
    assert verdict(checks.check_text_embeddings, sdcourse.text_encoder.CLIPTextEmbeddings).passed


@pytest.mark.parametrize("bug, mistake", [
    ("no-positions", nb10.POSITIONS_MISSING), ("ids", nb10.POSITIONS_FROM_IDS), ("sqrt-d", nb10.SCALED_BY_SQRT_D),
])
def test_embeddings_name_the_mistake(bug, mistake):
    assert_names(checks.check_text_embeddings, embeddings_class(bug), mistake)


def test_embeddings_adding_all_77_positions_is_refused():
    class AllPositions(embeddings_class()):
        def forward(self, input_ids):
            return self.token_embedding(input_ids) + self.position_embedding.weight  # (B, 12, D) + (77, D)

    with pytest.raises(ExerciseError, match="RuntimeError"):
        checks.check_text_embeddings(AllPositions)


def test_embeddings_wrong_names_are_refused():
    class Renamed(nn.Module):
        def __init__(self, vocab_size, n_positions, n_embd):
            super().__init__()
            self.tok = nn.Embedding(vocab_size, n_embd)
            self.pos = nn.Embedding(n_positions, n_embd)

    result = verdict(checks.check_text_embeddings, Renamed)
    assert not result.passed and "token_embedding.weight" in result.hint


# --- one CLIP layer --------------------------------------------------------------------------------------

class LearnerAttention(nn.Module):
    """Causal self-attention as a learner writes it (same names as CLIP's), with switches."""

    def __init__(self, n_head, n_embd, causal=True):
        super().__init__()
        self.n_head, self.causal = n_head, causal
        self.q_proj, self.k_proj = nn.Linear(n_embd, n_embd), nn.Linear(n_embd, n_embd)
        self.v_proj, self.out_proj = nn.Linear(n_embd, n_embd), nn.Linear(n_embd, n_embd)

    def forward(self, x):
        b, length, d = x.shape
        q, k, v = (p(x).unflatten(-1, (self.n_head, -1)).permute(0, 2, 1, 3)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        scores = q @ k.mT / math.sqrt(d // self.n_head)
        if self.causal:
            scores = scores + torch.full((length, length), float("-inf")).triu(1)
        out = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).flatten(2)
        return self.out_proj(out)


class LearnerMLP(nn.Module):
    def __init__(self, n_embd, d_mlp, exact=False):
        super().__init__()
        self.fc1, self.fc2, self.exact = nn.Linear(n_embd, d_mlp), nn.Linear(d_mlp, n_embd), exact

    def forward(self, x):
        h = self.fc1(x)
        h = F.gelu(h) if self.exact else h * torch.sigmoid(1.702 * h)
        return self.fc2(h)


def layer_class(bug=None, use_sdcourse_attention=False):
    class Layer(nn.Module):
        def __init__(self, config):
            super().__init__()
            d = config.n_embd
            self.layer_norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
            if use_sdcourse_attention:
                self.self_attn = CLIPAttention(config.n_head, d)
            else:
                self.self_attn = LearnerAttention(config.n_head, d, causal=bug != "no-mask")
            self.layer_norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
            self.mlp = LearnerMLP(d, config.d_mlp, exact=bug == "exact-gelu")

        def forward(self, x):
            if bug == "post-ln":
                x = self.layer_norm1(x + self.self_attn(x))
                return self.layer_norm2(x + self.mlp(x))
            a = self.self_attn(self.layer_norm1(x))
            x = a if bug == "no-attn-residual" else x + a
            m = self.mlp((self.layer_norm1 if bug == "one-norm" else self.layer_norm2)(x))
            return m if bug == "no-mlp-residual" else x + m
    return Layer


def test_clip_layer_passes_and_stub_gives_the_reference(capsys):
    for cls in (layer_class(), layer_class(use_sdcourse_attention=True)):
        assert checks.check_clip_layer(cls) is cls
    assert capsys.readouterr().out.count("[ok] CLIPLayer") == 2
    assert_todo_then_reference(checks.check_clip_layer, StubModule, sdcourse.text_encoder.CLIPLayer, capsys)
    assert verdict(checks.check_clip_layer, sdcourse.text_encoder.CLIPLayer).passed


@pytest.mark.parametrize("bug, mistake", [
    ("post-ln", nb10.POST_LN), ("no-attn-residual", nb10.NO_ATTENTION_RESIDUAL),
    ("no-mlp-residual", nb10.NO_MLP_RESIDUAL), ("one-norm", nb10.ONE_NORM_TWICE),
    ("exact-gelu", nb10.EXACT_GELU), ("no-mask", nb10.NO_CAUSAL_MASK),
])
def test_clip_layer_names_the_mistake(bug, mistake):
    assert_names(checks.check_clip_layer, layer_class(bug), mistake)


# --- margins, hints, the hook the notebook uses --------------------------------------------------------------

def test_named_mistakes_are_far_from_the_answer():
    MARGINS.clear()
    checks.check_causal_mask(mask_answer())
    checks.check_quick_gelu(gelu_answer())
    checks.check_text_embeddings(embeddings_class())
    checks.check_clip_layer(layer_class())
    seen = {(check, mistake) for check, mistake, _ in MARGINS}
    assert len(seen) == 3 + 4 + 3 + 6
    for check, mistake, ratio in MARGINS:
        assert ratio >= 10, (check, mistake, ratio)


def test_every_exercise_has_a_hint(capsys):
    for name in ("pad_prompt", "causal_mask", "quick_gelu", "CLIPTextEmbeddings", "CLIPLayer"):
        checks.hint(name)
        assert capsys.readouterr().out.startswith(f"[hint] {name}:")


def test_checkers_leave_the_learners_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    checks.check_clip_layer(layer_class())
    checks.check_text_embeddings(embeddings_class())
    assert torch.equal(torch.rand(3), expected)


def test_dropping_the_causal_mask_lets_early_tokens_see_later_ones():
    torch.manual_seed(0)
    model = CLIPTextEncoder(TextEncoderConfig.tiny()).eval()
    a, b = torch.tensor([[998, 5, 6, 7, 999]]), torch.tensor([[998, 5, 6, 8, 999]])  # differ at position 3
    with torch.no_grad():
        assert torch.equal(model(a)[0, :3], model(b)[0, :3])  # causal: positions 0..2 cannot see position 3
        for layer in model.encoder.layers:
            layer.self_attn.causal = False
        fast = model(a)
        assert (fast[0, :3] - model(b)[0, :3]).abs().max() > 1e-2
        layer.self_attn.explicit = True  # the explicit path drops the mask too
        assert torch.allclose(model(a), fast, atol=1e-5)


# --- padding and truncation --------------------------------------------------------------------------------

def pad_answer(bug=None):
    def pad_prompt(token_ids, bos_id, eos_id, length=77):
        if bug == "cut-after":
            row = [bos_id, *token_ids, eos_id][:length]
        elif bug == "no-start":
            row = [*token_ids[: length - 1], eos_id]
        else:
            row = [bos_id, *token_ids[: length - 2], eos_id]
        fill = [0 if bug == "zero" else eos_id for _ in range(length - len(row))]
        return torch.tensor(fill + row if bug == "left" else row + fill)
    return pad_prompt


def test_pad_prompt_passes_and_stub_gives_the_reference(capsys):
    answer = pad_answer()
    assert checks.check_pad_prompt(answer) is answer
    assert "[ok] pad_prompt" in capsys.readouterr().out
    assert_todo_then_reference(checks.check_pad_prompt, stub, checks.check_pad_prompt.reference(), capsys)


def test_pad_prompt_reference_equals_the_clip_tokenizer(tmp_path):
    from transformers import CLIPTokenizer

    from sdcourse.pipeline import write_tiny_tokenizer

    tok = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path))
    reference = checks.check_pad_prompt.reference()
    for prompt in ("a red cat", "a photo of a dog on the grass " * 12):  # short, and longer than 77 tokens
        ids = tok(prompt, add_special_tokens=False).input_ids
        expected = tok(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids[0]
        assert torch.equal(reference(ids, tok.bos_token_id, tok.eos_token_id), expected), prompt


@pytest.mark.parametrize("bug, mistake", [
    ("zero", nb10.PAD_WITH_ZERO), ("left", nb10.LEFT_PADDING), ("cut-after", nb10.END_TOKEN_CUT),
    ("no-start", nb10.NO_START_TOKEN),
])
def test_pad_prompt_names_the_mistake(bug, mistake):
    assert_names(checks.check_pad_prompt, pad_answer(bug), mistake)


def test_pad_prompt_refuses_float_ids_and_wrong_lengths():
    result = verdict(checks.check_pad_prompt, lambda ids, bos, eos, length=77: pad_answer()(ids, bos, eos, length).float())
    assert not result.passed and "integers" in result.hint
    result = verdict(checks.check_pad_prompt, lambda ids, bos, eos, length=77: torch.tensor([bos, *ids, eos]))
    assert not result.passed and "expected (77,)" in result.hint


def test_pad_prompt_mistakes_are_far_from_the_answer():
    MARGINS.clear()
    checks.check_pad_prompt(pad_answer())
    assert len({mistake for _, mistake, _ in MARGINS}) == 4
    assert all(ratio >= 10 for _, _, ratio in MARGINS), MARGINS


def test_notebook_10_offers_registered_hints_and_working_solution_links():
    """Each `checks.hint("x")` notebook 10 mentions exists, and each self-link's anchor is one of its
    headings, written as JupyterLab makes it (spaces -> '-')."""
    import json
    from pathlib import Path

    from sdcourse.checks.hints import HINTS

    path = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "10_text_encoder.ipynb"
    cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
             for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
    text = "\n".join(cells)
    named = re.findall(r'checks\.hint\("([^"]+)"\)', text)
    assert sorted(set(named)) == sorted(["pad_prompt", "CLIPTextEmbeddings", "causal_mask", "quick_gelu", "CLIPLayer"])
    assert all(n in HINTS for n in named)
    headings = {line.lstrip("#").strip().replace(" ", "-") for line in text.splitlines() if line.startswith("#")}
    anchors = re.findall(re.escape(path.name) + r"#([^)\s]+)\)", text)
    assert len(anchors) >= sum('checks.hint("' in c for c in cells) == 5  # every exercise links its solution
    assert [a for a in anchors if a not in headings] == []
