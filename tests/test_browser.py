"""The widgets in a real browser: JupyterLab + headless Debian Chromium driven by playwright.

The course notebooks 01, 04 and 05 call the four widgets; each one that exists is copied to a
temporary folder, opened in JupyterLab and Run All (all at once: their kernels run side by side).
A widget none of them calls yet goes into a small notebook written by this test. For each widget
the test checks that it is a live view (widget DOM, not the "VBox(children=...)" text fallback or
"Loading widget..."), moves a control and waits until the picture (Image src or HTML) changed.

Needs /usr/bin/chromium (`apt-get install chromium`) and the playwright package; never downloads a
browser. Skipped when either is missing, unless SDCOURSE_REQUIRE_BROWSER=1 (set by .ci/run), then it
fails: in CI a missing browser must not pass as a skip. Screenshots (widget_<kind>.png) go
to $SDCOURSE_SCREENSHOTS (e.g. figures/) or to pytest's tmp dir. SDCOURSE_BROWSER_OWN=1 shows all
four widgets in the test's own notebook instead (with the tiny model trained in notebook 07: the
shipped checkpoint or $SDCOURSE_TINY_CHECKPOINT, when there is one).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
COURSE_NOTEBOOKS = ("01_time_embedding", "04_image_as_sequence", "05_unet")
NOTEBOOK_DIRS = (ROOT / "notebooks" / "solutions", ROOT / "notebooks")  # the first that holds a notebook wins
TIMEOUT_MS = 120_000  # per wait; the whole test takes ~30-60 s on an idle 2-core machine

# kind -> (the call that makes it, the control to move: (slider|dropdown, description) or None = the first one)
KINDS = {
    "time_embedding": ("time_embedding_view(", ("slider", "timestep t")),
    "sequence": ("sequence_view(", ("slider", "row")),
    "shape_ledger": ("shape_ledger(", ("slider", "height (px)")),
    "attention": ("attention_explorer(", ("dropdown", "token")),
}
OWN_CELLS = {
    "time_embedding": "widgets.time_embedding_view()",
    "sequence": "widgets.sequence_view(height=8, width=8, channels=320)",
    "shape_ledger": "widgets.shape_ledger()",
    "attention": "widgets.attention_explorer(rec, image=image, tokens=tokens)",
}
OWN_SETUP = """\
import torch
from sdcourse import widgets"""
OWN_ATTENTION = """\
import os
from pathlib import Path
from sdcourse import Diffusion, UNetConfig, sinusoidal_embedding
from sdcourse.record import AttentionRecorder
from sdcourse.train import load_checkpoint, shipped_checkpoint_path
torch.manual_seed(0)
checkpoint = os.environ.get("SDCOURSE_TINY_CHECKPOINT") or shipped_checkpoint_path()
if Path(checkpoint).exists():  # the trained tiny model: maps that find the words
    tiny = load_checkpoint(checkpoint)
    caption = "red circle top left"
    tokens = tiny.tokenizer.words(caption)
    with AttentionRecorder(tiny.diffusion, kind="cross", heads="all", per_timestep=True, cfg=True,
                           tokens=tokens) as rec:
        image = tiny.generate([caption], steps=10, seed=1)[0]
else:  # an untrained tiny UNet: the widget works, the maps are noise
    cfg = UNetConfig.tiny()
    model = Diffusion(cfg).eval()
    tokens = ["<start>", "red", "circle", "top", "left", "<end>"]
    latent, context = torch.randn(1, 4, 8, 8), torch.randn(2, len(tokens), cfg.d_context)
    with AttentionRecorder(model, kind="cross", heads="all", per_timestep=True, cfg=True, tokens=tokens) as rec:
        for t in (900, 500, 100):
            model(torch.cat([latent, latent]), context, sinusoidal_embedding(t, cfg.n_time_embd))
    image = torch.rand(3, 64, 64)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _code_cells(path: Path) -> list:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _plan(path: Path) -> list:
    """[(code cell index, widget kind)] for the cells of a notebook that make a widget."""
    plan = []
    for i, cell in enumerate(_code_cells(path)):
        source = "".join(cell["source"])
        plan += [(i, kind) for kind, (call, _) in KINDS.items() if call in source]
    return plan


