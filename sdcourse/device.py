"""Where the course computes: the best device available, a few environment facts, and how
long-running loops (sampling, training, evaluation) show their progress there."""
from __future__ import annotations

import os
import sys
from typing import Iterable, Optional, Union

import torch

from .i18n import tr


def default_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def on_colab() -> bool:
    """True inside Google Colab (its runtime imports the `google.colab` module)."""
    return "google.colab" in sys.modules


def set_threads(n: int | None = None) -> int:
    """Set PyTorch's CPU thread count from `n` or the SDCOURSE_THREADS variable.

    On a busy 2-core machine two threads can be >5x slower than one (the threads wait for each
    other at barriers), so the thread count is a setting, not a constant. Returns the count in use.
    """
    if n is None:
        env = os.environ.get("SDCOURSE_THREADS")
        n = int(env) if env else None
    if n is not None:
        if n < 1:
            raise ValueError(tr(f"set_threads: thread count must be >= 1, got {n}."))
        torch.set_num_threads(n)
    return torch.get_num_threads()


def describe_device(device: torch.device | None = None) -> str:
    """One line for the learner: which device, and its name when it is a GPU."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return "cpu"


# ----------------------------------------------------------------------------- progress bars

class _Stderr:
    """sys.stderr as it is at each write (Jupyter swaps it per cell), without carriage returns."""

    def write(self, text: str) -> None:
        sys.stderr.write(text.replace("\r", ""))

    def flush(self) -> None:
        sys.stderr.flush()


def _final_line_bar():
    from tqdm.std import tqdm

    class FinalLineBar(tqdm):
        """A text tqdm that draws nothing while it runs and one finished line when closed."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, delay=float("inf"), file=_Stderr(), leave=True, **kwargs)

        def close(self):
            self.delay = 0  # now draw: the final state, once
            super().close()

    return FinalLineBar


def progress_bar(iterable: Optional[Iterable] = None, progress: Union[bool, str] = True, **kwargs):
    """A tqdm progress bar whose output reads well wherever it ends up, committed notebooks included.

    progress=True: in a terminal a live bar; anywhere else (Jupyter, a notebook run by nbclient,
        a log file) nothing while it runs and one finished line when it closes, e.g.
        `ddim: 100%|##########| 25/25 [00:03<00:00, 7.10it/s]`: never a bar frozen at 0%.
    progress="live": tqdm.auto's live bar, a widget in Jupyter. Only for interactive sessions:
        a notebook that is saved keeps the widget's first frame as text, "0%".
    progress=False: no bar (the returned object still counts, silently).
    kwargs go to tqdm (total, desc, unit, initial, ...). Use it as tqdm: iterate over it, or
    call .update(n) and .close() (or use it in a `with` block).
    """
    if progress not in (True, False, "live"):
        raise ValueError(tr(f"progress must be True, False or 'live', got {progress!r}."))
    if progress == "live":
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    if progress and sys.stderr is not None and sys.stderr.isatty():
        from tqdm.std import tqdm

        return tqdm(iterable, **kwargs)
    if not progress:
        from tqdm.std import tqdm

        return tqdm(iterable, disable=True, **kwargs)
    return _final_line_bar()(iterable, **kwargs)
