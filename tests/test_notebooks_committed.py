"""nbval passes a notebook whose cells have no stored outputs, so check what is committed: both
editions, in English and in Chinese (notebooks/zh/), executed top to bottom, outputs that read
well without a kernel (GitHub, Colab's preview)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEARNER = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")) + sorted((ROOT / "notebooks" / "zh").glob("[0-9]*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9]*.ipynb")) + sorted(
    (ROOT / "notebooks" / "zh" / "solutions").glob("[0-9]*.ipynb"))
NOTEBOOKS = LEARNER + SOLUTIONS
IDS = [str(p.relative_to(ROOT / "notebooks")) for p in NOTEBOOKS]

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# an absolute path of the machine that ran the notebook: a home, a virtualenv, an installed package
MACHINE_PATH = re.compile(r"(/root/|/home/|/Users/|site-packages|\.venv/|/work/|/tmp/(?!ipykernel))")


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _text(output) -> str:
    data = output.get("data", {})
    return "".join(output.get("text", "")) + "".join(output.get("traceback", [])) + "".join(data.get("text/plain", "")) \
        + "".join(data.get("text/html", "")) + "".join(data.get("text/markdown", ""))


def test_there_are_notebooks():
    assert LEARNER and SOLUTIONS, "notebooks/ or notebooks/solutions/ holds no course notebook: nbval would check nothing"
    assert [p.name for p in LEARNER] == [p.name for p in SOLUTIONS], "every source notebook needs its learner edition"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_was_executed_top_to_bottom(path):
    # cells tagged skip-execution need the network (notebook 08 on Colab): never run offline
    code = [c for c in _cells(path) if c["cell_type"] == "code" and "".join(c["source"]).strip()
            and "skip-execution" not in c.get("metadata", {}).get("tags", [])]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: {counts.count(None)} code cell(s) never executed; run scripts/regenerate_notebooks.py"
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts} are not 1..{len(code)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_outputs_are_clean(path):
    nb = json.loads(path.read_text())
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: widget state stored; regenerate"
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        source = "".join(cell["source"])
        for out in cell.get("outputs", []):
            text = _text(out)
            if out["output_type"] == "error":
                assert "raises-exception" in tags, f"{path.name}: error output in an untagged cell:\n{source}"
            if out.get("name") == "stderr":
                assert not re.search(r"Warning|warn\(", text), f"{path.name}: a warning in the outputs:\n{text}"
            data = out.get("data", {})
            assert "image/svg+xml" not in data, f"{path.name}: SVG output (embeds dates/ids); use PNG"
            assert not ANSI.search(text), f"{path.name}: an ANSI escape (a raw traceback?) in the output of:\n{source}"
            m = MACHINE_PATH.search(ANSI.sub("", text))
            assert not m, f"{path.name}: a machine path ({m.group(0)}) in the output of:\n{source}"
            assert len(text) < 4000 or out["output_type"] != "error", f"{path.name}: a long traceback; show one line"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_widget_has_a_static_picture(path):
    """GitHub, nbviewer and Colab's preview have no kernel: they show a widget as `VBox(...)` text
    unless its output also carries a picture."""
    for cell in _cells(path):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                plain = "".join(data.get("text/plain", ""))
                assert "image/png" in data or "%|" in plain and "100%" in plain, (
                    f"{path.name}: a widget output without a static picture (GitHub shows {plain[:60]!r}):\n"
                    + "".join(cell["source"]))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_frozen_progress_bar(path):
    for cell in _cells(path):
        for out in cell.get("outputs", []):
            for bar in re.findall(r"(\d+)%\|", _text(out)):
                assert bar == "100", f"{path.name}: a progress bar frozen at {bar}% in the output of:\n" + "".join(cell["source"])


@pytest.mark.parametrize("path", LEARNER, ids=[str(p.relative_to(ROOT / "notebooks")) for p in LEARNER])
def test_learner_edition_is_unsolved_and_runs(path):
    """Every checker in the learner edition says [todo] (and nothing failed: the execution check
    above), none says [ok]; the solution edition is the opposite."""
    learner = "".join(_text(o) for c in _cells(path) for o in c.get("outputs", []))
    solved = "".join(_text(o) for c in _cells(path.parent / "solutions" / path.name) for o in c.get("outputs", []))
    stubs = sum("raise NotImplementedError()" in "".join(c["source"]) for c in _cells(path))
    if stubs:
        assert "[todo]" in learner, f"{path.name}: {stubs} stub(s) but no [todo] line: is each checked?"
    assert "[ok]" not in learner, f"{path.name}: a checker says [ok] in the learner edition: a solution leaked"
    assert "[todo]" not in solved, f"solutions/{path.name}: a checker says [todo] in the solution edition"