def _write_own_notebook(folder: Path, kinds: list) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    setup = OWN_SETUP + ("\n" + OWN_ATTENTION if "attention" in kinds else "")
    nb.cells = [nbformat.v4.new_code_cell(setup)] + [nbformat.v4.new_code_cell(OWN_CELLS[k]) for k in kinds]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "widgets_browser_test.ipynb"
    nbformat.write(nb, path)
    return path


def _copy_runnable(source: Path, target: Path) -> None:
    """Copy a notebook, emptying the cells tagged skip-execution (they need the internet), as nbclient would skip them."""
    nb = json.loads(source.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "skip-execution" in cell.get("metadata", {}).get("tags", []):
            cell["source"] = "# (skip-execution: not run offline)"
    target.write_text(json.dumps(nb))


def _notebooks(folder: Path) -> dict:
    """name -> plan: copies of the course notebooks with widgets, plus our own for the widgets they lack."""
    plans = {}
    if os.environ.get("SDCOURSE_BROWSER_OWN") != "1":
        source = next((d for d in NOTEBOOK_DIRS if any((d / f"{stem}.ipynb").exists() for stem in COURSE_NOTEBOOKS)),
                      NOTEBOOK_DIRS[0])
        for stem in COURSE_NOTEBOOKS:
            path = source / f"{stem}.ipynb"
            if path.exists() and _plan(path):
                plans[path.name] = _plan(path)
        if plans:
            for item in source.iterdir():  # notebooks may read files beside them
                if item.is_dir():
                    shutil.copytree(item, folder / item.name, dirs_exist_ok=True)
                elif item.name in plans:
                    _copy_runnable(item, folder / item.name)
                elif item.suffix != ".ipynb":
                    shutil.copy(item, folder / item.name)
    covered = {kind for plan in plans.values() for _, kind in plan}
    missing = [k for k in KINDS if k not in covered]
    if missing:
        own = _write_own_notebook(folder, missing)
        plans[own.name] = _plan(own)
    return plans


def _missing() -> str:
    """Why the browser test cannot run here ("" when it can)."""
    if not CHROMIUM.exists():
        return "Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    return ""


def _skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; fail where SDCOURSE_REQUIRE_BROWSER=1 (CI) says the test must run."""
    if os.environ.get("SDCOURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + "; SDCOURSE_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_path():
    reason = _missing()
    if reason:
        _skip_or_fail(reason)
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def lab(chromium_path, tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 (empty token) serving a temporary folder."""
    folder = tmp_path_factory.mktemp("lab")
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JUPYTER_CONFIG_DIR=str(folder / ".config"), JUPYTER_RUNTIME_DIR=str(folder / ".runtime"),
               OMP_NUM_THREADS="1", SDCOURSE_THREADS="1")  # kernels run side by side: one thread each
    labconfig = folder / ".config" / "labconfig"
    labconfig.mkdir(parents=True)
    # no "Would you like to get notified about Jupyter news?" toast (it would ask the internet)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={folder}", f"--LabApp.workspaces_dir={folder / '.workspaces'}",
           f"--LabApp.user_settings_dir={folder / '.settings'}"]
    log = open(folder / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n" + (folder / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.3)
        yield url, folder
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("SDCOURSE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- driving JupyterLab
_ALL_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
    const idle = document.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']");
    return idle !== null && prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
_KERNEL_READY = """() => /Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')
    && document.querySelector('.jp-Dialog') === null"""


def _answer_popups(page) -> None:
    """Accept JupyterLab's kernel choice dialog; say no to any toast."""
    for button in (page.locator(".jp-Dialog .jp-mod-accept"), page.locator(".jp-toast-button", has_text="No")):
        if button.count():
            try:
                button.first.click(timeout=2000)
            except Exception:  # it moved or went away: look again on the next round
                pass


def _wait(pages, condition: str, what: str) -> None:
    """Poll `condition` (JS) on every page until it holds on all of them, answering pop-ups."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    waiting = list(pages)
    while waiting:
        for page in list(waiting):
            if page.evaluate(condition):
                waiting.remove(page)
            else:
                _answer_popups(page)
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {TIMEOUT_MS / 1000:.0f} s for {what}")
        if waiting:
            waiting[0].wait_for_timeout(250)


def _start_run_all(page, url: str, name: str) -> None:
    page.goto(f"{url}/lab/tree/{name}?reset", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=TIMEOUT_MS)
    _wait([page], _KERNEL_READY, f"the kernel of {name}")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def _check_no_errors(page, folder: Path, name: str) -> None:
    """Errors (rendered as stderr) only in cells tagged raises-exception."""
    allowed = ["raises-exception" in c.get("metadata", {}).get("tags", []) for c in _code_cells(folder / name)]
    per_cell = page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(c =>
        [...c.querySelectorAll(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")]
            .map(e => e.textContent).join('\\n'))""")
    assert len(per_cell) == len(allowed), f"{name}: {len(per_cell)} code cells on the page, {len(allowed)} in the file"
    for i, (text, ok) in enumerate(zip(per_cell, allowed)):
        assert ok or "Traceback" not in text, f"{name}: code cell {i} failed:\n{text[:2000]}"


# What a widget shows: its pictures (Image src, a new blob URL per value) or, with no Image, its HTML.
_PICTURE = """el => { const imgs = [...el.querySelectorAll('img')];
    return imgs.length ? imgs.map(e => e.src).join('|')
                       : [...el.querySelectorAll('.widget-html-content')].map(e => e.innerHTML).join('|'); }"""


def _move(page, output, how) -> str:
    """Change one control (the described one, else the first slider/dropdown); returns what was moved."""
    kind, description = how
    box = output.locator(".widget-inline-hbox", has=page.locator(".widget-label", has_text=description))
    if not box.count():
        kind = "slider" if output.locator(".widget-slider").count() else "dropdown"
        box = output.locator(".widget-slider" if kind == "slider" else ".widget-dropdown")
    box = box.first
    if kind == "slider":
        readout = box.locator(".widget-readout")
        current = int(readout.inner_text().replace(",", ""))
        step = 64 if "px" in box.inner_text() else 3
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(current + step if current + step <= 1024 else current - step))
        page.keyboard.press("Enter")
    else:
        select = box.locator("select")
        n = select.locator("option").count()
        select.select_option(index=(n - 2) % n)
    return f"{kind} {box.inner_text().splitlines()[0] if box.inner_text() else ''}"


