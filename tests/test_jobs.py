"""MuJoCo training jobs as DVC stages: dvc.yaml's job stages write exactly where the code's run_dir puts a run, and the
notebooks train only the jobs that have not finished."""
import contextlib
from types import SimpleNamespace

import pytest
import yaml

from wmlib.experiments.mujoco import WEIGHTS, train
from wmlib.io import save_json
from wmlib.paths import ROOT

JOB_STAGES = {"mujoco_tdmpc_job": "tdmpc", "mujoco_sac_job": "sac", "mujoco_dreamer_job": "dreamer"}


def test_job_stages_cover_every_task_and_seed_and_write_where_run_dir_does(tmp_path):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, learner in JOB_STAGES.items():
        stage = stages[name]
        assert stage["matrix"] == {"task": "${mujoco.tasks}", "seed": "${mujoco.seeds}"}
        task, seed = "dmc/walker-walk", 2
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]]
        resolved = {o.replace("${item.task}", task).replace("${item.seed}", str(seed)).replace("${scale}", "smoke")
                    for o in outs}
        data, results = (train.run_dir(tmp_path / root, learner, task, seed).relative_to(tmp_path)
                         for root in ("data/smoke/mujoco", "results/smoke/mujoco"))
        assert resolved == {str(data / WEIGHTS), str(results)}
        assert "--task ${item.task} --seed ${item.seed}" in stage["cmd"]


def test_train_missing_reads_finished_jobs_and_trains_only_the_others(tmp_path):
    save_json({"mean": 1.0}, train.run_dir(tmp_path, "tdmpc", "dmc/walker-walk", 0) / "eval.json")
    trained = []

    class Pool:
        def map(self, fn, jobs, shared, desc):
            return [fn(shared, job) for job in jobs]

    run = SimpleNamespace(params=None, data=tmp_path, results=tmp_path,
                          pool=lambda trains: contextlib.nullcontext(Pool()))
    fn = lambda shared, job: trained.append(job) or {"mean": 2.0}  # noqa: E731
    jobs = [("dmc/walker-walk", 1, "full"), ("dmc/walker-walk", 0, "full"), ("dmc/walker-walk", 0, "no_two_hot")]
    results = train.train_missing(run, "tdmpc", fn, jobs)
    assert trained == [jobs[0], jobs[2]] and [r["mean"] for r in results] == [2.0, 1.0, 2.0]


def test_width_job_stages_write_where_run_dir_puts_the_wide_variant(tmp_path):
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["mujoco_tdmpc_width_job"]
    assert stage["foreach"] == "${mujoco.seeds}"
    task, seed = "dmc/walker-walk", 1
    outs = [next(iter(o)) for o in stage["do"]["outs"]]
    resolved = {o.replace("${mujoco.width_study.task}", task).replace("${item}", str(seed))
                .replace("${scale}", "smoke") for o in outs}
    data, results = (train.run_dir(tmp_path / root, "tdmpc", task, seed, "wide").relative_to(tmp_path)
                     for root in ("data/smoke/mujoco", "results/smoke/mujoco"))
    assert resolved == {str(data / WEIGHTS), str(results)}
    assert "--variant wide" in stage["do"]["cmd"]


def test_job_entry_point_checks_the_job_and_runs_its_learners_function(monkeypatch, tmp_path):
    import pytest

    from wmlib.experiments.mujoco import dreamer, job
    from wmlib.experiments.mujoco.params import MujocoParams
    from wmlib.params import load_params

    p = load_params(MujocoParams, "smoke")
    monkeypatch.setattr(job, "setup", lambda scale: SimpleNamespace(params=p, scale=scale, data=tmp_path,
                                                                    results=tmp_path))
    ran = []
    result = {"mean": 1.0, "std": 0.0, "n": 1, "core_hours": 0.0}
    monkeypatch.setattr(dreamer, "train_dreamer", lambda shared, j: ran.append(("dreamer", j)) or result)
    monkeypatch.setattr(train, "train_sac", lambda shared, j: ran.append(("sac", j)) or result)
    args = ["--scale", "smoke", "--task", "dmc/walker-walk", "--seed", "1"]
    job.main(args + ["--learner", "dreamer"])
    job.main(args + ["--learner", "sac"])
    assert ran == [("dreamer", ("dmc/walker-walk", 1, "full")), ("sac", ("dmc/walker-walk", 1))]
    with pytest.raises(SystemExit, match="not a job of mujoco"):
        job.main(["--scale", "smoke", "--learner", "sac", "--task", "dmc/nope", "--seed", "1"])
    with pytest.raises(SystemExit, match="--variant wide: only for --learner tdmpc"):
        job.main(args + ["--learner", "dreamer", "--variant", "wide"])


@pytest.mark.parametrize("learner", ["dreamer", "sac"])
def test_a_finished_job_keeps_only_its_final_weights_and_they_are_the_evaluated_agent(tmp_path, learner):
    """A job that ends deletes its checkpoint (so a rerun starts over) and keeps agent.pt, which the notebooks'
    load_agent and the weights_mujoco stage read. Dreamer's and SAC's evaluation acts deterministically, so the
    release's player rebuilt from agent.pt scores exactly the job's final returns (TD-MPC's planner samples: its
    agent.pt is checked against an uninterrupted run's in test_resume.py)."""
    from wmlib.envs.mujoco_tasks import eval_seeds
    from wmlib.experiments.mujoco import dreamer
    from wmlib.experiments.mujoco.params import BudgetParams, MujocoParams
    from wmlib.params import load_params
    from wmlib.release import mujoco as release

    task = "dmc/cartpole-swingup"
    p = load_params(MujocoParams, "smoke")
    budgets = {**p.budgets, task: BudgetParams(frames=400, eval_every=400)}
    p = p.model_copy(update={"device": "cpu", "budgets": budgets})
    shared, seed = (p, tmp_path / "data", tmp_path / "results"), p.seeds[0]
    if learner == "sac":
        result = train.train_sac(shared, (task, seed))
    else:
        result = dreamer.train_dreamer(shared, (task, seed, "full"))
        dreamer.load_agent(p, tmp_path / "data", task, seed)  # loads strictly
    assert [f.name for f in train.run_dir(tmp_path / "data", learner, task, seed).iterdir()] == [WEIGHTS]
    (net,) = release.networks(tmp_path / "data", p).values()
    player = release.Player(net.tensors, net.meta)
    assert player.evaluate(eval_seeds(p.evaluation.episodes)).returns == result["returns"]
