"""Make every notebook edition and store its outputs: the only way notebook outputs get committed.

For each source notebook `notebooks/solutions/NN_*.ipynb` (the full edition, solutions marked
with `### BEGIN SOLUTION` / `### END SOLUTION`), this writes the learner edition
`notebooks/NN_*.ipynb` (scripts/editions.py), then executes both top to bottom on a fresh kernel
in the CI environment (the project's venv, one thread per kernel, two kernels at a time, as
`make test` runs them), so that nbval's strict comparison sees the same numbers in CI. It strips what changes on every run: widget state and timing metadata.

    python scripts/regenerate_notebooks.py                          # every notebook, both editions
    python scripts/regenerate_notebooks.py 03                       # notebook 03, both editions
    python scripts/regenerate_notebooks.py 03 --edition learner     # only the learner edition
    python scripts/regenerate_notebooks.py 03 --language zh         # only the Chinese edition

The Chinese edition (`notebooks/zh/` and `notebooks/zh/solutions/`) is made from the same source
plus its translation file `notebooks/zh/translations/NN_*.md` (scripts/zh_edition.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
# Long cells (training in 07) run a short version when SDCOURSE_QUICK=1: CI and committed outputs.
os.environ.setdefault("SDCOURSE_QUICK", "1")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colab_cell import extra_requirements, install_cell, is_install_cell  # noqa: E402
from editions import learner_edition  # noqa: E402
import zh_edition  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
ZH = NOTEBOOKS / "zh"  # the Chinese edition: scripts/zh_edition.py


def clean(nb: nbformat.NotebookNode) -> None:
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)


def execute(nb: nbformat.NotebookNode, path: Path, timeout: int) -> float:
    """Run `nb` top to bottom on a fresh kernel (working directory: path's folder) and write it to `path`."""
    for cell in nb.cells:  # start from nothing: no stale output survives
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        record_timing=False, allow_errors=False,
    )
    client.execute()
    clean(nb)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def set_install_cell(nb: nbformat.NotebookNode, name: str, language: str = "en") -> None:
    """Write the shared Colab install cell (scripts/colab_cell.py) as the first code cell."""
    import sdcourse

    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or not is_install_cell(code[0].source):
        raise SystemExit(f"{name}: the first code cell must be the Colab install cell")
    code[0].source = install_cell(sdcourse.__version__, extra_requirements(c.source for c in code[1:]), language)


def sources(selectors) -> list:
    every = sorted(SOLUTIONS.glob("[0-9]*.ipynb"))
    if not selectors:
        return every
    chosen = [p for p in every if any(p.name.startswith(Path(s).name[:2]) for s in selectors)]
    if not chosen:
        raise SystemExit(f"no source notebook matches {selectors}; sources are {[p.name for p in every]}")
    return chosen


def _run(job) -> str:
    nb, path, timeout = job
    seconds = execute(nb, path, timeout)
    return f"{path.relative_to(NOTEBOOKS)}: {seconds:.1f} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or paths (default: all)")
    parser.add_argument("--edition", choices=("both", "solutions", "learner"), default="both")
    parser.add_argument("--language", choices=("all", "en", "zh"), default="all",
                        help="en: notebooks/ and notebooks/solutions/; zh: notebooks/zh/ (default: all)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at a time (one kernel each)")
    args = parser.parse_args(argv)
    paths = sources(args.notebooks)
    if not paths:
        print("no source notebooks in notebooks/solutions/", file=sys.stderr)
        return 1
    jobs = []
    anchors = zh_edition.all_anchor_maps()
    for source in paths:
        nb = nbformat.read(source, as_version=4)
        set_install_cell(nb, source.name)
        editions = []
        if args.language in ("all", "en"):
            editions.append((nb, source, NOTEBOOKS / source.name, learner_edition(nb, source.name)))
        if args.language in ("all", "zh"):
            zh = zh_edition.zh_solution_edition(nb, source.name, zh_edition.load(source.name), anchors)
            set_install_cell(zh, source.name, language="zh")
            zh_solution = ZH / "solutions" / source.name
            zh_solution.parent.mkdir(parents=True, exist_ok=True)
            zh_learner = learner_edition(zh, source.name, code_stub=zh_edition.CODE_STUB_ZH,
                                         markdown_stub=zh_edition.MARKDOWN_STUB_ZH)
            editions.append((zh, zh_solution, ZH / source.name, zh_learner))
        for solution, solution_path, learner_path, learner in editions:
            nbformat.write(learner, learner_path)  # the learner edition exists even if a run below fails
            if args.edition in ("both", "solutions"):
                jobs.append((solution, solution_path, args.timeout))
            if args.edition in ("both", "learner"):
                jobs.append((learner, learner_path, args.timeout))
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for line in pool.map(_run, jobs):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
