"""`make lab`, the README's first command, starts JupyterLab on the course's notebooks.

Each run starts `make lab` headless, as the README says for a remote machine
(`LAB_ARGS="--no-browser --port=... --ip=127.0.0.1"`, a free port, JupyterLab's own generated
token), takes the URL that JupyterLab prints, waits until `/api/status` answers at that URL, lists
the notebooks through the contents API, then kills the process group and checks that nothing is
left (no process, no server file). It runs as the user running the tests (root in CI, Docker and
many rented GPU machines: JupyterLab refuses root without `--allow-root`) and, when that user is
root, once more as the unprivileged uid 65534 (`nobody`), who must not get `--allow-root`. The
conda command (`python scripts/lab.py ...` in an activated environment) runs as well.

`make lab` must use the existing venv as it is: the venv of the Python running these tests,
passed as VENV. It must be up to date (`make test` installs first), so make runs no pip; a dry run
checks that before each start. Each JupyterLab takes a few seconds to start.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
COURSE_NOTEBOOK = re.compile(r"^\d\d_\w+\.ipynb$")  # notebooks/NN_name.ipynb
MIN_NOTEBOOKS = 9  # 00_orientation ... 08_real_weights
URL = re.compile(r"(http://127\.0\.0\.1:\d+)/lab(?:\?token=([0-9a-f]+))?")
START_TIMEOUT = 90  # seconds until /api/status answers (a few on an idle machine)
NOBODY = 65534
# make's own variables (set when `make test` runs us) and the Makefile's, which make would read
# from the environment: each run is the README's plain `make lab` plus what the test passes.
OUTER_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "TORCH", "VENV", "LAB_ARGS", "PYTHON")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_made_venv() -> None:
    """The tests' Python must be a venv that `make install` made (so `make lab VENV=...` reuses it)."""
    if (VENV / ".sdcourse-installed").exists():
        return
    message = (f"{VENV} has no .sdcourse-installed stamp: it was not made by `make install`, so `make lab "
               f"VENV={VENV}` would install into it. Run this test with the venv's Python (`make test`).")
    if os.environ.get("MAKELEVEL"):  # under `make test` the venv is always the made one: never skip there
        pytest.fail(message)
    pytest.skip(message)


def _lab_env(home: Path) -> dict:
    """A clean environment: no make variables of an outer `make test`, Jupyter's files in `home`."""
    env = {k: v for k, v in os.environ.items() if k not in OUTER_VARIABLES}
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), PYTHONDONTWRITEBYTECODE="1")
    return env


def _lab_args(port: int) -> str:
    return f"--no-browser --port={port} --ip=127.0.0.1"


def _get(url: str, token: str | None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _group_cmdlines(pgid: int) -> list:
    """The command lines of the processes in a process group (Linux /proc)."""
    lines = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(proc.name)) == pgid:
                lines.append((proc / "cmdline").read_bytes().split(b"\0"))
        except (OSError, ProcessLookupError):
            continue
    return [[part.decode() for part in line if part] for line in lines]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _run_lab(command: list, env: dict, runtime: Path) -> dict:
    """Start `command` in its own process group, wait for the URL JupyterLab prints and /api/status,
    list the notebooks, then stop the group and check that nothing is left. Returns what it saw."""
    runtime.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    output: list = []

    def read() -> None:
        for line in proc.stdout:
            output.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen = {}
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                reader.join(5)
                pytest.fail(f"{' '.join(command)} exited with {proc.returncode} before serving:\n{''.join(output)}")
            match = URL.search("".join(output))
            if match:
                base, token = match.group(1), match.group(2)
                try:
                    seen["status"] = _get(f"{base}/api/status", token)
                    break
                except OSError:
                    pass  # not listening yet
            time.sleep(0.3)
        else:
            pytest.fail(f"no answer from /api/status within {START_TIMEOUT} s; output:\n{''.join(output)}")
        seen["root"] = _get(f"{base}/api/contents/", token)
        if (ROOT / "notebooks" / "solutions").is_dir():
            seen["solutions"] = _get(f"{base}/api/contents/solutions", token)
        seen["cmdlines"] = _group_cmdlines(pgid)
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
            deadline = time.monotonic() + 30
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            leftover = _group_alive(pgid)
            if leftover:
                os.killpg(pgid, signal.SIGKILL)
            reader.join(10)
    seen["output"] = "".join(output)
    assert not leftover, f"processes of `{' '.join(command)}` still ran 30 s after SIGTERM: {_group_cmdlines(pgid)}"
    assert not list(runtime.glob("jpserver-*")), f"JupyterLab left its server files in {runtime}"
    return seen


