"""The PETS experiment: params, its DVC stages against its jobs, the variants, a job's reproducibility."""
import json
import subprocess
import sys

import pytest
import torch
import yaml

from wmlib.experiments.mujoco.params import BudgetParams
from wmlib.experiments.pets import train
from wmlib.experiments.pets.params import PETSParams
from wmlib.experiments.pets.train import variant_settings
from wmlib.io import load_torch
from wmlib.params import SCALES, load_params, read_params_file
from wmlib.paths import ROOT


@pytest.mark.parametrize("scale", SCALES)
def test_dvc_runs_every_job_of_every_scale(scale):
    """pets_job is a matrix over pets.tasks x pets.seeds, pets_ablation_job one stage per ablation: together the
    jobs of every scale, each writing where run_dir puts it."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    full, ablation = stages["pets_job"], stages["pets_ablation_job"]
    assert full["matrix"] == {"task": "${pets.tasks}", "seed": "${pets.seeds}"}
    assert ablation["foreach"] == "${pets.ablations}"
    p = load_params(PETSParams, scale)
    raw = read_params_file()["pets"]
    expanded = [(t, s, "full") for t in raw["tasks"] for s in raw["seeds"]]
    expanded += [(raw["ablation_task"], raw["ablation_seed"], v) for v in raw["ablations"]]
    assert expanded == p.jobs()
    runs = {"pets/full/${item.task}/seed${item.seed}": full["outs"],
            "pets/ablations/${item}/${pets.ablation_task}/seed${pets.ablation_seed}": ablation["do"]["outs"]}
    for run, outs in runs.items():  # a job's final weights, its curve and evaluation
        assert [list(o)[0] for o in outs] == [f"data/${{scale}}/{run}/agent.pt", f"results/${{scale}}/{run}"]


def test_the_layout_is_the_mujoco_learners(tmp_path):
    """results/<scale>/pets is where wmlib.experiments.mujoco.train.run_dir puts the learner 'pets'."""
    from wmlib.experiments.mujoco.train import run_dir as mujoco_run_dir
    for variant in ("full", "ts1"):
        assert (train.run_dir(tmp_path / "pets", "dmc/walker-walk", 1, variant)
                == mujoco_run_dir(tmp_path, "pets", "dmc/walker-walk", 1, variant))
    assert train.run_dir(tmp_path, "dmc/walker-walk", 2) == tmp_path / "full/dmc/walker-walk/seed2"
    assert train.run_dir(tmp_path, "dmc/walker-walk", 0, "ts1") == tmp_path / "ablations/ts1/dmc/walker-walk/seed0"


def raw(scale="smoke", **changes):
    section = read_params_file()["pets"]
    return {**{k: v for k, v in section.items() if k not in SCALES}, **section[scale], **changes}


def test_particles_must_split_over_the_members():
    plan = {**raw()["plan"], "particles": 7}
    with pytest.raises(ValueError, match="particles"):
        PETSParams.model_validate(raw(plan=plan))


def test_unknown_task_and_policy_prior_are_named():
    with pytest.raises(ValueError, match="ablation_task"):
        PETSParams.model_validate(raw(ablation_task="dmc/hopper-hop"))
    plan = {**raw()["plan"], "planner": {**raw()["plan"]["planner"], "use_prior": True}}
    with pytest.raises(ValueError, match="use_prior"):
        PETSParams.model_validate(raw(plan=plan))


def test_variants_change_one_thing_each():
    p = PETSParams.model_validate(raw())
    full = variant_settings(p, "full")
    assert full == {"deterministic": False, "propagation": "ts_inf", "penalty": 0.0}
    changed = {v: {k for k in full if variant_settings(p, v)[k] != full[k]}
               for v in ("ts1", "expectation", "deterministic", "penalised")}
    assert changed == {"ts1": {"propagation"}, "expectation": {"propagation"}, "deterministic": {"deterministic"},
                       "penalised": {"penalty"}}
    with pytest.raises(ValueError, match="variant"):
        variant_settings(p, "ts_inf")


@pytest.mark.parametrize("scale", SCALES)
def test_same_tasks_budgets_and_evaluation_as_the_other_mujoco_learners(scale):
    """PETS's rows go into the shared sample-efficiency table: same frames, action repeat and evaluation (notebook
    16 refuses others: wmlib.experiments.mujoco.comparison.same_protocol)."""
    from wmlib.experiments.mujoco import comparison
    from wmlib.experiments.mujoco.params import MujocoParams
    pets, mujoco = load_params(PETSParams, scale), load_params(MujocoParams, scale)
    comparison.same_protocol(mujoco, pets, scale)
    assert pets.budgets == {t: mujoco.budgets[t] for t in pets.tasks} and pets.evaluation == mujoco.evaluation
    assert all(pets.tasks[t].action_repeat == mujoco.tasks[t].action_repeat for t in pets.tasks)
    assert pets.seeds == mujoco.seeds and len(pets.seeds) >= 3


JOB = """
import sys
from pathlib import Path
from wmlib.experiments.mujoco.params import BudgetParams
from wmlib.experiments.pets.params import PETSParams
from wmlib.experiments.pets.train import train_pets
from wmlib.params import load_params

