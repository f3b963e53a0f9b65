import os

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run on CUDA when this machine has it, and are skipped cleanly otherwise."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def no_scale_env(monkeypatch):
    monkeypatch.delenv("WMLIB_SCALE", raising=False)
    return os.environ
