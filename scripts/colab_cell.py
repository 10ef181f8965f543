"""The first code cell of every notebook: on Colab it installs the course package at the version
that matches the notebook, plus whatever else the notebook imports; elsewhere it does nothing.

The repository address is written once, here (`REPOSITORY`); the README's Colab links are checked
against it (tests/test_colab_cell.py). `scripts/regenerate_notebooks.py` writes this cell into every
source notebook, so no notebook carries its own copy. A fork sets `SDCOURSE_REPO` (and
`SDCOURSE_REF`) in the Colab session before running the cell.
"""
from __future__ import annotations

import ast
import sys
from typing import Iterable, List, Set

REPOSITORY = "https://github.com/sdcourse/sdcourse"

# What `pip install sdcourse` brings (pyproject's dependencies) or any Jupyter kernel has: the cell
# need not install these. Import name -> nothing to do.
PROVIDED = {"sdcourse", "torch", "numpy", "matplotlib", "ipywidgets", "torchinfo", "tqdm", "safetensors",
            "IPython", "ipykernel", "PIL", "google"}
# import name -> pip requirement, for the imports a notebook may add beyond the package
PIP_NAMES = {"diffusers": "diffusers", "transformers": "transformers", "accelerate": "accelerate",
             "huggingface_hub": "huggingface_hub", "tokenizers": "tokenizers"}


def imported_modules(sources: Iterable[str]) -> Set[str]:
    """Top-level module names imported by these code cells (lines starting with % or ! are skipped)."""
    names = set()
    for source in sources:
        code = "\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def extra_requirements(sources: Iterable[str]) -> List[str]:
    """pip requirements the first cell must install beyond the package, for these code cells."""
    names = imported_modules(sources) - PROVIDED - set(sys.stdlib_module_names)
    unknown = sorted(n for n in names if n not in PIP_NAMES)
    if unknown:
        raise ValueError(f"a notebook imports {unknown}: add them to PIP_NAMES (or PROVIDED) in scripts/colab_cell.py")
    return sorted(PIP_NAMES[n] for n in names)


# What differs between the English and the Chinese cell: the comments, the failure message, and
# what the zh cell adds (a font with Chinese glyphs on Colab, and the switch to Chinese).
_CELL_TEXT = {
    "en": {
        "head": "# On Colab: install the course package at this notebook's version (and what this notebook imports\n"
                "# beyond it). Elsewhere this cell does nothing. A fork: set os.environ[\"SDCOURSE_REPO\"] first.",
        "fail": '''f"Could not install sdcourse from {repo} at {ref} ({' '.join(why) or 'pip failed'}). "
                 "Check that this address and tag exist (a fork: set SDCOURSE_REPO; the newest code: SDCOURSE_REF = 'main'), "
                 "then run this cell again."''',
        "tail": "",
    },
    "zh": {
        "head": "# 在 Colab 上：安装与本笔记本版本一致的课程包（以及本笔记本额外用到的库），并安装中文字体。\n"
                "# 在其他环境中，这个单元只切换语言。使用自己的 fork：先设置 os.environ[\"SDCOURSE_REPO\"]。",
        "fail": '''f"无法从 {repo} 安装 sdcourse 的 {ref} 版本（{' '.join(why) or 'pip 失败'}）。"
                 "请确认地址和标签存在（fork：设置 SDCOURSE_REPO；最新代码：SDCOURSE_REF = 'main'），然后重新运行这个单元。"''',
        "tail": '''
    # 图中的中文需要带中文字形的字体：Ubuntu 的 fonts-noto-cjk（没有它，图中文字保持英文）
    subprocess.run(["apt-get", "install", "-y", "-qq", "fonts-noto-cjk"], capture_output=True)
import sdcourse
sdcourse.set_language("zh")  # 中文版：检查器、交互控件、图和报错都说中文''',
    },
}


def install_cell(version: str, extras: List[str], language: str = "en") -> str:
    """The first code cell of every notebook. language="zh": the Chinese edition's, which also
    installs a font with Chinese glyphs on Colab (Debian/Ubuntu's fonts-noto-cjk) and switches
    sdcourse to Chinese (`sdcourse.set_language("zh")`)."""
    text = _CELL_TEXT[language]
    packages = ", ".join(repr(p) for p in extras)
    return (f'''{text["head"]}
import os, subprocess, sys
if "google.colab" in sys.modules:
    repo = os.environ.get("SDCOURSE_REPO", "{REPOSITORY}")
    ref = os.environ.get("SDCOURSE_REF", "v{version}")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"sdcourse @ git+{{repo}}@{{ref}}", {packages}],
                         capture_output=True, text=True, env={{**os.environ, "GIT_TERMINAL_PROMPT": "0"}})
    if pip.returncode != 0:
        why = [line.strip() for line in pip.stderr.splitlines() if "fatal:" in line or "ERROR:" in line][-1:]
        sys.exit({text["fail"]})''' + text["tail"]).replace(", ]", "]")


def is_install_cell(source: str) -> bool:
    return "google.colab" in source and "pip" in source
