"""The sample-efficiency comparison over seeds (wmlib.experiments.mujoco.comparison) on made-up finished runs: the
mean over seeds and its bootstrap interval, the published seeds beside them, and the aggregate over DMC tasks,
each against a direct computation."""
import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from wmlib import published
from wmlib.experiments.mujoco import comparison
from wmlib.experiments.mujoco.params import MujocoParams
from wmlib.experiments.mujoco.train import run_dir
from wmlib.io import save_csv, save_json
from wmlib.params import load_params


def exact_bootstrap_interval(x, confidence=0.95):
    """Percentile interval of the mean over all n^n equally likely resamples of x (no Monte Carlo)."""
    means = np.sort([np.mean(s) for s in itertools.product(x, repeat=len(x))])
    return np.quantile(means, (1 - confidence) / 2), np.quantile(means, (1 + confidence) / 2)


def test_bootstrap_interval_matches_the_exact_bootstrap():
    x = [100.0, 200.0, 300.0, 400.0, 900.0]
    lo, hi = comparison.bootstrap_interval(x, reps=20_000)
    exact = exact_bootstrap_interval(x)
    assert lo == pytest.approx(exact[0], abs=8) and hi == pytest.approx(exact[1], abs=8)
    assert np.isnan(comparison.bootstrap_interval([5.0])[0])


def test_the_bootstrap_resamples_each_task_on_its_own():
    """Stratified: the runs of each task are resampled independently. Two anti-correlated tasks (every run's
    mean over tasks is 0.5) still give an interval, the exact one over all 27 x 27 resamples."""
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    cols = [[np.mean(r) for r in itertools.product(x[:, t], repeat=3)] for t in range(2)]
    exact = np.quantile([(a + b) / 2 for a in cols[0] for b in cols[1]], [0.025, 0.975])
    point, ci = comparison.stratified_bootstrap(x, lambda s: np.array([s.mean()]), reps=20_000)
    assert point[0] == 0.5 and ci[:, 0] == pytest.approx(exact, abs=0.02) and ci[1, 0] - ci[0, 0] > 0.3


def fake_returns(learner: str, task: str, seed: int) -> float:
    return {"tdmpc": 900.0, "dreamer": 300.0, "sac": 500.0}[learner] - 50 * seed + len(task)


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Default-scale params (budgets with published points) and a finished run of every learner, task and seed."""
    p = load_params(MujocoParams, "default")
    for learner, task, seed in itertools.product(comparison.LEARNERS, p.budgets, p.seeds):
        out = run_dir(tmp_path, learner, task, seed)
        r = fake_returns(learner, task, seed)
        save_json({"mean": r, "std": 1.0, "n": 10, "returns": [r] * 10, "episodes": 7, "core_hours": 0.5},
                  out / "eval.json")
        save_csv(pd.DataFrame({"frames": [p.budgets[task].frames], "mean": [r], "std": [1.0]}), out / "curve.csv")
    monkeypatch.setattr(comparison, "random_returns", lambda *a, **k: [1.0, 3.0])
    return SimpleNamespace(params=p, results=tmp_path, scale="default")


def test_rows_are_the_mean_over_seeds_with_their_interval(run):
    table = comparison.comparison_table(run)
    p = run.params
    for task in p.budgets:
        for learner in comparison.LEARNERS:
            row = table[(table.task == task) & (table.method == learner)].iloc[0]
            x = [fake_returns(learner, task, s) for s in p.seeds]
            assert row["mean"] == pytest.approx(np.mean(x)) and row["std"] == pytest.approx(np.std(x))
            assert row.n == len(p.seeds) == 3 and row.seed_returns == " ".join(f"{v:.1f}" for v in x)
            assert (row.ci_low, row.ci_high) == comparison.bootstrap_interval(x)
            assert row.ci_low <= row["mean"] <= row.ci_high
    walker = table[(table.task == "dmc/walker-walk") & (table.method == "tdmpc")].iloc[0]
    assert walker.published == "tdmpc" and walker.published_mean == pytest.approx(953.6)  # TD-MPC v1, 5 seeds at 40k
    cheetah = table[(table.task == "gym/HalfCheetah-v5") & (table.method == "tdmpc")].iloc[0]
    assert np.isnan(cheetah.published_mean)
    rows = comparison.summary_rows(run, table)
    assert {"ci_low", "ci_high", "paper_mean", "paper_std"} <= set(rows.columns)


def test_published_table_places_our_seeds_among_theirs(run):
    table = comparison.comparison_table(run)
    ranks = comparison.published_table(run, table)
    row = ranks[(ranks.task == "dmc/walker-walk") & (ranks.method == "tdmpc") & (ranks.file == "tdmpc.csv")].iloc[0]
    theirs = [943.0, 952.0, 954.0, 956.0, 963.0]  # tdmpc.csv, walker-walk, 40k frames
    ours = [fake_returns("tdmpc", "dmc/walker-walk", s) for s in run.params.seeds]
    assert row.ranks == " ".join(f"{sum(t < x for t in theirs)}/5" for x in ours)
    assert (row.published_min, row.published_max, row.published_seeds) == (943.0, 963.0, 5)


def test_aggregate_is_the_iqm_over_runs_and_tasks(run):
    table = comparison.comparison_table(run)
    agg, scores = comparison.aggregate(run, table, reps=2000)
    tasks = [t for t in run.params.budgets if t.startswith("dmc/")]
    ours = np.array([[fake_returns("tdmpc", t, s) for t in tasks] for s in run.params.seeds]) / 1000
    np.testing.assert_allclose(scores["TD-MPC (MPPI)"], ours)
    flat = np.sort(ours.ravel())  # 9 scores: trim 25% (2) at each end
    row = agg.set_index("method").loc["TD-MPC (MPPI)"]
    assert row.iqm == pytest.approx(flat[2:-2].mean()) and row["mean"] == pytest.approx(ours.mean())
    assert row.iqm_low <= row.iqm <= row.iqm_high and row.mean_low <= row["mean"] <= row.mean_high
    v1 = np.array([[published.at("tdmpc.csv", "tdmpc", "states", t[4:], run.params.budgets[t].frames).seeds[s]
                    for t in tasks] for s in range(1, 6)]) / 1000
    np.testing.assert_allclose(scores["tdmpc (states), published"], v1)
    taus, profiles, cis = comparison.performance_profiles(scores, reps=200)
    assert profiles["TD-MPC (MPPI)"][0] == 1.0 and profiles["TD-MPC (MPPI)"][-1] == 0.0
    assert profiles["TD-MPC (MPPI)"][50] == pytest.approx((ours > taus[50]).mean())


def test_learning_curves_and_published_curves(run):
    curves = comparison.learning_curves(run)
    assert len(curves) == len(comparison.LEARNERS) * len(run.params.budgets) * len(run.params.seeds)
    pc = comparison.published_curves(run)
    walker = pc[(pc.task == "dmc/walker-walk") & (pc.reference == "tdmpc (states, tdmpc.csv)")]
    assert walker.frames.max() == 40_000 and walker.set_index("frames").loc[40_000, "min"] == 943.0
