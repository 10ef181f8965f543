"""The Chinese edition (notebooks/zh/) is the English course, translated and kept in step:
every markdown cell translated from the current English, code equal apart from comments, the
glossary's terms used consistently, links to headings that exist, and the committed notebooks
generated from the current sources and translations (scripts/zh_edition.py)."""
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import zh_edition as zh  # noqa: E402
from colab_cell import extra_requirements, install_cell  # noqa: E402
from editions import learner_edition  # noqa: E402

SOURCES = sorted((ROOT / "notebooks" / "solutions").glob("[0-9]*.ipynb"))
IDS = [p.stem for p in SOURCES]
CJK = re.compile(r"[\u4e00-\u9fff]")
NOTES = ROOT.parent / "shared" / "notes" / "stable_diffusion_unet_notes.zh.txt"


def _source(path):
    return nbformat.read(path, as_version=4)


@pytest.fixture(scope="module")
def anchors():
    return zh.all_anchor_maps()


def test_every_notebook_has_a_chinese_edition():
    assert SOURCES
    for path in SOURCES:
        assert zh.translation_path(path.name).exists(), f"no translation file for {path.name}"
        assert (zh.ZH / path.name).exists() and (zh.ZH / "solutions" / path.name).exists(), (
            f"{path.name}: no zh edition; run make notebooks")


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_every_markdown_cell_is_translated_from_the_current_english(path):
    nb = _source(path)
    sections = zh.load(path.name)
    status = zh.status(nb, sections)
    assert not status.missing, f"{path.name}: cells not translated (or still English): {status.missing}"
    assert not status.stale, f"{path.name}: the English changed since these were translated: {status.stale}"
    assert not status.unknown, f"{path.name}: translations of cells the notebook no longer has: {status.unknown}"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = sections[cell.id].text
            assert CJK.search(text), f"{path.name}, cell {cell.id}: no Chinese in the translation"
            assert not zh.english_runs(text), f"{path.name}, cell {cell.id}: English left: {zh.english_runs(text)[:2]}"
            assert len(zh.headings(text)) == len(zh.headings(cell.source)), (
                f"{path.name}, cell {cell.id}: {len(zh.headings(cell.source))} headings in English, "
                f"{len(zh.headings(text))} in Chinese: links to headings pair them in order")


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_committed_zh_editions_are_generated_from_source_and_translation(path, anchors):
    """Code cells equal the English apart from comments (zh_solution_edition refuses otherwise);
    the first cell is the zh install cell, which also switches sdcourse to Chinese."""
    import sdcourse

    english = _source(path)
    expected = zh.zh_solution_edition(english, path.name, zh.load(path.name), anchors)
    code = [c for c in expected.cells if c.cell_type == "code"]
    code[0].source = install_cell(sdcourse.__version__, extra_requirements(c.source for c in code[1:]), "zh")
    expected_learner = learner_edition(expected, path.name, code_stub=zh.CODE_STUB_ZH,
                                       markdown_stub=zh.MARKDOWN_STUB_ZH)
    for want, committed_path in ((expected, zh.ZH / "solutions" / path.name), (expected_learner, zh.ZH / path.name)):
        committed = _source(committed_path)
        assert [c.id for c in committed.cells] == [c.id for c in want.cells], f"{committed_path.name}: run make notebooks"
        for got, cell in zip(committed.cells, want.cells):
            assert got.source == cell.source, (
                f"zh/{committed_path.relative_to(zh.ZH)}, cell {cell.id}: differs from source + translation; run make notebooks")
    for en, cn in zip(english.cells[1:], expected.cells[1:]):
        if en.cell_type == "code":
            assert zh.same_code(en.source, cn.source), f"{path.name}, cell {en.id}: code differs from the English"
    assert 'sdcourse.set_language("zh")' in code[0].source


def test_same_code_sees_code_changes_and_ignores_comments():
    english = "x = f(a, 2)  # apply f\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION"
    assert zh.same_code(english, "x = f(a, 2)  # 应用 f\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION")
    assert not zh.same_code(english, "x = f(a, 3)  # 应用 f\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION")
    assert not zh.same_code(english, "x = f(a, 2)\ny = x + 1")  # the solution markers are structure
    assert not zh.same_code('print("shape")', 'print("形状")')  # printed text is code


def test_a_changed_english_cell_shows_as_untranslated():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\nThe time embedding is added.")])
    nb.cells[0].id = "c1"
    translated = zh.parse(zh.render_section(nb.cells[0], "# 标题\n\n时间步嵌入被加上。"))
    assert zh.status(nb, translated).translated == ["c1"]
    nb.cells[0].source += " To every pixel."
    assert zh.status(nb, translated).stale == ["c1"]
    assert zh.zh_solution_edition(nb, "x.ipynb", translated).cells[0].source == nb.cells[0].source


