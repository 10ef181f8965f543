"""Make the learner edition of a notebook from its source, the full (solution) edition.

The source notebooks are `notebooks/solutions/NN_*.ipynb`. The regions a learner writes are marked
as nbgrader marks them:

    def sinusoidal_embedding(t, dim):
        ### BEGIN SOLUTION
        half = dim // 2
        ...
        ### END SOLUTION

In the learner edition (`notebooks/NN_*.ipynb`) each region becomes a stub, indented like it:

        # YOUR CODE HERE
        raise NotImplementedError()

and a markdown region becomes "YOUR ANSWER HERE". Everything else, cell ids included, is the same
in both editions. A link from a notebook to itself (`[solution](05_unet.ipynb#...)`, which in the
full edition jumps to the worked answer) points to `solutions/...` in the learner edition.
Run by `scripts/regenerate_notebooks.py` (`make notebooks`); tests import `learner_edition`.
"""
from __future__ import annotations

import copy
import re
from typing import List

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MARKDOWN_STUB = ["YOUR ANSWER HERE"]


class EditionError(ValueError):
    """A source notebook's solution markers are unbalanced."""


def clear_solutions(source: str, stub: List[str], where: str = "a cell") -> str:
    """Replace every BEGIN/END SOLUTION region of `source` with `stub`, indented like the BEGIN line."""
    out, inside, indent = [], False, ""
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise EditionError(f"{where}, line {number}: {BEGIN} inside another solution region; close it with {END}.")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
        elif stripped.startswith(END):
            if not inside:
                raise EditionError(f"{where}, line {number}: {END} without a {BEGIN} before it.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise EditionError(f"{where}: {BEGIN} is never closed; add a line {END} after the solution.")
    return "\n".join(out)


def has_solution(source: str) -> bool:
    return any(line.strip().startswith((BEGIN, END)) for line in source.split("\n"))


def learner_edition(nb, filename: str, code_stub: List[str] = CODE_STUB, markdown_stub: List[str] = MARKDOWN_STUB):
    """The learner edition of the source notebook `nb` (an nbformat NotebookNode) named `filename`,
    without outputs (they come from executing it). The stubs: the Chinese edition passes its own."""
    learner = copy.deepcopy(nb)
    self_link = re.compile(r"\]\((" + re.escape(filename) + r")(#[^)]*)?\)")
    for index, cell in enumerate(learner.cells):
        where = f"{filename}, cell {index} ({cell.get('id', '?')})"
        if cell.cell_type == "code":
            cell.source = clear_solutions(cell.source, code_stub, where)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source = clear_solutions(cell.source, markdown_stub, where)
            cell.source = self_link.sub(lambda m: f"](solutions/{m.group(1)}{m.group(2) or ''})", cell.source)
    return learner
