"""The learner edition is exactly the source with its solution regions cleared, and shows none."""
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from editions import BEGIN, END, EditionError, clear_solutions, learner_edition  # noqa: E402

SOURCES = sorted((ROOT / "notebooks" / "solutions").glob("[0-9]*.ipynb"))


def test_clear_solutions_keeps_indentation_and_the_rest():
    source = "def f(x):\n    # (N,) -> (N,)\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n\nf = check(f)"
    assert clear_solutions(source, ["# YOUR CODE HERE", "raise NotImplementedError()"]) == (
        "def f(x):\n    # (N,) -> (N,)\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nf = check(f)")


@pytest.mark.parametrize("source", [f"{BEGIN}\nx = 1", f"x = 1\n{END}", f"{BEGIN}\n{BEGIN}\n{END}"])
def test_unbalanced_markers_are_refused(source):
    with pytest.raises(EditionError, match="SOLUTION"):
        clear_solutions(source, ["pass"])


def test_self_links_point_to_the_solutions_folder():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("See [the solution](01_x.ipynb#Exercise-1) and [02](02_y.ipynb).")]
    out = learner_edition(nb, "01_x.ipynb")
    assert out.cells[0].source == "See [the solution](solutions/01_x.ipynb#Exercise-1) and [02](02_y.ipynb)."


def test_sources_exist():
    assert SOURCES, "no source notebooks in notebooks/solutions/"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_learner_edition_is_generated_from_its_source(source):
    """The committed learner edition equals the source with solutions cleared, cell by cell (ids
    included): run `make notebooks` after changing a source notebook."""
    expected = learner_edition(nbformat.read(source, as_version=4), source.name)
    committed = nbformat.read(ROOT / "notebooks" / source.name, as_version=4)
    assert [c.get("id") for c in committed.cells] == [c.get("id") for c in expected.cells], f"{source.name}: cells differ; run make notebooks"
    for got, want in zip(committed.cells, expected.cells):
        assert (got.cell_type, got.source) == (want.cell_type, want.source), (
            f"{source.name}, cell {want.get('id')}: the learner edition differs from its source; run make notebooks")
        assert got.metadata.get("tags", []) == want.metadata.get("tags", [])
        assert BEGIN not in got.source and END not in got.source, f"{source.name}: a solution region shows in the learner edition"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_source_marks_what_the_learner_writes(source):
    nb = nbformat.read(source, as_version=4)
    regions = sum(c.source.count(BEGIN) for c in nb.cells if c.cell_type == "code")
    assert regions >= 1 or source.name.startswith("00"), f"{source.name}: nothing for the learner to write"