def _check_widget(page, name: str, cell: int, kind: str, shot: Path) -> None:
    output = page.locator(".jp-Notebook .jp-CodeCell").nth(cell).locator(".jp-OutputArea-output").first
    output.scroll_into_view_if_needed()
    text = output.inner_text()
    assert "Loading widget" not in text and "VBox(children=" not in text and "Error displaying widget" not in text, \
        f"{name}: the {kind} widget of code cell {cell} is not a live view:\n{text[:500]}"
    assert output.locator(".jupyter-widgets.widget-vbox").count(), f"{name}: no widget view in code cell {cell}"
    assert output.locator(".widget-slider, .widget-dropdown").count(), f"{name}: the {kind} widget has no controls"
    before = output.evaluate(_PICTURE)
    moved = _move(page, output, KINDS[kind][1])
    try:  # a new picture, loaded (img.complete)
        page.wait_for_function(
            f"([el, before]) => {{ const now = ({_PICTURE})(el); return now !== before && [...el.querySelectorAll('img')].every(e => e.complete); }}",
            arg=[output.element_handle(), before], timeout=TIMEOUT_MS)
    except Exception as err:
        raise AssertionError(f"{name}: moving the {moved} of the {kind} widget changed nothing") from err
    page.wait_for_timeout(400)  # let the new picture paint before the screenshot
    output.screenshot(path=str(shot))
    _trim(shot)


def _trim(path: Path, margin: int = 8) -> None:
    """Cut the empty (white) space right of and below the widget off its screenshot."""
    from PIL import Image, ImageChops

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    box = ImageChops.difference(rgb, Image.new("RGB", rgb.size, (255, 255, 255))).getbbox()
    if box:
        rgb.crop((0, 0, min(rgb.width, box[2] + margin), min(rgb.height, box[3] + margin))).save(path)


