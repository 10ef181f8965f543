import fcntl
import gc
import tempfile
from pathlib import Path

import pytest
import torch

# `make test` runs two pytest-xdist workers. The tests marked `slow` hold the full-size SD v1 model
# (~7-15 GB each): they take this lock, so that two of them never share the machine's memory.
BIG_MEMORY_LOCK = Path(tempfile.gettempdir()) / "sdcourse-big-memory.lock"


@pytest.fixture(autouse=True)
def _seed_and_collect(request):
    lock = None
    if request.node.get_closest_marker("slow"):
        lock = open(BIG_MEMORY_LOCK, "w")
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed below
    torch.manual_seed(0)
    yield
    gc.collect()
    if lock is not None:
        lock.close()
