"""Notebook 13: sampling planners driving one trained TD-MPC model, the TD-MPC2 switch ablations, the model width."""
import time

import numpy as np
import pandas as pd
import torch

from ...envs.mujoco_tasks import eval_seeds, make_env
from ...evaluation import run_episodes, summarise
from ...io import load_json
from .train import load_agent, run_dir

PLANNERS = [(m, prior) for m in ("shooting", "cem", "mppi") for prior in (False, True)]


def planner_study(run) -> pd.DataFrame:
    """Random shooting, CEM and MPPI, each with and without policy-prior proposals, at equal numbers of
    scored action sequences, driving the same trained model: return and planning latency per action."""
    p = run.params
    task, seed = p.planner_study.task, p.seeds[0]
    torch.manual_seed(seed)  # the planners' samples do not depend on what ran before in the notebook
    agent = load_agent(p, run.data, task, seed, device=run.device)
    env = make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames)
    rows = []
    for method, prior in PLANNERS:
        cfg = p.planner.replace(method=method, use_prior=prior)
        latency = []

        def policy(obs):
            t0 = time.perf_counter()
            action = agent.act(obs, planner=cfg)
            latency.append(time.perf_counter() - t0)
            return action

        r = summarise(run_episodes(env, policy, eval_seeds(p.planner_study.episodes), reset=agent.reset).returns)
        rows.append({"planner": method, "policy_prior": prior, "evaluations": cfg.evaluations,
                     "mean": r["mean"], "std": r["std"], "n": r["n"],
                     "latency_ms": 1e3 * float(np.median(latency)), "actions_timed": len(latency)})
    return pd.DataFrame(rows)


def ablation_table(run) -> pd.DataFrame:
    """TD-MPC on the planner-study task with each TD-MPC2 switch off, beside the full agent."""
    p = run.params
    task = p.planner_study.task
    rows = []
    for variant in ["full", *p.planner_study.ablations]:
        e = load_json(run_dir(run.results, "tdmpc", task, p.seeds[0], variant) / "eval.json")
        rows.append({"task": task, "variant": variant, "mean": e["mean"], "std": e["std"], "n": e["n"],
                     "frames": e["frames"], "core_hours": e["core_hours"]})
    return pd.DataFrame(rows)


def width_table(run) -> pd.DataFrame:
    """TD-MPC at the default width and at the width study's (`wide_model`; default: TD-MPC v1's 512-wide MLPs) on
    its task, one row per seed and width: final return, parameters, core-hours; then the mean over seeds of each
    width."""
    p = run.params
    task = p.width_study.task
    rows = []
    for variant, hidden in (("full", p.model.hidden), ("wide", p.wide_model.hidden)):
        for seed in p.seeds:
            e = load_json(run_dir(run.results, "tdmpc", task, seed, variant) / "eval.json")
            rows.append({"task": task, "hidden": hidden, "seed": seed, "mean": e["mean"], "std": e["std"],
                         "parameters": e["parameters"], "frames": e["frames"], "core_hours": e["core_hours"]})
    table = pd.DataFrame(rows)
    means = table.groupby("hidden", as_index=False, sort=False)[["mean", "parameters", "frames", "core_hours"]].mean()
    return pd.concat([table, means.assign(task=task, seed="mean")], ignore_index=True).astype({"parameters": int})
