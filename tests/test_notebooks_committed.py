"""nbval passes a notebook whose cells have no stored outputs, so check what is committed."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no course notebook: nbval would have nothing to check"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_was_executed_top_to_bottom(path):
    cells = json.loads(path.read_text())["cells"]
    # cells tagged skip-execution need the network (notebook 08 on Colab): never run offline
    code = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()
            and "skip-execution" not in c.get("metadata", {}).get("tags", [])]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: {counts.count(None)} code cell(s) never executed; run scripts/regenerate_notebooks.py"
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts} are not 1..{len(code)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_outputs_are_clean(path):
    nb = json.loads(path.read_text())
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: widget state stored; regenerate"
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                assert "raises-exception" in tags, f"{path.name}: error output in an untagged cell:\n{''.join(cell['source'])}"
            if out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                assert not re.search(r"Warning|warn\(", text), f"{path.name}: a warning in the outputs:\n{text}"
            data = out.get("data", {})
            assert "image/svg+xml" not in data, f"{path.name}: SVG output (embeds dates/ids); use PNG"
