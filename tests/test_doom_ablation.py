"""The Doom ablation: each variant's run (its switches, its folders, the shared rollouts and V), the interval of a
mean, the table gathered from the variants' results, and the decision rule applied to it."""
import numpy as np
import pandas as pd
import pytest

from wmlib.evaluation import EvalResult
from wmlib.experiments.doom import Run
from wmlib.experiments.doom.ablation import ablation_table, choose_variant, variant_run
from wmlib.experiments.doom.params import DoomParams, MSwitches
from wmlib.io import save_json
from wmlib.params import load_params

SWITCHES = list(MSwitches.model_fields)


@pytest.fixture
def run(tmp_path):
    run = Run("default", load_params(DoomParams, "default"), tmp_path / "data", tmp_path / "results")
    run.data.mkdir(parents=True)
    (run.data / "rollouts").mkdir()
    (run.data / "rollouts/index.json").write_bytes(b"index")
    (run.data / "vae.pt").write_bytes(b"vae.pt")
    return run


def test_variants_change_one_thing_at_a_time():
    """Every variant but `ours` and `authors` is one switch away from another variant; `authors` is the authors'
    choice on every switch."""
    variants = {k: v.model_dump() for k, v in load_params(DoomParams, "default").ablation.variants.items()}
    assert variants["authors"] == {"action_input": "continuous", "reset_state": True, "windows": "stream",
                                   "done_target": "episode_ends"}
    for name, v in variants.items():
        if name not in ("ours", "authors"):
            assert min(sum(v[s] != w[s] for s in SWITCHES) for k, w in variants.items() if k != name) == 1, name


def test_variant_run_has_its_switches_its_folders_and_the_shared_files(run):
    v = run.params.ablation.variants["stream"]
    vrun = variant_run(run, "stream")
    assert {s: getattr(vrun.params.mdnrnn, s) for s in SWITCHES} == v.model_dump()
    budget = run.params.ablation_budget  # the screening budget replaces the main one's, the rest is kept
    assert {k: getattr(vrun.params.mdnrnn, k) for k in ("steps", "seq_len", "lr_decay")} == budget.mdnrnn.model_dump()
    assert vrun.params.mdnrnn.model_dump(exclude={*SWITCHES, "steps", "seq_len", "lr_decay"}) == \
        run.params.mdnrnn.model_dump(exclude={*SWITCHES, "steps", "seq_len", "lr_decay"})
    assert vrun.params.controller.model_dump() == {**run.params.controller.model_dump(),
                                                   **budget.controller.model_dump(), "phases": 1}
    assert vrun.params.taus == [run.params.ablation.tau]
    assert vrun.data == run.data / "ablation" / "stream" and vrun.results == run.results / "ablation" / "stream"
    assert (vrun.data / "vae.pt").read_bytes() == b"vae.pt"
    assert (vrun.data / "rollouts/index.json").read_bytes() == b"index"
    variant_run(run, "stream")  # again: the links are kept


def test_unknown_variant_is_named(run):
    with pytest.raises(ValueError, match="no variant 'nope'"):
        variant_run(run, "nope")


def test_table_gathers_each_variants_results(run):
    tau, rows = run.params.ablation.tau, {}
    rng = np.random.default_rng(1)
    for i, variant in enumerate(run.params.ablation.variants):
        results = run.results / "ablation" / variant
        tau_dir = results / "taus" / str(float(tau))
        tau_dir.mkdir(parents=True)
        real = rng.integers(100, 2100, 20).astype(float).tolist()
        EvalResult("x", list(range(20)), real, real).save(tau_dir / "eval_real.json")
        save_json({"dream_mean": 1000.0 + i}, tau_dir / "evaluation.json")
        pd.DataFrame({"tau": [tau], "gap": [50.0 * i]}).to_csv(results / "exploitation.csv", index=False)
        pd.DataFrame({"left": [0.5], "stay": [0.3], "right": [0.2]}, index=["C"]).to_csv(results / "real_moves.csv")
        rows[variant] = (real, 1000.0 + i, 50.0 * i)
    table = ablation_table(run).set_index("variant")
    assert list(table.index) == list(run.params.ablation.variants)
    for variant, (real, dream, gap) in rows.items():
        r = table.loc[variant]
        assert r.real_mean == pytest.approx(np.mean(real)) and r.real_std == pytest.approx(np.std(real))
        assert r.real_low < r.real_mean < r.real_high and r.n == 20
        assert (r.dream_mean, r.exploitation_gap, r.left) == (dream, gap, 0.5)
        assert r.windows == run.params.ablation.variants[variant].windows
    assert (run.results / "ablation.csv").exists()


def table_of(**intervals) -> pd.DataFrame:
    """variant=(mean, low, high) -> an ablation table's columns that the rule reads."""
    return pd.DataFrame([{"variant": v, "real_mean": m, "real_low": lo, "real_high": hi}
                         for v, (m, lo, hi) in intervals.items()])


def test_the_rule_takes_the_best_variant_only_when_its_interval_clears_ours():
    assert choose_variant(table_of(ours=(300, 250, 350), stream=(500, 400, 600), authors=(450, 360, 540))) == "stream"
    # the best overlaps ours: keep ours, even though a lower variant's interval clears it
    assert choose_variant(table_of(ours=(300, 250, 350), stream=(420, 340, 500), authors=(410, 360, 460))) == "ours"
    assert choose_variant(table_of(ours=(600, 500, 700), stream=(500, 400, 600))) == "ours"  # ours is the best
    assert choose_variant(table_of(ours=(300, 250, 350), stream=(500, 350, 650))) == "ours"  # touching: no evidence
    with pytest.raises(ValueError, match="no baseline variant 'ours'"):
        choose_variant(table_of(stream=(500, 400, 600)))
