"""Make the Chinese edition (notebooks/zh/) of a source notebook from one translation file.

The source is the English full edition `notebooks/solutions/NN_*.ipynb`. Its translation is
`notebooks/zh/translations/NN_*.md`, one section per translated cell, each opened by a marker:

    <!-- cell ae0cee42 md en=1f2e3d4c -->
    # 01 · 时间步嵌入（time embedding）：……

    <!-- cell 405ad84d code en=9a8b7c6d -->
    ```python
    import math  # 中文注释
    ```

`ae0cee42` is the cell's id, `md`/`code` its type, and `en=` the first 8 hex digits of the SHA-1
of the English cell's source when it was translated. A markdown section holds the whole Chinese
cell; a code section holds the whole code cell with only its comments translated. When the
English cell changes, its hash no longer matches: the zh edition then shows the English cell and
`status` (and the tests) list it as untranslated, so a changed cell is never silently stale.

    python scripts/zh_edition.py status                 # what is translated, what is stale
    python scripts/zh_edition.py skeleton 03            # write a translation file to fill in
    python scripts/zh_edition.py refresh 03             # add new/stale cells (English) to it
    python scripts/zh_edition.py glossary 03            # translated cells against the glossary

The zh full edition is `notebooks/zh/solutions/NN_*.ipynb`; the zh learner edition
`notebooks/zh/NN_*.ipynb` is made from it by scripts/editions.py, as in English.
`scripts/regenerate_notebooks.py` (`make notebooks`) writes and executes both.
"""
from __future__ import annotations

import copy
import hashlib
import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "notebooks" / "solutions"
ZH = ROOT / "notebooks" / "zh"
TRANSLATIONS = ZH / "translations"

MARKER = re.compile(r"^<!-- cell (?P<id>\S+) (?P<kind>md|code) en=(?P<hash>[0-9a-f]{8}) -->$")
SOLUTION_LINES = ("### BEGIN SOLUTION", "### END SOLUTION")
# The learner edition's stubs, in Chinese (the code is the same: a comment and NotImplementedError).
CODE_STUB_ZH = ["# 在这里写你的代码（YOUR CODE HERE）", "raise NotImplementedError()"]
MARKDOWN_STUB_ZH = ["在这里写你的答案（YOUR ANSWER HERE）"]


class TranslationError(ValueError):
    """A translation file is malformed, or a translated code cell changes the code."""


class Section(NamedTuple):
    kind: str  # "md" or "code"
    en_hash: str
    text: str


def en_hash(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]


def translation_path(notebook_name: str) -> Path:
    return TRANSLATIONS / (Path(notebook_name).stem + ".md")


# --- reading and writing translation files ----------------------------------------------------

def parse(text: str, where: str = "translation") -> Dict[str, Section]:
    """{cell id: Section} of a translation file's text."""
    sections: Dict[str, Section] = {}
    current: Optional[Tuple[str, str, str]] = None
    lines: List[str] = []

    def close():
        if current is not None:
            cell_id, kind, digest = current
            body = "\n".join(lines).strip("\n")
            if kind == "code":
                body_lines = body.split("\n")
                if len(body_lines) < 2 or not body_lines[0].startswith("```") or body_lines[-1].strip() != "```":
                    raise TranslationError(f"{where}, cell {cell_id}: a code section must be one ```python fence")
                body = "\n".join(body_lines[1:-1])
            if cell_id in sections:
                raise TranslationError(f"{where}: cell {cell_id} is translated twice")
            sections[cell_id] = Section(kind, digest, body)

    for line in text.split("\n"):
        match = MARKER.match(line.strip())
        if match:
            close()
            current, lines = (match["id"], match["kind"], match["hash"]), []
        elif current is not None:
            lines.append(line)
    close()
    return sections


def load(notebook_name: str) -> Dict[str, Section]:
    path = translation_path(notebook_name)
    if not path.exists():
        return {}
    return parse(path.read_text(encoding="utf-8"), where=path.name)


