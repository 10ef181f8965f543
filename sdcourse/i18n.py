"""The language the course speaks at run time: English (the default) or Chinese.

    import sdcourse
    sdcourse.set_language("zh")      # or SDCOURSE_LANG=zh in the environment before the import

What the switch changes: the checkers' lines (`[ok]`, `[todo]`, `[wrong]`, `[hint]`), the widgets'
labels and titles, figure titles and axis labels, and the errors a learner is likely to meet.

Every message is written once, in English, where it is shown; `tr(message)` looks it up in one
table, `sdcourse/messages_zh.py` (English -> Chinese). A message built from values is one entry
with `{}` where the values go, exactly as its f-string reads with each `{...}` written `{}`:

    f"Shape {tuple(got.shape)}, expected {tuple(expected.shape)}."  ->  key "Shape {}, expected {}."
    "形状为 {}，应为 {}。"                                           <-  its Chinese ({0}, {1} reorder)

A message that embeds other messages (a hint naming a mistake) is translated piece by piece,
the longest entry first, so `tr` can be applied once, to the finished text. What the table lacks
stays English; tests/test_i18n.py checks that the table covers every message in the code.
Figures need a font with Chinese glyphs: without one, figure text stays English (no empty boxes).
"""
from __future__ import annotations

import functools
import os
import re
from typing import Dict, List, Optional, Tuple

LANGUAGES = ("en", "zh")
# Fonts with Chinese glyphs, best first: Debian/Ubuntu `fonts-noto-cjk` (what CI and the zh
# notebooks' Colab cell install), WenQuanYi (`fonts-wqy-microhei`), and the macOS / Windows ones.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
             "WenQuanYi Zen Hei", "PingFang SC", "Heiti SC", "Microsoft YaHei", "SimHei")

CJK_MONO_FONTS = ("Noto Sans Mono CJK SC", "WenQuanYi Micro Hei Mono", "WenQuanYi Zen Hei Mono")
CJK_FILES = ("notosanscjk", "notosanssc", "sourcehansans", "wqy-microhei", "wqy-zenhei")

_language = os.environ.get("SDCOURSE_LANG", "en").strip().lower() or "en"
if _language not in LANGUAGES:
    _language = "en"


def set_language(language: str) -> None:
    """Speak `language` ("en" or "zh") from now on: checkers, widgets, figures and errors."""
    global _language
    if not isinstance(language, str) or language.strip().lower() not in LANGUAGES:
        raise ValueError(f"set_language: unknown language {language!r}; use one of {', '.join(LANGUAGES)} "
                         "(\"zh\" for Chinese, \"en\" for English).")
    _language = language.strip().lower()
    if _language == "zh":
        use_cjk_font()
        translate_figure_text()


def get_language() -> str:
    return _language


# --- the table and how a message is looked up -------------------------------------------------

PLACEHOLDER = re.compile(r"\{(\d*)\}")


def _split(key: str) -> List[str]:
    """A key's literal parts, around its `{}` placeholders (`{{` and `}}` are literal braces)."""
    parts, current, i = [], "", 0
    while i < len(key):
        if key.startswith("{{", i) or key.startswith("}}", i):
            current, i = current + key[i], i + 2
        elif key.startswith("{}", i):
            parts.append(current)
            current, i = "", i + 2
        else:
            current, i = current + key[i], i + 1
    return parts + [current]


def _pattern(key: str) -> "re.Pattern[str]":
    parts = _split(key.strip())
    escaped = [re.escape(p) for p in parts]
    # after a value, a "." ends the sentence only if no digit follows: "by 3.57." keeps 3.57 whole
    escaped = [e if i == 0 or not p.startswith(".") else r"\.(?!\d)" + e[2:] for i, (p, e) in enumerate(zip(parts, escaped))]
    body = "".join(e + ("(.+?)" if i < len(parts) - 1 else "") for i, e in enumerate(escaped))
    if parts[-1] == "":  # ends with a value: take the rest of the line
        body = body[: -len("(.+?)")] + "([^\n]+)"
    # a word of a message, not part of a name: no letter, digit, _ or . (attribute) around it
    start = r"(?<![A-Za-z0-9_.])" if re.match(r"[A-Za-z_]", key.strip()) else ""
    end = r"(?![A-Za-z0-9_(])" if re.search(r"[A-Za-z_]$", key.strip()) else ""
    return re.compile(start + body + end)


def fill(template: str, values) -> str:
    """Put `values` into a table entry: `{}` in order, `{0}`, `{1}` by position, `{{`/`}}` braces."""
    values, counter = list(values), iter(range(len(values)))
    out, i = "", 0
    while i < len(template):
        if template.startswith("{{", i) or template.startswith("}}", i):
            out, i = out + template[i], i + 2
            continue
        match = PLACEHOLDER.match(template, i)
        if match:
            out += values[int(match[1]) if match[1] else next(counter)]
            i = match.end()
        else:
            out, i = out + template[i], i + 1
    return out