def test_a_missing_browser_skips_here_and_fails_in_ci(monkeypatch):
    """Without chromium or playwright the browser test skips on a laptop, and fails under .ci/run."""
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path(sys.executable))  # a file that exists
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # `import playwright.sync_api` raises ImportError
    assert "playwright" in _missing()
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", ROOT / "no" / "chromium")
    assert "chromium" in _missing()
    monkeypatch.setenv("SDCOURSE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="SDCOURSE_REQUIRE_BROWSER=1"):
        _skip_or_fail(_missing())
    monkeypatch.delenv("SDCOURSE_REQUIRE_BROWSER")
    with pytest.raises(pytest.skip.Exception):
        _skip_or_fail(_missing())
    assert "SDCOURSE_REQUIRE_BROWSER=1" in (ROOT / ".ci" / "run").read_text()  # CI asks for it


@pytest.mark.browser
def test_widgets_live_in_jupyterlab(lab, browser, shots):
    url, folder = lab
    start = time.monotonic()
    plans = _notebooks(folder)
    pages = {}
    try:
        for name in plans:  # start every Run All first: the kernels work side by side
            pages[name] = browser.new_page(viewport={"width": 1500, "height": 2400})
            _start_run_all(pages[name], url, name)
        _wait(pages.values(), _ALL_RAN, "Run All to finish")
        seen = set()
        for name, plan in plans.items():
            page = pages[name]
            try:
                _check_no_errors(page, folder, name)
                for cell, kind in plan:
                    shot = shots / (f"widget_{kind}.png" if kind not in seen else f"widget_{kind}_{Path(name).stem}.png")
                    seen.add(kind)
                    _check_widget(page, name, cell, kind, shot)
            except Exception:
                page.screenshot(path=str(shots / f"failed_{Path(name).stem}.png"))
                raise
        assert seen == set(KINDS)
    finally:
        for page in pages.values():
            page.close()
    print(f"browser test: {len(plans)} notebook(s) {sorted(plans)} in {time.monotonic() - start:.0f} s")


ZH_NOTEBOOK = ROOT / "notebooks" / "zh" / "solutions" / "04_image_as_sequence.ipynb"
_CJK = "/[\\u4e00-\\u9fff]/"


@pytest.mark.browser
def test_chinese_edition_renders_in_jupyterlab(lab, browser, shots):
    """A zh notebook in JupyterLab: Chinese prose, a checker line and widget labels in Chinese, its
    figures drawn, no error. Screenshots: zh_notebook.png (the top) and zh_widget_sequence.png."""
    if not ZH_NOTEBOOK.exists():
        pytest.fail(f"{ZH_NOTEBOOK.relative_to(ROOT)} is missing: run make notebooks")
    url, folder = lab
    # render every cell, not only those in view (JupyterLab 4 windows long notebooks): we read them all
    tracker = folder / ".settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    zh_folder = folder / "zh"
    zh_folder.mkdir(exist_ok=True)
    _copy_runnable(ZH_NOTEBOOK, zh_folder / ZH_NOTEBOOK.name)
    page = browser.new_page(viewport={"width": 1300, "height": 2000})
    try:
        _start_run_all(page, url, f"zh/{ZH_NOTEBOOK.name}")
        _wait([page], _ALL_RAN, "Run All of the zh notebook")
        _check_no_errors(page, zh_folder, ZH_NOTEBOOK.name)
        page.locator(".jp-MarkdownCell h1").first.scroll_into_view_if_needed()
        heading = page.locator(".jp-MarkdownCell h1").first.inner_text()
        assert page.evaluate(f"t => {_CJK}.test(t)", heading), f"the first heading is not Chinese: {heading}"
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        checker_lines = [line for text in outputs for line in text.splitlines() if line.startswith("[ok]")]
        assert checker_lines and all(page.evaluate(f"t => {_CJK}.test(t)", line) for line in checker_lines), checker_lines[:3]
        labels = page.locator(".jp-OutputArea-output .widget-label").all_inner_texts()
        assert any(page.evaluate(f"t => {_CJK}.test(t)", label) for label in labels), f"widget labels: {labels}"
        assert page.locator(".jp-OutputArea-output img").count() >= 3, "the notebook's figures are not shown"
        page.locator(".jp-MarkdownCell h1").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "zh_notebook.png"), clip={"x": 0, "y": 0, "width": 1300, "height": 1300})
        widget = page.locator(".jp-OutputArea-output", has=page.locator(".jupyter-widgets.widget-vbox")).first
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(shots / "zh_widget_sequence.png"))
        _trim(shots / "zh_widget_sequence.png")
    except Exception:
        page.screenshot(path=str(shots / "failed_zh.png"))
        raise
    finally:
        page.close()
