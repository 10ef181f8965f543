"""Start JupyterLab on the course's notebooks, as a normal user or as root.

    python scripts/lab.py                                        # opens a browser on this machine
    python scripts/lab.py --no-browser --port=8890 --ip=0.0.0.0  # any extra JupyterLab options

`make lab` runs this with the venv's Python (its LAB_ARGS become the extra options); with conda, run
it after `conda activate sdcourse`. JupyterLab refuses to start as root ("Running as root is not
recommended. Use --allow-root to bypass."), which is the default user in Docker images and on many
rented GPU machines, so this adds `--allow-root` when, and only when, the user is root.

JupyterLab runs with the same Python as this script (`python -m jupyterlab`), so it always uses
the environment that has the course installed, whatever `jupyter` comes first on the PATH.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def is_root() -> bool:
    """True for the superuser on Linux/macOS (effective uid 0); Windows has no such check."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(extra: list[str], root: bool) -> list[str]:
    """The JupyterLab command line: this Python, the notebooks folder, --allow-root for root, the extras."""
    command = [sys.executable, "-m", "jupyterlab", str(NOTEBOOKS)]
    if root and "--allow-root" not in extra:
        command.append("--allow-root")
    return command + extra


def main(argv: list[str]) -> int:
    if not NOTEBOOKS.is_dir():
        raise SystemExit(f"scripts/lab.py: no notebooks folder at {NOTEBOOKS}. Run it from a clone of the course.")
    root = is_root()
    command = lab_command(argv, root)
    print(
        f"Starting JupyterLab on {NOTEBOOKS}{' (as root: --allow-root added)' if root else ''}.\n"
        "Open the URL it prints below, http://127.0.0.1:<port>/lab?token=<token>. Stop it with Ctrl-C, twice.\n"
        "Remote machine? Start it with --no-browser (make lab LAB_ARGS=\"--no-browser\"), then on your own\n"
        "computer run  ssh -N -L 8888:127.0.0.1:8888 you@remote-machine  (8888: the port it prints)\n"
        "and open the same URL there.",
        flush=True,
    )
    if os.name == "posix":
        os.execv(sys.executable, command)  # replace this process: Ctrl-C and kill reach JupyterLab directly
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