def has_comment(source: str) -> bool:
    return any(kind == tokenize.COMMENT for kind, _ in _tokens(source, keep_comments=True))


def render_section(cell, text: Optional[str] = None) -> str:
    kind = "md" if cell.cell_type == "markdown" else "code"
    body = cell.source if text is None else text
    if kind == "code":
        body = f"```python\n{body}\n```"
    return f"<!-- cell {cell.id} {kind} en={en_hash(cell.source)} -->\n{body}\n"


def translatable(nb) -> list:
    """The cells a translation covers: every markdown cell, and code cells with comments
    (not the Colab install cell, which scripts/colab_cell.py writes)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = code[0].id if code else None
    return [c for c in nb.cells
            if c.cell_type == "markdown" or (c.cell_type == "code" and c.id != first and has_comment(c.source))]


def skeleton(nb, notebook_name: str, existing: Optional[Dict[str, Section]] = None) -> str:
    """A translation file: current translations kept, every other cell in English to translate."""
    existing = existing or {}
    parts = [f"<!-- {notebook_name} 的中文翻译（见 scripts/zh_edition.py）。每个单元以 cell 标记开头；"
             f"en= 是英文原文的哈希，英文改动后该单元即显示为未翻译。 -->\n"]
    for cell in translatable(nb):
        section = existing.get(cell.id)
        if section is not None and section.en_hash == en_hash(cell.source):
            parts.append(render_section(cell, section.text))
        else:
            parts.append(render_section(cell))
    return "\n".join(parts)


# --- code equal apart from comments -----------------------------------------------------------

def _tokens(source: str, keep_comments: bool = False) -> List[Tuple[int, str]]:
    """Python tokens of a code cell; IPython lines (%, !) compared as text."""
    lines = []
    for line in source.split("\n"):
        stripped = line.lstrip()
        lines.append("pass  # ipython" if stripped.startswith(("%", "!")) else line)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [(tokenize.OP, line) for line in source.split("\n")]
    out = []
    for token in tokens:
        if token.type == tokenize.COMMENT:
            if token.string.strip().startswith(SOLUTION_LINES):  # the markers are structure, not prose
                out.append((tokenize.OP, token.string.strip()))
            elif keep_comments:
                out.append((token.type, token.string))
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                                tokenize.ENDMARKER):
            out.append((token.type, token.string))
    ipython = [line.strip() for line in source.split("\n") if line.lstrip().startswith(("%", "!"))]
    return out + [(tokenize.OP, line) for line in ipython]


def same_code(english: str, chinese: str) -> bool:
    """True when two code cells differ at most in their comments (solution markers included)."""
    return _tokens(english) == _tokens(chinese)


# --- headings and the links to them -----------------------------------------------------------

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def headings(markdown: str) -> List[str]:
    out, fenced = [], False
    for line in markdown.split("\n"):
        if line.strip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            match = HEADING.match(line)
            if match:
                out.append(match[2])
    return out


def anchor(heading: str) -> str:
    """JupyterLab's anchor of a heading: markdown stripped, spaces as '-', quotes encoded."""
    text = re.sub(r"[*`]", "", heading)  # bold and code marks go; an identifier's _ stays
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return text.strip().replace(" ", "-").replace('"', "%22").replace("(", "%28").replace(")", "%29")


def anchor_map(english_nb, chinese_cells: Dict[str, str]) -> Dict[str, str]:
    """English anchor -> Chinese anchor, pairing the headings of each translated cell in order."""
    mapping = {}
    for cell in english_nb.cells:
        if cell.cell_type != "markdown" or cell.id not in chinese_cells:
            continue
        en, zh = headings(cell.source), headings(chinese_cells[cell.id])
        for a, b in zip(en, zh):
            mapping[anchor(a)] = anchor(b)
    return mapping


