"""The widgets in a real browser: JupyterLab + headless Debian Chromium driven by playwright.

For every notebook with a widget (a small notebook of this test calling all four widgets, and the
course notebooks that call them), Run All, check that each widget is a live view (widget DOM, not
the "VBox(children=...)" text fallback), move a control and check the picture changed.

Needs /usr/bin/chromium (`apt-get install chromium`); never downloads a browser. Skipped when it
is missing, unless SDCOURSE_REQUIRE_BROWSER=1 (CI), then it fails. Screenshots go to
$SDCOURSE_SCREENSHOTS (e.g. figures/) or to pytest's tmp dir.
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

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDGET_CALLS = ("time_embedding_view(", "sequence_view(", "shape_ledger(", "attention_explorer(")
COURSE_NOTEBOOKS = ("01_time_embedding", "04_image_as_sequence", "05_unet")

SETUP = """\
import torch
from sdcourse import Diffusion, UNetConfig, sinusoidal_embedding, widgets
from sdcourse.record import AttentionRecorder
torch.manual_seed(0)
cfg = UNetConfig.tiny()
model = Diffusion(cfg).eval()
tokens = ["<start>", "red", "circle", "top", "left", "<end>"]
latent, context = torch.randn(1, 4, 8, 8), torch.randn(2, len(tokens), cfg.d_context)
with AttentionRecorder(model, kind="cross", heads="all", per_timestep=True, cfg=True, tokens=tokens) as rec:
    for t in (900, 500, 100):
        model(torch.cat([latent, latent]), context, sinusoidal_embedding(t, cfg.n_time_embd))
image = torch.rand(3, 64, 64)"""

# (widget name, code, how to move a control: ("slider", description) or ("dropdown", description))
CELLS = [
    ("time_embedding", "widgets.time_embedding_view()", ("slider", "timestep t")),
    ("sequence", "widgets.sequence_view(height=8, width=8, channels=320)", ("slider", "row")),
    ("shape_ledger", "widgets.shape_ledger()", ("slider", "height (px)")),
    ("attention", "widgets.attention_explorer(rec, image=image, tokens=tokens)", ("dropdown", "token")),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_test_notebook(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP)] + [nbformat.v4.new_code_cell(code) for _, code, _ in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "widgets_browser_test.ipynb"
    nbformat.write(nb, path)
    return path


def _course_notebooks_with_widgets(folder: Path) -> list:
    """Copies of the course notebooks (01, 04, 05) that call a widget, in `folder`."""
    found = []
    for stem in COURSE_NOTEBOOKS:
        path = ROOT / "notebooks" / f"{stem}.ipynb"
        if not path.exists():
            continue
        cells = json.loads(path.read_text())["cells"]
        if any(call in "".join(c["source"]) for c in cells if c["cell_type"] == "code" for call in WIDGET_CALLS):
            found.append(path.name)
    if found:
        for item in (ROOT / "notebooks").iterdir():  # notebooks may read files beside them
            target = folder / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            elif not target.exists():
                shutil.copy(item, target)
    return found


@pytest.fixture(scope="module")
def chromium_path():
    if not CHROMIUM.exists():
        reason = "Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"
        if os.environ.get("SDCOURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; SDCOURSE_REQUIRE_BROWSER=1 requires the browser test to run")
        pytest.skip(reason)
    pytest.importorskip("playwright.sync_api")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def lab(chromium_path, tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 (empty token) serving a temporary folder."""
    folder = tmp_path_factory.mktemp("lab")
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JUPYTER_CONFIG_DIR=str(folder / ".config"), JUPYTER_RUNTIME_DIR=str(folder / ".runtime"),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root", "--ServerApp.disable_check_xsrf=True",
           f"--ServerApp.root_dir={folder}", f"--LabApp.workspaces_dir={folder / '.workspaces'}",
           f"--LabApp.user_settings_dir={folder / '.settings'}", "--LabApp.news_url=None",
           "--ServerApp.port_retries=0"]
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


