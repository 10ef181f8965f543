"""On Colab the first cell of a notebook installs everything the notebook imports, from the one
repository address the README's Colab links use too."""
import re
import sys
from pathlib import Path

import nbformat
import pytest

import sdcourse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from colab_cell import REPOSITORY, extra_requirements, imported_modules, install_cell  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("[0-9]*.ipynb"))


def test_imports_are_found_in_cells():
    cells = ["import os\nfrom diffusers.models import UNet2DConditionModel", "%matplotlib inline\nimport transformers as t"]
    assert imported_modules(cells) == {"os", "diffusers", "transformers"}
    assert extra_requirements(cells) == ["diffusers", "transformers"]
    with pytest.raises(ValueError, match="PIP_NAMES"):
        extra_requirements(["import somethingunknown"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT / "notebooks")) for p in NOTEBOOKS])
def test_first_cell_installs_what_the_notebook_imports(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    expected = install_cell(sdcourse.__version__, extra_requirements(c.source for c in code[1:]))
    assert code[0].source == expected, f"{path.name}: the first cell is not the shared install cell; run make notebooks"
    for requirement in extra_requirements(c.source for c in code[1:]):
        assert repr(requirement) in code[0].source


def test_first_cell_installs_a_version_not_the_tip():
    cell = install_cell("9.9.9", [])
    assert '"v9.9.9"' in cell and "SDCOURSE_REPO" in cell and "@main" not in cell


def test_readme_colab_links_use_the_one_address():
    readme = (ROOT / "README.md").read_text()
    owner_repo = REPOSITORY.split("github.com/")[1]
    links = re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/", readme)
    assert links, "the README shows no Colab link"
    assert set(links) == {owner_repo}, f"README Colab links {set(links)} differ from scripts/colab_cell.py {owner_repo}"


def test_package_version_is_one_number():
    """The install cell installs tag v<sdcourse.__version__>: pyproject's version must be the same."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == sdcourse.__version__


def test_a_failed_install_says_what_to_do_in_one_line(tmp_path, monkeypatch):
    """Run the cell as Colab would (google.colab imported) against an address that does not exist:
    it must stop with one clear message, not pip's box and a later unrelated ImportError."""
    import types

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    # git is refused at once on this port of the machine itself: no network needed, nothing waits
    monkeypatch.setenv("SDCOURSE_REPO", "https://127.0.0.1:9/no-such-repository")
    with pytest.raises(SystemExit) as stopped:
        exec(install_cell(sdcourse.__version__, []), {})
    message = str(stopped.value)
    assert message.startswith("Could not install sdcourse from https://127.0.0.1:9/no-such-repository at v")
    assert "fatal:" in message or "ERROR:" in message  # git's or pip's own words
    assert "SDCOURSE_REF" in message
    assert "\n" not in message
