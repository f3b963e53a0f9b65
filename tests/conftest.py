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


@pytest.fixture
def interrupt(monkeypatch):
    """interrupt(module, name, at, run, after=False): call `run()` with `module.name` stopping it at its `at`-th
    call by KeyboardInterrupt (as a Ctrl-C or a kill there would; `after`: once that call has returned), expect the
    interruption, then put `module.name` back so that the test can resume the run and compare it with an
    uninterrupted one. Returns how many calls were made."""
    def interrupt(module, name: str, at: int, run, after: bool = False) -> int:
        real, calls = getattr(module, name), []

        def stopping(*args, **kwargs):
            calls.append(1)
            if len(calls) == at and not after:
                raise KeyboardInterrupt
            out = real(*args, **kwargs)
            if len(calls) == at:
                raise KeyboardInterrupt
            return out

        monkeypatch.setattr(module, name, stopping)
        with pytest.raises(KeyboardInterrupt):
            run()
        monkeypatch.setattr(module, name, real)
        return len(calls)

    return interrupt
