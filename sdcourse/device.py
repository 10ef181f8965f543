"""Where the course computes: the best device available, and a few environment facts."""
from __future__ import annotations

import os
import sys

import torch


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
            raise ValueError(f"set_threads: thread count must be >= 1, got {n}.")
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
