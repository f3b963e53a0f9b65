"""The sample-efficiency comparison over seeds (wmlib.experiments.mujoco.comparison) on made-up finished runs: the
mean over seeds and its bootstrap interval, the published seeds beside them, the aggregate over DMC tasks, and PETS
(its own experiment's job results) beside SAC, each against a direct computation."""
import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from wmlib import published
from wmlib.experiments.mujoco import comparison
from wmlib.experiments.mujoco.params import MujocoParams
from wmlib.experiments.mujoco.train import run_dir
from wmlib.experiments.pets.params import PETSParams
from wmlib.io import save_csv, save_json
from wmlib.params import load_params


def exact_bootstrap_interval(x, confidence=0.95, method="linear"):
    """Percentile interval of the mean over all n^n equally likely resamples of x (no Monte Carlo); for few values
    the distribution's own quantiles (method "inverted_cdf"), not an interpolation between its atoms."""
    means = np.sort([np.mean(s) for s in itertools.product(x, repeat=len(x))])
    return tuple(np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2], method=method))


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
    if learner == "pets":
        return 480.0 + 30 * seed + len(task)
    return {"tdmpc": 900.0, "dreamer": 300.0, "sac": 500.0}[learner] - 50 * seed + len(task)


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Default-scale params (budgets with published points) and a finished run of every learner, task and seed;
    PETS's where its jobs write them (results/<scale>/pets/full/..., here tmp_path/pets/full/...), on its tasks."""
    p, q = load_params(MujocoParams, "default"), load_params(PETSParams, "default")
    jobs = [(m, t, s) for m in comparison.LEARNERS for t in (q.budgets if m == "pets" else p.budgets) for s in p.seeds]
    for learner, task, seed in jobs:
        out = run_dir(tmp_path, learner, task, seed)
        r = fake_returns(learner, task, seed)
        save_json({"mean": r, "std": 1.0, "n": 10, "returns": [r] * 10, "episodes": 7, "core_hours": 0.5},
                  out / "eval.json")
        save_csv(pd.DataFrame({"frames": [p.budgets[task].frames], "mean": [r], "std": [1.0]}), out / "curve.csv")
    monkeypatch.setattr(comparison, "random_returns", lambda *a, **k: [1.0, 3.0])
    monkeypatch.setattr(comparison, "pets_run", lambda run: SimpleNamespace(params=q, results=tmp_path / "pets"))
    return SimpleNamespace(params=p, results=tmp_path, scale="default")


def test_rows_are_the_mean_over_seeds_with_their_interval(run):
    table = comparison.comparison_table(run)
    p = run.params
    for task in p.budgets:
        for learner in [m for m in comparison.LEARNERS if m != "pets"]:
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
    assert len(curves) == (len(comparison.LEARNERS) - 1) * len(run.params.budgets) * len(run.params.seeds) + 3 * 3
    assert set(curves[curves.method == "pets"].task) == set(load_params(PETSParams, "default").budgets)
    pc = comparison.published_curves(run)
    walker = pc[(pc.task == "dmc/walker-walk") & (pc.reference == "tdmpc (states, tdmpc.csv)")]
    assert walker.frames.max() == 40_000 and walker.set_index("frames").loc[40_000, "min"] == 943.0


def test_pets_rows_are_read_from_the_pets_jobs(run):
    """PETS's rows: on the tasks of pets.budgets only (not dmc/cheetah-run), each the mean over its seeds with the
    bootstrap interval of those seeds, at the shared budget; left out of the DMC aggregate (it lacks a task)."""
    table = comparison.comparison_table(run)
    rows = table[table.method == "pets"].set_index("task")
    assert list(rows.index) == ["dmc/cartpole-swingup", "dmc/walker-walk", "gym/HalfCheetah-v5"]
    for task, row in rows.iterrows():
        x = np.array([fake_returns("pets", task, s) for s in (0, 1, 2)])
        assert row["mean"] == pytest.approx(x.mean()) and row["std"] == pytest.approx(x.std()) and row.n == 3
        assert (row.ci_low, row.ci_high) == pytest.approx(exact_bootstrap_interval(x, method="inverted_cdf"))
        assert row.frames == run.params.budgets[task].frames and row.core_hours == pytest.approx(1.5)
    summary = comparison.summary_rows(run, table)
    assert (summary.method == "PETS (CEM, TS-inf)").sum() == 3
    agg, _ = comparison.aggregate(run, table, reps=200)
    assert "PETS (CEM, TS-inf)" not in set(agg.method) and "TD-MPC (MPPI)" in set(agg.method)


def test_pets_against_sac_at_the_same_frames(run):
    """head_to_head: the difference of the means over seeds, its interval against the exact bootstrap (all 27 x 27
    resamples of the two learners' seeds), and P(PETS seed > SAC seed) counted directly."""
    table = comparison.comparison_table(run)
    head = comparison.head_to_head(table, "pets", "sac", reps=20_000).set_index("task")
    assert list(head.index) == ["dmc/cartpole-swingup", "dmc/walker-walk", "gym/HalfCheetah-v5"]
    row, task = head.loc["gym/HalfCheetah-v5"], "gym/HalfCheetah-v5"
    x, y = ([fake_returns(m, task, s) for s in (0, 1, 2)] for m in ("pets", "sac"))
    assert row.frames == 20_000 and row.pets_mean == pytest.approx(np.mean(x)) and row.sac_mean == np.mean(y)
    assert row.difference == pytest.approx(np.mean(x) - np.mean(y))
    diffs = [np.mean(a) - np.mean(b) for a in itertools.product(x, repeat=3) for b in itertools.product(y, repeat=3)]
    assert (row.ci_low, row.ci_high) == pytest.approx(np.quantile(diffs, [0.025, 0.975], method="inverted_cdf"))
    assert row.p_improvement == pytest.approx(np.mean([a > b for a in x for b in y]))  # 8/9, no ties
    assert row.at_least_as_good and row.interval_excludes_0 == (row.ci_low > 0)


def test_a_different_protocol_is_refused_by_name():
    p, q = load_params(MujocoParams, "default"), load_params(PETSParams, "default")
    budgets = {**q.budgets, "gym/HalfCheetah-v5": q.budgets["gym/HalfCheetah-v5"].model_copy(update={"frames": 1})}
    with pytest.raises(ValueError, match=r"pets.default.budgets.gym/HalfCheetah-v5.frames 1 != mujoco's 20000"):
        comparison.same_protocol(p, q.model_copy(update={"budgets": budgets}), "default")
    with pytest.raises(ValueError, match=r"pets.seeds \[0\] != mujoco.seeds"):
        comparison.same_protocol(p, q.model_copy(update={"seeds": [0]}), "default")
    evaluation = q.evaluation.model_copy(update={"episodes": 3})
    with pytest.raises(ValueError, match="pets.default.evaluation.episodes 3 != mujoco.default.evaluation.episodes"):
        comparison.same_protocol(p, q.model_copy(update={"evaluation": evaluation}), "default")