root = Path(sys.argv[1])
p = load_params(PETSParams, "smoke")
p = p.model_copy(update={"device": "cpu", "budgets": {**p.budgets, "dmc/cartpole-swingup": BudgetParams(frames=400,
                                                                                                       eval_every=400)}})
train_pets((p, root / "data", root / "results"), ("dmc/cartpole-swingup", 0, "full"))
"""


def test_a_job_is_reproducible(tmp_path):
    """Same seed, two processes: the same ensemble, fits and evaluation returns."""
    for run in ("a", "b"):
        subprocess.run([sys.executable, "-c", JOB, str(tmp_path / run)], check=True, capture_output=True)
    assert_same_run(tmp_path / "a", tmp_path / "b")


def assert_same_run(a, b):
    job = "full/dmc/cartpole-swingup/seed0"
    for r in (a, b):  # a finished job keeps its final weights only: a rerun starts over
        assert sorted(f.name for f in (r / "data" / job).iterdir()) == ["agent.pt"]
    ca, cb = (load_torch(r / "data" / job / "agent.pt")["ensemble"] for r in (a, b))
    assert ca.keys() == cb.keys() and all(torch.equal(ca[k], cb[k]) for k in ca)
    ra, rb = (json.loads((r / "results" / job / "eval.json").read_text()) for r in (a, b))
    assert ra["returns"] == rb["returns"] and ra["fits"] == rb["fits"] >= 1 and ra["episodes"] == rb["episodes"]


def test_an_interrupted_job_resumes_where_it_stopped(tmp_path, interrupt, monkeypatch):
    """Checkpoint at every curve point: a run stopped after the first one and rerun ends as the uninterrupted run."""
    p = load_params(PETSParams, "smoke")
    budget = BudgetParams(frames=400, eval_every=200)  # a curve point per episode of cartpole
    p = p.model_copy(update={"device": "cpu", "budgets": {**p.budgets, "dmc/cartpole-swingup": budget}})
    job = ("dmc/cartpole-swingup", 0, "full")
    train.train_pets((p, tmp_path / "a/data", tmp_path / "a/results"), job)
    # stopped at the second refit, which comes after the first checkpoint
    interrupt(train, "fit", 2, lambda: train.train_pets((p, tmp_path / "b/data", tmp_path / "b/results"), job))
    saved = load_torch(tmp_path / "b/data/full/dmc/cartpole-swingup/seed0/checkpoint.pt")["state"]
    assert saved["step"] == 25 and len(saved["fits"]) == 1
    # the rerun refits only what the checkpoint lacks (a restart from scratch would end the same, refitting all)
    real, calls = train.fit, []
    monkeypatch.setattr(train, "fit", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = train.train_pets((p, tmp_path / "b/data", tmp_path / "b/results"), job)
    assert len(calls) == result["fits"] - 1 >= 1
    assert_same_run(tmp_path / "a", tmp_path / "b")
