"""Notebooks 03-05 (source editions): every exercise's hint exists, every link to a solution lands
on a heading, the notes' loose statements carry a "The notes say" callout, and the false
statements the course once made stay out."""
import json
import re
from pathlib import Path

import pytest

from sdcourse.checks.hints import HINTS

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"
NOTEBOOKS = ["03_attention.ipynb", "04_image_as_sequence.ipynb", "05_unet.ipynb"]


def cells(name):
    return json.loads((SOLUTIONS / name).read_text())["cells"]


def text(name, kind=None):
    return "\n\n".join("".join(c["source"]) for c in cells(name) if kind is None or c["cell_type"] == kind)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_hint_named_in_the_notebook_exists(name):
    named = set(re.findall(r'checks\.hint\("([^"]+)"\)', text(name)))
    assert named, "the notebook offers no hint"
    assert named <= set(HINTS), sorted(named - set(HINTS))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_solution_link_lands_on_a_heading(name):
    markdown = text(name, "markdown")
    headings = {re.sub(r"`", "", line.lstrip("#").strip()).replace(" ", "-")
                for line in markdown.split("\n") if line.startswith("#")}
    links = re.findall(re.escape(name) + r"#([^)]+)\)", markdown)
    assert links
    assert set(links) <= headings, sorted(set(links) - headings)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_exercise_cell_is_checked(name):
    """A cell with a solution region hands its answer to a checker (or is a class a checker receives)."""
    for cell in cells(name):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "### BEGIN SOLUTION" in source:
            assert "checks.check_" in source, source[:200]


CALLOUTS = {
    "03_attention.ipynb": ["SelfAttention(n_head, self.channels)"],
    "04_image_as_sequence.ipynb": ["图片的H\\*W", "nn.GroupNorm(32, self.channels)", "比ReLU更高效的激活"],
    "05_unet.ipynb": ["不需要downsample模块", "避免插值后的模糊", "解码器与编码器对称"],
}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_notes_loose_statements_have_callouts(name):
    callouts = [block for block in text(name, "markdown").split("\n\n") if block.startswith("> **The notes say**")]
    for phrase in CALLOUTS[name]:
        assert any(phrase in block for block in callouts), phrase


@pytest.mark.parametrize("false", [
    "SD stores the three weight matrices",           # CompVis and diffusers keep to_q, to_k, to_v apart
    "multiple of 64",                                # diffusers' pipelines take multiples of 8 px
    "as the notes point out",                        # the notes do not say it
    "latents need sides that are multiples of 8",    # only the notes' (and CompVis's) UNet
])
def test_false_statements_stay_out(false):
    for name in NOTEBOOKS:
        assert false not in text(name), (name, false)