def _check_listing(seen: dict) -> None:
    """The contents API lists every NN_*.ipynb on disk, at least the course's nine, in notebooks/ (and solutions/)."""
    assert seen["status"].get("started"), seen["status"]
    for folder, listing in (("", seen["root"]), ("solutions", seen.get("solutions"))):
        if listing is None:
            continue
        on_disk = {p.name for p in (ROOT / "notebooks" / folder).iterdir() if COURSE_NOTEBOOK.match(p.name)}
        served = {item["name"] for item in listing["content"] if item["type"] == "notebook"}
        missing = sorted(on_disk - served)
        assert not missing, f"notebooks/{folder} on disk but not listed by JupyterLab: {missing}"
        assert len(on_disk & served) >= MIN_NOTEBOOKS, (
            f"JupyterLab lists {sorted(served)} in notebooks/{folder}: fewer than the course's {MIN_NOTEBOOKS}")
    if "solutions" in seen:
        assert any(item["name"] == "solutions" and item["type"] == "directory" for item in seen["root"]["content"])


def _jupyter_cmdline(seen: dict) -> list:
    labs = [line for line in seen["cmdlines"] if "jupyterlab" in line]
    assert len(labs) == 1, f"expected one JupyterLab process in the group, found {seen['cmdlines']}"
    return labs[0]


