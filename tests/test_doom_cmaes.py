"""TakeCover's CMA-ES in phases (a DVC stage each): the phases together are the uninterrupted run, a phase restarts
from its predecessor when that changed, and refuses a predecessor of another configuration or another M."""
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from wmlib.experiments.doom import Run
from wmlib.experiments.doom import controller as dc
from wmlib.experiments.doom.params import DoomParams
from wmlib.experiments.doom.world_model import make_mdnrnn
from wmlib.io import load_json, save_torch
from wmlib.params import load_params

Z, H, TAU = 4, 8, 1.15


def make_run(root, phases: int, m_seed: int = 0, **controller) -> Run:
    """A smoke run on a tiny M (z 4, hidden 8) with 6 generations of CMA-ES in `phases` phases, in-process."""
    p = load_params(DoomParams, "smoke")
    c = p.controller.model_copy(update={"popsize": 4, "rollouts": 2, "generations": 6, "phases": phases,
                                        "max_steps": 30, "eval_every": 2, "eval_episodes": 3, **controller})
    p = p.model_copy(update={"controller": c, "device": "cpu",
                             "parallel": p.parallel.model_copy(update={"workers": 1})})
    run = Run("smoke", p, root / "data", root / "results")
    run.data.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(m_seed)
    m = make_mdnrnn(Z, H, 3)
    with torch.no_grad():  # a done logit that swings with the state: dreams of 1 to 30 frames
        m.head.weight[-1] *= 10
        m.head.bias[-1] = -1
    rng = np.random.default_rng(0)
    save_torch({"z_size": Z, "hidden": H, "mixtures": 3, "model": m.state_dict(), "action_input": "move",
                "initial_mu": rng.standard_normal((5, Z)).astype(np.float32),
                "initial_logvar": np.zeros((5, Z), np.float32)}, run.data / "mdnrnn.pt")
    save_torch({"z_size": Z, "model": {}}, run.data / "vae.pt")  # shipped to the workers, unused by dreams
    return run


def untimed(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_phases_continuing_each_other_make_the_uninterrupted_run(tmp_path, monkeypatch):
    whole = dc.train_controller(make_run(tmp_path / "whole", phases=1), TAU)
    run = make_run(tmp_path / "phased", phases=3)
    generations, dream_scores = [], dc.dream_scores

    def counted(pool, shared, weights, rollouts, tau, max_steps, seed):
        if seed < 10**6:  # the fitness of generation `seed` (evaluations of the mean have seeds from 10**6)
            generations[-1].append(seed)
        return dream_scores(pool, shared, weights, rollouts, tau, max_steps, seed)
    monkeypatch.setattr(dc, "dream_scores", counted)
    for k in (1, 2, 3):
        generations.append([])
        assert dc.train_phase(run, TAU, k).generation == 2 * k
    assert generations == [[1, 2], [3, 4], [5, 6]]  # each phase runs its own generations only
    assert [pickle.loads(dc.phase_checkpoint(run, TAU, k).read_bytes()).generation for k in (1, 2)] == [2, 4]
    generations.append([])
    phased = dc.train_controller(run, TAU)  # every phase done: only loaded
    assert generations[-1] == []
    assert len({h["mean"] for h in whole.history}) > 1  # the fitness is not constant: the comparison means something
    assert untimed(phased.history) == untimed(whole.history)
    assert untimed(phased.evaluations) == untimed(whole.evaluations)
    np.testing.assert_array_equal(phased.best_params, whole.best_params)
    np.testing.assert_array_equal(dc.load_controller_params(run, TAU), phased.best_params)
    assert load_json(run.tau_dir(TAU) / "controller.json")["phases"] == 3
    assert len(pd.read_csv(run.tau_dir(TAU) / "cmaes.csv")) == 6


def test_a_phase_restarts_from_its_predecessor_when_that_changed(tmp_path):
    run = make_run(tmp_path, phases=3)
    dc.train_phase(run, TAU, 1)
    stale = dc.train_phase(run, TAU, 2)
    run = make_run(tmp_path, phases=3, m_seed=1)  # another M: phase 1 starts over (its checkpoint names the old M)
    first = dc.train_phase(run, TAU, 1)
    second = dc.train_phase(run, TAU, 2)
    assert untimed(first.history) != untimed(stale.history[:2])
    assert untimed(second.history[:2]) == untimed(first.history)  # continued the new phase 1, not its stale file
    assert second.generation == 4


def test_a_phase_refuses_a_predecessor_of_another_configuration_or_m(tmp_path):
    dc.train_phase(make_run(tmp_path, phases=3), TAU, 1)
    with pytest.raises(ValueError, match=r"1\.15-1\.pkl: written for another configuration"):
        dc.train_phase(make_run(tmp_path, phases=3, rollouts=3), TAU, 2)
    with pytest.raises(ValueError, match=r"1\.15-1\.pkl: written for another configuration"):
        dc.train_phase(make_run(tmp_path, phases=3, m_seed=1), TAU, 2)


def test_a_phase_outside_the_schedule_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"phase must be in 1\.\.controller\.phases=3, got 4"):
        dc.train_phase(make_run(tmp_path, phases=3), TAU, 4)