def _run_all(page, url: str, name: str, timeout_ms: int):
    page.goto(f"{url}/lab/tree/{name}?reset", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # wait until the kernel went busy and came back idle with every cell numbered
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""", timeout=timeout_ms)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
    assert not tracebacks, f"{name}: a cell failed:\n{tracebacks[0][:2000]}"


def _widget_outputs(page):
    """Output areas holding a live widget view."""
    return page.locator(".jp-OutputArea-output:has(.jupyter-widgets)")


def _picture(output) -> str:
    """What the widget currently shows: Image src(s) and the HTML text."""
    srcs = output.locator("img").evaluate_all("els => els.map(e => e.src).join('|')")
    text = output.locator(".widget-html-content").evaluate_all("els => els.map(e => e.innerHTML).join('|')")
    return srcs + "#" + text


def _move(page, output, how):
    kind, description = how
    box = output.locator(".widget-inline-hbox", has=page.locator(".widget-label", has_text=description)).first
    if kind == "slider":
        readout = box.locator(".widget-readout")
        current = int(readout.inner_text())
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(current + 64 if "px" in description else current + 3))
        page.keyboard.press("Enter")
    else:
        select = box.locator("select")
        options = select.locator("option").all_inner_texts()
        select.select_option(index=(len(options) - 2) % len(options))


def _check_notebook(page, url, name, shots, moves, timeout_ms=60_000):
    try:
        _check_views(page, url, name, shots, moves, timeout_ms)
    except Exception:
        page.screenshot(path=str(shots / f"failed_{Path(name).stem}.png"), full_page=True)
        raise


def _check_views(page, url, name, shots, moves, timeout_ms):
    _run_all(page, url, name, timeout_ms)
    body = page.locator(".jp-Notebook").inner_text()
    assert "Loading widget" not in body and "VBox(children=" not in body, f"{name}: a widget fell back to text"
    outputs = _widget_outputs(page)
    outputs.first.wait_for(timeout=timeout_ms)
    assert outputs.count() >= len(moves), f"{name}: {outputs.count()} widget views, expected {len(moves)}"
    for i, (label, how) in enumerate(moves):
        out = outputs.nth(i)
        out.scroll_into_view_if_needed()
        assert out.locator(".widget-slider, .widget-dropdown, .widget-image, .widget-html").count() > 0
        before = _picture(out)
        if how is not None:
            _move(page, out, how)
            page.wait_for_function(
                "([el, before]) => { const s = [...el.querySelectorAll('img')].map(e => e.src).join('|') + '#' + "
                "[...el.querySelectorAll('.widget-html-content')].map(e => e.innerHTML).join('|'); return s !== before; }",
                arg=[out.element_handle(), before], timeout=timeout_ms)
        page.wait_for_timeout(300)  # let the new image paint before the screenshot
        out.screenshot(path=str(shots / f"widget_{label}.png"))


def test_widgets_live_in_jupyterlab(lab, browser, shots):
    url, folder = lab
    start = time.monotonic()
    _write_test_notebook(folder)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        _check_notebook(page, url, "widgets_browser_test.ipynb", shots, [(label, how) for label, _, how in CELLS])
    finally:
        page.close()
    assert time.monotonic() - start < 120


def test_course_notebooks_widgets_live(lab, browser, shots):
    url, folder = lab
    names = _course_notebooks_with_widgets(folder)
    if not names:
        pytest.skip("no course notebook (01, 04, 05) calls a widget yet")
    for name in names:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            cells = json.loads((folder / name).read_text())["cells"]
            count = sum(1 for c in cells if c["cell_type"] == "code"
                        for call in WIDGET_CALLS if call in "".join(c["source"]))
            _check_notebook(page, url, name, shots / "course", [(f"{Path(name).stem}_{i}", None) for i in range(count)])
        finally:
            page.close()