def _load_lab_script():
    spec = importlib.util.spec_from_file_location("sdcourse_lab_script", ROOT / "scripts" / "lab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lab_command_adds_allow_root_for_root_only():
    lab = _load_lab_script()
    extra = ["--no-browser", "--port=8890", "--ip=0.0.0.0"]
    as_root, as_user = lab.lab_command(extra, root=True), lab.lab_command(extra, root=False)
    assert as_root.count("--allow-root") == 1 and "--allow-root" not in as_user
    assert as_user[-3:] == extra and as_root[-3:] == extra  # the extra options reach JupyterLab, in order
    assert as_user[1:4] == ["-m", "jupyterlab", str(ROOT / "notebooks")]
    assert lab.lab_command(["--allow-root"], root=True).count("--allow-root") == 1


def _check_no_reinstall(env: dict) -> None:
    """`make lab` with the installed venv would run JupyterLab and no pip (a dry run: nothing executes)."""
    _require_made_venv()
    dry = subprocess.run(["make", "-n", "lab", f"VENV={VENV}", f"LAB_ARGS={_lab_args(1)}"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "scripts/lab.py --no-browser --port=1 --ip=127.0.0.1" in dry.stdout, dry.stdout
    assert "pip" not in dry.stdout, (
        f"`make lab` would reinstall the venv {VENV} (pyproject.toml is newer than its stamp, or TORCH "
        f"changed): run `make install` first.\n{dry.stdout}")


def test_make_lab_reuses_an_up_to_date_venv(tmp_path):
    _check_no_reinstall(_lab_env(tmp_path))


def test_install_stamp_notices_pyproject_and_torch(tmp_path):
    """The stamp is remade when pyproject.toml is newer, or when a given TORCH differs from the recorded one."""
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".sdcourse-torch").write_text("torch==2.13.0\n")
    (venv / ".sdcourse-installed").touch()
    env = _lab_env(tmp_path)

    def reinstalls(*variables: str) -> bool:
        dry = subprocess.run(["make", "-n", "install", f"VENV={venv}", *variables], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, dry.stderr
        return "pip install" in dry.stdout

    assert not reinstalls()  # the default TORCH accepts the installed torch
    assert not reinstalls("TORCH=torch==2.13.0")  # the recorded requirement
    assert reinstalls("TORCH=torch==2.12.0")
    assert reinstalls("TORCH=torch --index-url https://download.pytorch.org/whl/cpu")
    stamp_time = (ROOT / "pyproject.toml").stat().st_mtime - 60
    os.utime(venv / ".sdcourse-installed", (stamp_time, stamp_time))
    assert reinstalls()  # pyproject.toml changed since the install


def test_make_lab_serves_the_notebooks(tmp_path):
    _check_no_reinstall(_lab_env(tmp_path))
    command = ["make", "lab", f"VENV={VENV}", f"LAB_ARGS={_lab_args(_free_port())}"]
    seen = _run_lab(command, _lab_env(tmp_path), tmp_path / "runtime")
    _check_listing(seen)
    assert ("--allow-root" in _jupyter_cmdline(seen)) == (os.geteuid() == 0)


def test_conda_command_serves_the_notebooks(tmp_path):
    """The README's command after `conda activate sdcourse`: `python scripts/lab.py` with extra options."""
    command = [sys.executable, "scripts/lab.py", *_lab_args(_free_port()).split()]
    seen = _run_lab(command, _lab_env(tmp_path), tmp_path / "runtime")
    _check_listing(seen)
    assert ("--allow-root" in _jupyter_cmdline(seen)) == (os.geteuid() == 0)


def _as_nobody(home: Path) -> list:
    """A command prefix that runs as uid/gid 65534. When the venv's interpreter lies in a directory
    only root can enter (pyenv under /root), the unprivileged process keeps one capability, to read
    files and enter directories (CAP_DAC_READ_SEARCH; CAP_DAC_OVERRIDE where a container lacks it):
    its uid, which is what JupyterLab's root check looks at, is still a normal user's."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs util-linux's setpriv to run as an unprivileged user")
    plain = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    # The probe is make running the venv's Python, as `make lab` will: make checks that it may
    # execute the file itself (setpriv's own first exec would still look it up with root's rights).
    probe = home / "probe.mk"
    probe.write_text(f"probe:\n\t{VENV / 'bin' / 'python'} -V\n")
    tried = []
    for capability in (None, "dac_read_search", "dac_override"):
        prefix = plain + ([] if capability is None else [
            "--securebits=+no_setuid_fixup", f"--inh-caps=-all,+{capability}", f"--ambient-caps=+{capability}"])
        result = subprocess.run(prefix + ["make", "-s", "-f", str(probe)], cwd=home, capture_output=True,
                                text=True, timeout=60, env=_lab_env(home))
        if result.returncode == 0:
            return prefix
        tried.append(f"{capability or 'no capability'}: {result.stderr.strip()[-200:]}")
    pytest.skip(f"uid {NOBODY} cannot run {VENV}/bin/python here ({'; '.join(tried)})")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="not root: test_make_lab_serves_the_notebooks already ran as a normal user")
def test_make_lab_as_a_normal_user():
    home = Path(tempfile.mkdtemp(prefix="sdcourse-lab-"))  # not under pytest's root-only tmp dir
    try:
        _check_no_reinstall(_lab_env(home))
        (home / "runtime").mkdir()
        for path in (home, home / "runtime"):
            os.chown(path, NOBODY, NOBODY)
        prefix = _as_nobody(home)
        command = prefix + ["make", "lab", f"VENV={VENV}", f"LAB_ARGS={_lab_args(_free_port())}"]
        seen = _run_lab(command, _lab_env(home), home / "runtime")
        _check_listing(seen)
        assert "--allow-root" not in _jupyter_cmdline(seen)
        assert "as root" not in seen["output"]
    finally:
        shutil.rmtree(home, ignore_errors=True)
