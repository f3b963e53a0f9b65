"""Interrupted training resumes where its last checkpoint left it and ends exactly where an uninterrupted run
ends: the model-based loop (TD-MPC, Dreamer) in process, and V, TD-MPC after `kill -9` (CMA-ES: test_cmaes.py)."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from wmlib.experiments.mujoco.params import BudgetParams, MujocoParams
from wmlib.io import load_torch
from wmlib.params import load_params

TASK = "dmc/cartpole-swingup"  # 25 agent steps per smoke episode (200 frames at action repeat 8)


def smoke_params(frames=800, eval_every=200):
    """Smoke TD-MPC/Dreamer with a checkpoint after every episode; TD-MPC's first falls in its 50 seed steps."""
    p = load_params(MujocoParams, "smoke")
    return p.model_copy(update={"budgets": {TASK: BudgetParams(frames=frames, eval_every=eval_every)}})


def count_calls(monkeypatch, cls, name) -> list:
    calls, real = [], getattr(cls, name)

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, counted)
    return calls


def assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert_same_state(a[k], b[k])
        elif isinstance(a[k], torch.Tensor):
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
        else:
            assert a[k] == b[k], k


@pytest.mark.parametrize("method", ["tdmpc", "dreamer"])
def test_interrupted_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch, interrupt, method):
    from wmlib.experiments.mujoco import dreamer, train
    train_fn, agent_cls = {"tdmpc": (train.train_tdmpc, train.TDMPC),
                           "dreamer": (dreamer.train_dreamer, dreamer.Dreamer)}[method]
    p, job = smoke_params(), (TASK, 0, "full")
    ref = train_fn((p, tmp_path / "ref", tmp_path / "ref_results"), job)

    shared = (p, tmp_path / "data", tmp_path / "results")
    interrupt(train, "save_torch", 1, lambda: train_fn(shared, job), after=True)  # stopped once the first is written
    ckpt = train.run_dir(tmp_path / "data", method, *job) / "checkpoint.pt"
    before = load_torch(ckpt)["state"]
    assert before["step"] == 25  # one episode, then the first checkpoint

    updates = count_calls(monkeypatch, agent_cls, "update")
    resumed = train_fn(shared, job)
    curve, reference = (pd.read_csv(train.run_dir(root, method, *job) / "curve.csv")
                        for root in (tmp_path / "results", tmp_path / "ref_results"))
    # a resume, not a restart: only the updates after the checkpoint are made again
    assert len(updates) == curve.updates.iloc[-1] - before["updates"] > 0
    assert resumed["returns"] == ref["returns"]
    assert_same_state(*(load_torch(train.run_dir(root, method, *job) / "agent.pt")
                        for root in (tmp_path / "data", tmp_path / "ref")))
    assert curve["mean"].tolist() == reference["mean"].tolist()
    assert not ckpt.exists()  # a finished job keeps its final weights only: a rerun starts over


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import numpy as np
    kind, out, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])

    def kill_on(module, name):
        real, calls = getattr(module, name), []
        def wrapper(*args, **kwargs):
            calls.append(1)
            if len(calls) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        setattr(module, name, wrapper)
        return calls

    def count(cls, name):
        real, calls = getattr(cls, name), []
        def counted(self, *args, **kwargs):
            calls.append(1)
            return real(self, *args, **kwargs)
        setattr(cls, name, counted)
        return calls

    if kind == "vae":
        from wmlib import training
        from wmlib.io import save_torch
        from wmlib.params import VAEParams
        training.CHECKPOINT_SECONDS = 0  # a checkpoint after every step
        steps = kill_on(training, "vae_loss")  # killed while computing step `kill_at`
        frames = np.random.default_rng(0).integers(0, 40, (32, 64, 64, 3), dtype=np.uint8)
        p = VAEParams(z_size=8, epochs=2, batch_size=8, lr=1e-3, kl_tolerance=0.5, frame_stride=1)
        vae, _ = training.train_vae(frames, p, out / "vae.ckpt", seed=0, progress=False)
        save_torch(vae.state_dict(), out / "vae.pt")
        print("steps trained:", len(steps))
    else:
        from wmlib.experiments.mujoco import train
        from wmlib.experiments.mujoco.params import BudgetParams, MujocoParams
        from wmlib.params import load_params
        p = load_params(MujocoParams, "smoke")
        p = p.model_copy(update={"budgets": {"dmc/cartpole-swingup": BudgetParams(frames=800, eval_every=200)}})
        kill_on(train, "save_torch")  # killed as it writes checkpoint `kill_at`
        steps = count(train.TDMPC, "update")
        train.train_tdmpc((p, out / "data", out / "results"), ("dmc/cartpole-swingup", 0, "full"))
        print("steps trained:", len(steps))
""")


def run_kill_script(kind, out, kill_at=0):
    return subprocess.run([sys.executable, "-c", KILL_SCRIPT, kind, str(out), str(kill_at)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})


def test_world_model_killed_mid_run_resumes_and_matches_an_uninterrupted_one(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    ref.mkdir(), run.mkdir()
    assert run_kill_script("vae", ref).returncode == 0
    assert run_kill_script("vae", run, kill_at=5).returncode == -signal.SIGKILL
    assert load_torch(run / "vae.ckpt")["step"] == 4  # at most the step in progress is lost
    resumed = run_kill_script("vae", run)
    assert resumed.returncode == 0 and "steps trained: 4\n" in resumed.stdout  # steps 5-8 only: a resume
    assert_same_state(load_torch(run / "vae.pt"), load_torch(ref / "vae.pt"))
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]


def test_model_based_agent_killed_mid_run_resumes_and_matches_an_uninterrupted_one(tmp_path):
    from wmlib.experiments.mujoco import train
    from wmlib.experiments.mujoco.train import run_dir
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert run_kill_script("tdmpc", ref).returncode == 0
    killed = run_kill_script("tdmpc", run, kill_at=3)  # while writing the checkpoint after episode 3
    assert killed.returncode == -signal.SIGKILL
    ckpt = run_dir(run / "data", "tdmpc", TASK, 0) / "checkpoint.pt"
    assert load_torch(ckpt)["state"]["step"] == 50  # the checkpoint after episode 2 survives: one period lost
    resumed = run_kill_script("tdmpc", run)
    assert resumed.returncode == 0 and not ckpt.exists()
    final, reference = (pd.read_csv(run_dir(root / "results", "tdmpc", TASK, 0) / "curve.csv") for root in (run, ref))
    assert final.frames.iloc[-1] == reference.frames.iloc[-1] == 800  # 100 agent steps
    # a resume, not a restart: only the updates after step 50 are made again
    assert f"steps trained: {final.updates.iloc[-1] - 50}\n" in resumed.stdout
    assert_same_state(*(load_torch(run_dir(root / "data", "tdmpc", TASK, 0) / "agent.pt") for root in (run, ref)))
    train.load_agent(load_params(MujocoParams, "smoke"), run / "data", TASK, 0)  # the notebooks' reader, strictly
    assert np.allclose(final["mean"], reference["mean"])