LINK = re.compile(r"\]\((?P<file>[0-9]{2}_[A-Za-z0-9_]+\.ipynb)#(?P<anchor>[^)\s]+)\)")


def rewrite_links(markdown: str, anchors: Dict[str, Dict[str, str]]) -> str:
    """Point `](NN_x.ipynb#English-anchor)` at the Chinese heading of the zh notebook."""
    def sub(match):
        target = anchors.get(match["file"], {}).get(match["anchor"], match["anchor"])
        return f"]({match['file']}#{target})"
    return LINK.sub(sub, markdown)


# --- is it Chinese? ---------------------------------------------------------------------------

_NOT_PROSE = [
    re.compile(r"```.*?```", re.S),  # code blocks
    re.compile(r"`[^`]*`"),  # inline code
    re.compile(r"\$\$.*?\$\$", re.S), re.compile(r"\$[^$]*\$"),  # math
    re.compile(r"\]\([^)]*\)"), re.compile(r"https?://\S+"),  # link targets, addresses
    re.compile(r"<[^>]+>"),  # html tags
]
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:[ ,;:]+[A-Za-z][A-Za-z'’-]*){%d,}")


def english_runs(markdown: str, min_words: int = 6) -> List[str]:
    """Runs of at least `min_words` English words outside code, math and link targets: an English
    sentence left in a Chinese cell. (A term in parentheses at first use is shorter.)"""
    text = markdown
    for pattern in _NOT_PROSE:
        text = pattern.sub(" ", text)
    return [m.group(0) for m in re.finditer(ENGLISH_RUN.pattern % (min_words - 1), text)]


# --- the glossary ------------------------------------------------------------------------------

GLOSSARY = ZH / "glossary.md"


class Term(NamedTuple):
    english: List[str]  # alternatives, lower case
    chinese: List[str]  # alternatives
    avoid: List[str]  # translations not to use
    checked: bool  # an English cell that uses the term -> its Chinese cell uses the translation


def glossary(path: Path = GLOSSARY) -> List[Term]:
    terms = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("English", "---") or not line.startswith("|"):
            continue
        english = [re.sub(r"\s*\(.*\)", "", e).strip().lower() for e in cells[0].split(" / ")]
        chinese = [c.strip() for c in cells[1].split(" / ") if c.strip()]
        avoid = [a.strip() for a in re.split(r"[,，]", cells[2]) if a.strip()]
        terms.append(Term(english, chinese, avoid, cells[3] == "✓"))
    return terms


def _prose(markdown: str) -> str:
    text = markdown
    for pattern in _NOT_PROSE:
        text = pattern.sub(" ", text)
    return text


def glossary_problems(english: str, chinese: str, terms: List[Term]) -> List[str]:
    """What a translated cell does against the glossary: a variant to avoid, or a checked term
    used in the English and missing from the Chinese."""
    problems = []
    prose_en, prose_zh = _prose(english).lower(), _prose(chinese)
    for term in terms:
        # a variant inside the right term is not a use of it: 组归一化 in 分组归一化
        rest = prose_zh
        for chinese_term in term.chinese:
            rest = rest.replace(chinese_term, " ")
        for variant in term.avoid:
            if variant in rest:
                problems.append(f"uses {variant!r}; the glossary says {' / '.join(term.chinese)}")
        if term.checked and any(re.search(r"(?<![a-z_-])" + re.escape(e) + r"(?![a-z_])", prose_en)
                                for e in term.english):
            if not any(c in chinese for c in term.chinese):
                problems.append(f"English says {term.english[0]!r}: the Chinese lacks {' / '.join(term.chinese)}")
    return problems


# --- the zh full edition ----------------------------------------------------------------------

class Status(NamedTuple):
    translated: List[str]
    missing: List[str]  # cell ids with no section
    stale: List[str]  # cell ids whose English changed since translation
    unknown: List[str]  # sections for cells the notebook no longer has


def status(nb, sections: Dict[str, Section]) -> Status:
    cells = translatable(nb)
    ids = {c.id for c in cells}
    translated, missing, stale = [], [], []
    for cell in cells:
        section = sections.get(cell.id)
        if section is None:
            (missing if cell.cell_type == "markdown" else translated).append(cell.id)
        elif section.en_hash != en_hash(cell.source):
            stale.append(cell.id)
        elif section.kind == "md" and english_runs(section.text):
            missing.append(cell.id)  # still the English text of the skeleton
        else:
            translated.append(cell.id)
    return Status(translated, missing, stale, [i for i in sections if i not in ids])


def zh_solution_edition(nb, notebook_name: str, sections: Dict[str, Section],
                        all_anchors: Optional[Dict[str, Dict[str, str]]] = None):
    """The zh full edition of the English source `nb`: translated cells where the translation is
    current, the English cell where it is missing or stale. (Its first code cell, the Colab
    install cell that also switches sdcourse to Chinese, is written by scripts/colab_cell.py.)"""
    zh = copy.deepcopy(nb)
    chinese_md = {}
    for cell in zh.cells:
        section = sections.get(cell.id)
        if section is None or section.en_hash != en_hash(cell.source):
            continue
        if cell.cell_type == "markdown":
            if section.kind != "md":
                raise TranslationError(f"{notebook_name}, cell {cell.id}: translated as code but is markdown")
            cell.source = section.text
            chinese_md[cell.id] = section.text
        elif cell.cell_type == "code":
            if section.kind != "code":
                raise TranslationError(f"{notebook_name}, cell {cell.id}: translated as markdown but is code")
            if not same_code(cell.source, section.text):
                raise TranslationError(f"{notebook_name}, cell {cell.id}: the translated code differs from the "
                                       "English apart from comments; translate comments only")
            cell.source = section.text
    anchors = dict(all_anchors or {})
    anchors.setdefault(notebook_name, anchor_map(nb, chinese_md))
    for cell in zh.cells:
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(cell.source, anchors)
    return zh


def all_anchor_maps() -> Dict[str, Dict[str, str]]:
    import nbformat

    maps = {}
    for path in sorted(SOLUTIONS.glob("[0-9]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        sections = load(path.name)
        chinese = {cid: s.text for cid, s in sections.items()
                   if s.kind == "md" and any(c.id == cid and en_hash(c.source) == s.en_hash for c in nb.cells)}
        maps[path.name] = anchor_map(nb, chinese)
    return maps


def main(argv: List[str]) -> int:
    import nbformat

    if not argv or argv[0] not in ("status", "skeleton", "refresh", "glossary"):
        print(__doc__)
        return 2
    command, selectors = argv[0], argv[1:]
    paths = sorted(SOLUTIONS.glob("[0-9]*.ipynb"))
    if selectors:
        paths = [p for p in paths if any(p.name.startswith(s[:2]) for s in selectors)]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        target = translation_path(path.name)
        if command in ("skeleton", "refresh"):
            if command == "skeleton" and target.exists():
                print(f"{target.relative_to(ROOT)} exists: use refresh")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(skeleton(nb, path.name, load(path.name)), encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
        elif command == "glossary":
            terms, sections = glossary(), load(path.name)
            for cell in nb.cells:
                section = sections.get(cell.id)
                if cell.cell_type == "markdown" and section and section.en_hash == en_hash(cell.source):
                    for problem in glossary_problems(cell.source, section.text, terms):
                        print(f"{path.name} cell {cell.id}: {problem}")
        else:
            s = status(nb, load(path.name))
            try:
                zh_solution_edition(nb, path.name, load(path.name))
            except TranslationError as error:
                print(f"{path.name}: ERROR {error}")
            print(f"{path.name}: {len(s.translated)} translated, {len(s.missing)} missing, "
                  f"{len(s.stale)} stale, {len(s.unknown)} unknown"
                  + (f"  missing={s.missing}" if s.missing else "") + (f"  stale={s.stale}" if s.stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
