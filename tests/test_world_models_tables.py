"""The World Models tables: each score with its 95% interval (wmlib.intervals), and V+M+C against V only on the same
tracks."""
import numpy as np
import pytest

from wmlib.evaluation import EvalResult
from wmlib.experiments import carracing, doom
from wmlib.experiments.carracing.evaluation import full_against_v_only
from wmlib.experiments.carracing.params import CarRacingParams
from wmlib.experiments.doom.params import DoomParams
from wmlib.experiments.doom.table import temperature_table
from wmlib.intervals import mean_interval
from wmlib.io import load_json, save_json
from wmlib.params import load_params


def result(returns, seeds=None) -> EvalResult:
    seeds = list(range(len(returns))) if seeds is None else seeds
    return EvalResult("x", seeds, [float(r) for r in returns], [1] * len(returns))


def test_temperature_table_gives_each_score_its_interval(tmp_path):
    run = doom.Run("default", load_params(DoomParams, "default"), tmp_path / "data", tmp_path / "results")
    rng, scores = np.random.default_rng(0), {}
    for tau in run.params.taus:
        dream, real = rng.integers(100, 2101, 50), rng.integers(100, 1000, 50)
        result(dream).save(run.tau_dir(tau) / "eval_dream.json")
        result(real).save(run.tau_dir(tau) / "eval_real.json")
        save_json({"dream_mean": dream.mean(), "dream_std": dream.std(), "real_mean": real.mean(),
                   "real_std": real.std(), "n": 50}, run.tau_dir(tau) / "evaluation.json")
        scores[tau] = dream, real
    random = rng.integers(100, 400, 50)
    table = temperature_table(run, result(random))
    for tau, (dream, real) in scores.items():
        row = table[table.tau == tau].iloc[0]
        assert (row.dream_low, row.dream_high) == mean_interval(dream)
        assert (row.real_low, row.real_high) == mean_interval(real)
        assert row.real_low < row.real_mean < row.real_high
    last = table.iloc[-1]
    assert np.isnan(last.tau) and (last.real_low, last.real_high) == mean_interval(random)


def test_full_against_v_only_pairs_the_tracks(tmp_path):
    run = carracing.Run("default", load_params(CarRacingParams, "default"), tmp_path / "data", tmp_path / "results")
    run.results.mkdir(parents=True)
    tracks = np.random.default_rng(1).normal(500, 250, 100)  # how hard each track is, shared by both agents
    full, z_only = result(tracks + 40), result(tracks)
    d = full_against_v_only(run, {"full": full, "z_only": z_only})
    assert d["mean_difference"] == pytest.approx(40) and d["low"] == pytest.approx(40)  # the tracks cancel
    assert d["share_higher"] == 1.0 and d["n"] == 100
    assert load_json(run.results / "full_vs_z_only.json") == d
    with pytest.raises(ValueError, match="different tracks"):
        full_against_v_only(run, {"full": full, "z_only": result(tracks, seeds=list(range(1, 101)))})
