import gc

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_collect():
    torch.manual_seed(0)
    yield
    gc.collect()