_SENTENCE = re.compile(r"[.!?:/()\[\]<>|]")
_PLAIN_WORD = re.compile(r"^[(\"']?[A-Za-z]{2,}(?:-[A-Za-z]{2,})*[.,:;!?)\"']*$")


def _whole_only(key: str) -> bool:
    """A one-word label ("final", "noise, {}") is translated only when it is the whole text: the
    same word inside a message is usually code (`self.final`, `fn(x0, noise, alpha_bar)`)."""
    literal = " ".join(_split(key))
    words = sum(bool(_PLAIN_WORD.match(token)) for token in literal.split())
    return words <= 1 and not _SENTENCE.search(literal)


@functools.lru_cache(maxsize=None)
def _compiled(language: str) -> Tuple[Tuple["re.Pattern[str]", str], ...]:
    table = table_of(language)
    order = sorted(table, key=lambda k: -len("".join(_split(k))))  # the longest literal text first
    compiled = []
    for key in order:
        if not "".join(_split(key)).strip():
            continue
        pattern = _pattern(key)
        if _whole_only(key):
            pattern = re.compile(r"^\s*" + pattern.pattern + r"\s*$")
        compiled.append((pattern, table[key]))
    return tuple(compiled)


def table_of(language: str) -> Dict[str, str]:
    if language == "zh":
        from .messages_zh import MESSAGES
        return MESSAGES
    return {}


def tr(message: str, figure: bool = False) -> str:
    """`message` in the current language (unchanged in English, or where the table lacks it).
    figure=True: text drawn by matplotlib, translated only when a font has Chinese glyphs."""
    if _language == "en" or not isinstance(message, str) or not message:
        return message
    if figure and cjk_font() is None:
        return message
    original = message
    for pattern, chinese in _compiled(_language):
        if pattern.search(message):
            message = pattern.sub(lambda m, c=chinese: fill(c, m.groups()), message)
    if message == original and _MISSES and re.search(r"[A-Za-z]{3,}", message):
        _record_miss(message)
    return tidy(message)


# SDCOURSE_I18N_MISSES=file: append every text tr() leaves unchanged, to find what the table lacks
# (e.g. `SDCOURSE_I18N_MISSES=/tmp/misses.txt python scripts/regenerate_notebooks.py --language zh`).
_MISSES = os.environ.get("SDCOURSE_I18N_MISSES", "")


def _record_miss(message: str) -> None:
    with open(_MISSES, "a", encoding="utf-8") as f:
        f.write(message.replace("\n", "\\n") + "\n")


def tidy(text: str) -> str:
    """Sentences joined with " " in English: in Chinese, no space after Chinese punctuation or
    between two Chinese characters. Unchanged in English."""
    if _language == "en":
        return text
    text = re.sub(r"(?<=[。，：；！？）])[ \t]+", "", text)
    return re.sub(r"(?<=[\u4e00-\u9fff])[ \t]+(?=[\u4e00-\u9fff])", "", text)


# --- a font for Chinese figure text -----------------------------------------------------------

@functools.lru_cache(maxsize=None)
def cjk_font() -> Optional[str]:
    """The first installed font of CJK_FONTS that matplotlib can use, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not installed.intersection(CJK_FONTS):  # installed after matplotlib cached its font list
        for path in font_manager.findSystemFonts():
            if any(part in os.path.basename(path).lower() for part in CJK_FILES):
                font_manager.fontManager.addfont(path)
        installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def use_cjk_font() -> Optional[str]:
    """Let matplotlib draw Chinese: Latin text keeps the default font, Chinese glyphs fall back to
    the CJK font (matplotlib >= 3.6 falls back glyph by glyph). Returns the font, or None."""
    font = cjk_font()
    if font is not None:
        import matplotlib
        from matplotlib import font_manager

        families = [f for f in matplotlib.rcParams["font.family"] if f != font]
        matplotlib.rcParams["font.family"] = families + [font]
        # monospace text (tables drawn as figures) has no fallback: use a monospace CJK font first
        installed = {f.name for f in font_manager.fontManager.ttflist}
        mono = next((name for name in CJK_MONO_FONTS if name in installed), None)
        if mono is not None and matplotlib.rcParams["font.monospace"][:1] != [mono]:
            matplotlib.rcParams["font.monospace"] = [mono] + list(matplotlib.rcParams["font.monospace"])
    return font


def translate_figure_text() -> None:
    """Translate the text of every matplotlib figure as it is set (titles, labels, legends), also
    the figures a notebook's own code draws: the code is the same in both editions, the table
    holds the Chinese. Installed once by set_language("zh"); does nothing in English."""
    from matplotlib.text import Text

    if getattr(Text.set_text, "sdcourse_translates", False):
        return
    original = Text.set_text

    def set_text(self, s):
        if isinstance(s, str) and _language != "en" and _LETTERS.search(s):
            s = tr(s, figure=True)
        return original(self, s)

    set_text.sdcourse_translates = True
    Text.set_text = set_text


_LETTERS = re.compile(r"[A-Za-z]{2}")