def test_english_left_in_a_translation_is_found():
    assert zh.english_runs("时间步嵌入（time embedding）把 `t` 变成 320 个数。") == []
    assert zh.english_runs("时间步嵌入。The UNet must know how noisy its input is.")


# --- the glossary ---------------------------------------------------------------------------------

def test_glossary_has_at_least_50_terms_each_once():
    terms = zh.glossary()
    assert len(terms) >= 50, f"the glossary has {len(terms)} terms"
    english = [e for t in terms for e in t.english]
    assert len(english) == len(set(english)), "a term is listed twice"
    for term in terms:
        assert term.chinese and all(CJK.search(c) or c.isascii() for c in term.chinese)
        assert not set(term.avoid) & set(term.chinese), f"{term.english}: a translation both used and avoided"


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_translation_follows_the_glossary(path):
    terms, sections = zh.glossary(), zh.load(path.name)
    problems = [f"cell {c.id}: {p}" for c in _source(path).cells if c.cell_type == "markdown" and c.id in sections
                for p in zh.glossary_problems(c.source, sections[c.id].text, terms)]
    assert not problems, f"{path.name}:\n" + "\n".join(problems[:15])


def test_glossary_check_finds_a_variant_and_a_missing_term():
    terms = zh.glossary()
    assert zh.glossary_problems("The time embedding.", "时间嵌入。", terms)  # 不用 variant, and 时间步嵌入 missing
    assert zh.glossary_problems("Classifier-free guidance.", "指导。", terms)
    assert not zh.glossary_problems("Classifier-free guidance.", "无分类器引导（classifier-free guidance）。", terms)


def test_every_glossary_term_is_used_in_the_course():
    text = "".join(s.text for p in SOURCES for s in zh.load(p.name).values())
    unused = [t.chinese[0] for t in zh.glossary() if not any(c in text for c in t.chinese)]
    assert len(unused) <= 5, f"glossary terms the zh course never uses: {unused}"


# --- links and the notes' own words ---------------------------------------------------------------

def test_links_to_headings_land_on_a_chinese_heading():
    targets = {}
    for path in zh.ZH.glob("[0-9]*.ipynb"):
        targets[path.name] = {zh.anchor(h) for c in _source(path).cells if c.cell_type == "markdown"
                              for h in zh.headings(c.source)}
    broken = []
    for path in sorted(zh.ZH.glob("[0-9]*.ipynb")) + sorted((zh.ZH / "solutions").glob("[0-9]*.ipynb")):
        for cell in _source(path).cells:
            if cell.cell_type == "markdown":
                for match in zh.LINK.finditer(cell.source):
                    if match["anchor"] not in targets.get(match["file"], set()):
                        broken.append(f"{path.name}: {match['file']}#{match['anchor']}")
    assert targets and not broken, f"links to headings that do not exist: {broken[:10]}"


@pytest.mark.skipif(not NOTES.exists(), reason="the study notes are not shipped with the project")
def test_the_notes_say_callouts_quote_the_notes_in_chinese():
    notes = re.sub(r"\s+", "", NOTES.read_text(encoding="utf-8"))
    missing = []
    for path in SOURCES:
        sections = zh.load(path.name)
        for cell in _source(path).cells:
            if cell.cell_type == "markdown" and "The notes say" in cell.source:
                text = sections[cell.id].text
                # the notes' words, or the notes' code where the English quotes code
                quoted = [q for q in re.findall(r"`([^`]+)`|“([^”]+)”|「([^」]+)」", text)
                          if len(re.sub(r"\s+", "", "".join(q))) >= 6 and re.sub(r"\s+", "", "".join(q)) in notes]
                if "笔记原文" not in text or not quoted:
                    missing.append(f"{path.name} cell {cell.id}")
    assert not missing, f"'The notes say' without 笔记原文 and a phrase quoted from the notes: {missing}"


def test_readme_zh_is_linked_and_gives_the_same_commands():
    readme, readme_zh = (ROOT / "README.md").read_text(), (ROOT / "README.zh.md").read_text(encoding="utf-8")
    assert "README.zh.md" in "\n".join(readme.splitlines()[:8]), "README.md must link README.zh.md in its first lines"
    for command in ("make lab", "make test"):
        assert command in readme and command in readme_zh
    assert "notebooks/zh/" in readme_zh and "colab" in readme_zh.lower()
    assert not zh.english_runs(readme_zh), f"English left in README.zh.md: {zh.english_runs(readme_zh)[:2]}"


def test_zh_install_cell_only_switches_the_language_outside_colab():
    import sdcourse

    assert "google.colab" not in sys.modules
    try:
        exec(install_cell(sdcourse.__version__, [], "zh"), {})
        assert sdcourse.get_language() == "zh"
    finally:
        sdcourse.set_language("en")
