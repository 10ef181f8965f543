"""Find every message sdcourse shows, as the keys of the translation table (sdcourse/i18n.py).

Two kinds of text count as messages:
- in `sdcourse/checks/`: every string and f-string of two words or more that is not a docstring
  (hints, mistake names, [todo] lines, ...): the checkers translate each line they print;
- everywhere in `sdcourse/`: the text given to `tr(...)` (widget labels, figure titles, errors);
- in the source notebooks' code: the text of figure titles, axis labels, legends and annotations
  (matplotlib's text is translated as it is set: sdcourse.i18n.translate_figure_text), and the
  lines of a notebook's own checks (`checks.say(...)`, `ExerciseError(...)`).
A line ending in `# i18n: no` is skipped (text for code, not for people).
An f-string's key is its text with each `{...}` written `{}` (literal braces doubled).

    python scripts/messages.py missing      # keys the Chinese table lacks, with where they are
    python scripts/messages.py unused       # table entries no text in the code has any more
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sdcourse"
CHECKS = PACKAGE / "checks"
CHECKER_CALLS = {"say", "ExerciseError"}  # a notebook's own check lines: checks.say(...), ExerciseError(...)
A_WORD = re.compile(r"[A-Za-z]{3,}")
WORD = re.compile(r"^[(\"']?[A-Za-z]{2,}[.,:;!?)\"']*$")


def is_prose(text: str) -> bool:
    """Two plain English words at least: 'residual forgotten' is a message, 'in_proj.bias' is not."""
    return sum(bool(WORD.match(token)) for token in text.split()) >= 2


def _is_call(text: str) -> bool:
    """'add_noise(x0, noise, alpha_bar=0.3)': a name, then one pair of brackets to the end."""
    match = re.match(r"[\w.]+\(", text)
    if not match:
        return False
    depth = 0
    for i in range(match.end() - 1, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i == len(text) - 1
    return False


def is_message(text: str) -> bool:
    """A checker's text for people: prose, or one word beside code ('1/sqrt(C) forgotten', 'Got {}.')."""
    if _is_call(text.strip()):  # a call, as a check's name: code
        return False
    return is_prose(text) or (any(WORD.match(t) for t in text.split()) and len(text.split()) >= 2)


def _key(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if isinstance(node, ast.JoinedStr):
        return "".join(_key(v) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return ""


def _literal_text(key: str) -> str:
    return key.replace("{}", " ")


def _docstrings(tree: ast.AST) -> set:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _is_tr(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "tr")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "tr"))


def extract() -> Dict[str, List[str]]:
    """{key: ["path:line", ...]} of every message in sdcourse."""
    found: Dict[str, List[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name.startswith("_messages_") or path.name in ("messages_zh.py", "i18n.py"):
            continue
        source = path.read_text(encoding="utf-8")
        lines = source.split("\n")
        tree = ast.parse(source)
        skip = _docstrings(tree)
        in_checks = CHECKS in path.parents
        nodes = []
        if in_checks:
            inner = set()  # the parts of an f-string are not messages of their own
            for node in ast.walk(tree):
                if isinstance(node, ast.JoinedStr):
                    inner.update(id(v) for v in node.values)
                    for v in node.values:
                        if isinstance(v, ast.FormattedValue) and v.format_spec is not None:
                            inner.update(id(x) for x in ast.walk(v.format_spec))
            nodes = [n for n in ast.walk(tree)
                     if isinstance(n, (ast.Constant, ast.JoinedStr)) and id(n) not in skip and id(n) not in inner
                     and (isinstance(n, ast.JoinedStr) or isinstance(n.value, str))]
        tr_args = [node.args[0] for node in ast.walk(tree) if _is_tr(node) and node.args]
        nodes += tr_args
        for node in nodes:
            key = _key(node).strip()
            marked = node in tr_args  # tr("...") marks a message, even of one word
            if not key or not (marked and A_WORD.search(_literal_text(key)) or
                               (is_message if in_checks else is_prose)(_literal_text(key))):
                continue
            if lines[node.lineno - 1].rstrip().endswith("# i18n: no"):
                continue
            found.setdefault(key, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


FIGURE_CALLS = {"set_title", "set_xlabel", "set_ylabel", "suptitle", "title", "xlabel", "ylabel", "text",
                "annotate", "set_text", "set_label", "legend"}


def extract_notebooks() -> Dict[str, List[str]]:
    """{key: ["notebook:cell id", ...]} of the figure text in the source notebooks' code."""
    import json

    found: Dict[str, List[str]] = {}
    for path in sorted((ROOT / "notebooks" / "solutions").glob("[0-9]*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            try:
                tree = ast.parse("\n".join("pass" if l.lstrip().startswith(("%", "!")) else l
                                           for l in source.split("\n")))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                texts = list(node.args[:1]) if name in FIGURE_CALLS or name in CHECKER_CALLS else []
                texts += [k.value for k in node.keywords if k.arg in ("label", "title")]
                for text in texts:
                    elements = text.elts if isinstance(text, (ast.List, ast.Tuple)) else [text]
                    for element in elements:
                        key = _key(element).strip()
                        if key and A_WORD.search(_literal_text(key)):
                            found.setdefault(key, []).append(f"{path.name}:{cell.get('id')}")
    return found


def all_literals() -> set:
    """Every string and f-string (as a key) in sdcourse and in the source notebooks' code: a table
    entry is in use when its key is one of them (figure labels held in variables, for example, are
    drawn through matplotlib's translated set_text without a tr() or a figure call around them)."""
    import json

    sources = [p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))
               if not p.name.startswith("_messages_") and p.name != "messages_zh.py"]
    for path in sorted((ROOT / "notebooks" / "solutions").glob("[0-9]*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                sources.append("\n".join("pass" if l.lstrip().startswith(("%", "!")) else l
                                         for l in "".join(cell["source"]).split("\n")))
    found = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                found.add(_key(node).strip())
    return found


def main(argv: List[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from sdcourse.messages_zh import MESSAGES

    keys = {**extract_notebooks(), **extract()}
    if argv[:1] == ["missing"]:
        missing = {k: v for k, v in keys.items() if k not in MESSAGES}
        for key, where in missing.items():
            print(f"{where[0]}: {key!r}")
        print(f"{len(missing)} of {len(keys)} messages lack a Chinese entry")
    elif argv[:1] == ["unused"]:
        literals = all_literals()
        unused = [k for k in MESSAGES if k not in keys and k not in literals]
        for key in unused:
            print(repr(key))
        print(f"{len(unused)} entries unused")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
