"""One switch, one table: sdcourse speaks Chinese after set_language("zh"), every message in the code
has its Chinese entry, and what a learner reads (checker lines, hints, widgets, figures, errors)
has no English sentence left."""
import re
import sys
from pathlib import Path

import pytest
import torch

import sdcourse
from sdcourse import i18n
from sdcourse.messages_zh import MESSAGES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import messages  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_SENTENCE = re.compile(r"[A-Za-z]{2,}(?:[ ,;:]+[A-Za-z]{2,}){4,}")  # five English words in a row


@pytest.fixture
def zh():
    sdcourse.set_language("zh")
    yield
    sdcourse.set_language("en")


def _english_left(text: str) -> list:
    """Five English words in a row, outside `code`, identifiers and shapes: an untranslated sentence."""
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\b\w+[._]\w+(\([^)]*\))?", " ", text)  # F.silu, linear_time(...), x.view(...)
    return ENGLISH_SENTENCE.findall(text)


# --- the table covers the code ------------------------------------------------------------------

def test_every_message_has_a_chinese_entry():
    keys = {**messages.extract_notebooks(), **messages.extract()}
    assert len(keys) > 500, f"only {len(keys)} messages found: is scripts/messages.py still finding them?"
    missing = {k: v[0] for k, v in keys.items() if k not in MESSAGES}
    assert not missing, f"{len(missing)} messages lack Chinese (scripts/messages.py missing): " + "; ".join(
        f"{where}: {key!r}" for key, where in list(missing.items())[:8])


def test_no_entry_is_left_over():
    keys = {**messages.extract_notebooks(), **messages.extract()}
    literals = messages.all_literals()  # labels held in variables, drawn through the set_text hook
    unused = [k for k in MESSAGES if k not in keys and k not in literals]
    assert not unused, f"entries no message uses any more (scripts/messages.py unused): {unused[:8]}"


def test_entries_keep_their_values_and_are_chinese():
    for key, chinese in MESSAGES.items():
        assert isinstance(chinese, str) and chinese.strip(), f"{key!r}: empty translation"
        n = len(i18n._split(key)) - 1
        numbered = sorted({int(m) for m in re.findall(r"\{(\d+)\}", chinese)})
        plain = len(re.findall(r"(?<!\{)\{\}(?!\})", chinese))
        assert (plain == n and not numbered) or (not plain and numbered == list(range(n))), (
            f"{key!r} has {n} values, its Chinese {chinese!r} does not place exactly {n}")
        if messages.is_prose(i18n._split(key)[0] + " " + " ".join(i18n._split(key)[1:])):
            assert CJK.search(chinese), f"{key!r}: the translation has no Chinese"


def test_extraction_sees_messages_and_skips_code(tmp_path):
    assert messages.is_prose("residual forgotten")
    assert not messages.is_prose("in_proj.bias")
    assert not messages.is_prose("sinusoidal_embedding(t, dim={})")


# --- the switch ------------------------------------------------------------------------------------

def test_english_is_unchanged_and_unknown_languages_are_refused():
    assert sdcourse.get_language() == "en"
    assert i18n.tr("sin and cos swapped") == "sin and cos swapped"
    with pytest.raises(ValueError, match="unknown language 'fr'.*zh"):
        sdcourse.set_language("fr")


def test_tr_fills_values_and_translates_embedded_messages(zh):
    line = i18n.tr("It looks like: sin and cos swapped.")
    assert "sin and cos swapped" not in line and CJK.search(line)
    shape = i18n.tr("Shape (1, 2), expected (1, 4).")
    assert "(1, 2)" in shape and "(1, 4)" in shape and CJK.search(shape)
    assert i18n.fill("{1} 与 {0}", ["a", "b"]) == "b 与 a"
    assert i18n.fill("{{x}} {}", ["1"]) == "{x} 1"


def test_figure_text_stays_english_without_a_chinese_font(zh, monkeypatch):
    monkeypatch.setattr(i18n, "cjk_font", lambda: None)
    assert i18n.tr("three activations", figure=True) == "three activations"
    assert i18n.tr("three activations") != "three activations"


def test_figure_text_set_by_notebook_code_is_translated(zh):
    if i18n.cjk_font() is None:
        pytest.skip("no font with Chinese glyphs on this machine (Debian: fonts-noto-cjk)")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.set_title("three activations")
    ax.set_xlabel("step 3, t = 500")
    assert CJK.search(ax.get_title()) and "500" in ax.get_xlabel() and CJK.search(ax.get_xlabel())
    plt.close(fig)


# --- what a learner reads in zh --------------------------------------------------------------------

def _wrong_sinusoidal(t, dim):
    e = sdcourse.sinusoidal_embedding(t, dim)
    return torch.cat([e[:, dim // 2:], e[:, : dim // 2]], dim=-1)


def _stub(*args, **kwargs):
    raise NotImplementedError()


def _grouped_norm_with_eps_outside(x, num_groups, weight, bias, eps=1e-5):
    b, c, h, w = x.shape
    g = x.view(b, num_groups, -1)
    y = (g - g.mean(-1, keepdim=True)) / (g.var(-1, unbiased=False, keepdim=True).sqrt() + eps)
    return y.view(b, c, h, w) * weight[None, :, None, None] + bias[None, :, None, None]


def _uses_the_shortcut(x, num_groups, weight, bias, eps=1e-5):
    return torch.nn.functional.group_norm(x, num_groups, weight, bias, eps)


CASES = [
    ("check_sinusoidal_embedding", _stub),
    ("check_sinusoidal_embedding", _wrong_sinusoidal),
    ("check_sinusoidal_embedding", sdcourse.sinusoidal_embedding),
    ("check_groupnorm", _grouped_norm_with_eps_outside),
    ("check_groupnorm", _uses_the_shortcut),
    ("check_groupnorm", lambda *a, **k: 1 / 0),
]


@pytest.mark.parametrize("checker, answer", CASES, ids=[f"{c}-{getattr(a, '__name__', 'lambda')}" for c, a in CASES])
def test_checker_lines_are_chinese(zh, checker, answer, capsys):
    from sdcourse import checks

    try:
        getattr(checks, checker)(answer)
        shown = capsys.readouterr().out
    except checks.ExerciseError as error:
        shown = str(error)
    assert re.match(r"\[(ok|todo|wrong)\]", shown), shown
    assert CJK.search(shown), f"no Chinese in: {shown}"
    assert not _english_left(shown), f"English left in: {shown}"


def test_hints_are_chinese(zh, capsys):
    from sdcourse import checks

    for name in sorted(checks.hints.HINTS):
        checks.hint(name)
    shown = capsys.readouterr().out
    lines = [line for line in shown.splitlines() if line.startswith("[hint]")]
    assert lines and all(CJK.search(line) for line in lines)
    left = [line for line in lines if _english_left(line)]
    assert not left, f"hints with English left: {left[:3]}"
    with pytest.raises(ValueError) as error:
        checks.hint("no such exercise")
    assert CJK.search(str(error.value))


def test_an_input_error_is_chinese(zh):
    config = sdcourse.UNetConfig.tiny()
    with torch.device("meta"):
        model = sdcourse.Diffusion(config)
        latent = torch.empty(1, 4, 13, 16)  # 13 is not a multiple of 8
        context, time = torch.empty(1, 77, config.d_context), torch.empty(1, config.n_time_embd)
    with pytest.raises(ValueError) as error:
        model(latent, context, time)
    assert "13" in str(error.value) and CJK.search(str(error.value)), str(error.value)
