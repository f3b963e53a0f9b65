import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def no_scale_env(monkeypatch):
    monkeypatch.delenv("WMLIB_SCALE", raising=False)
    return os.environ
