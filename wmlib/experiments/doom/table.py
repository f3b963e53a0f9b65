"""Step 10: the paper's temperature table rebuilt, the random baseline, and the summary rows."""
import pandas as pd
import torch

from ...evaluation import EvalResult
from ...io import load_json, save_json
from . import EXPERIMENT, PAPER_RANDOM, PAPER_TABLE, Run
from .controller import evaluate_real


def evaluate_random(run: Run) -> EvalResult:
    """The random policy (a uniform TakeCover action every frame) on the same real episodes."""
    result, restarts = evaluate_real(run, None, "random policy")
    result.save(run.results / "eval_random.json")
    save_json({"vizdoom_restarts": restarts}, run.results / "eval_random_restarts.json")
    return result


def temperature_table(run: Run, random: EvalResult) -> pd.DataFrame:
    """One row per tau in params (and the random policy): dream and real scores beside the paper's."""
    rows = []
    for tau in run.params.taus:
        e = load_json(run.tau_dir(tau) / "evaluation.json")
        paper = PAPER_TABLE.get(round(tau, 2), (None,) * 4)
        rows.append({"tau": tau, "dream_mean": e["dream_mean"], "dream_std": e["dream_std"],
                     "real_mean": e["real_mean"], "real_std": e["real_std"], "n": e["n"],
                     "paper_dream_mean": paper[0], "paper_dream_std": paper[1],
                     "paper_real_mean": paper[2], "paper_real_std": paper[3]})
    rows.append({"tau": None, "dream_mean": None, "dream_std": None, "real_mean": random.mean,
                 "real_std": random.std, "n": len(random.returns), "paper_dream_mean": None,
                 "paper_dream_std": None, "paper_real_mean": PAPER_RANDOM[0], "paper_real_std": PAPER_RANDOM[1]})
    df = pd.DataFrame(rows)
    df.to_csv(run.results / "temperature_table.csv", index=False)
    return df


def compute_used(run: Run) -> dict:
    """Core-hours per stage, from the times each stage recorded (V and M train on all torch threads)."""
    w, threads = run.params.parallel.workers, torch.get_num_threads()
    hours = {
        "rollouts": load_json(run.results / "rollouts.json")["core_seconds"] / 3600,
        "vae": load_json(run.results / "vae.json")["seconds"] * threads / 3600,
        "mdnrnn": load_json(run.results / "mdnrnn.json")["seconds"] * threads / 3600,
        **{f"cmaes_tau_{tau:g}": load_json(run.tau_dir(tau) / "controller.json")["seconds"] * w / 3600
           for tau in run.params.taus},
    }
    save_json({"core_hours": hours, "total_core_hours": sum(hours.values())}, run.results / "compute.json")
    return hours


def summary_rows(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """Rows for results/summary.csv: per tau, the dream score and the real score of the controller
    trained at that tau; and the random policy's real score. env_steps counts real frames used in
    training (the random rollouts: C itself never sees the real game); train_episodes likewise."""
    rollouts = load_json(run.results / "rollouts.json")
    hours = compute_used(run)
    world_model_hours = hours["rollouts"] + hours["vae"] + hours["mdnrnn"]
    rows = []
    for r in table.itertuples():
        if pd.isna(r.tau):
            rows.append(_row(run, "random policy", "frames survived, real game", r.real_mean, r.real_std, r.n,
                             0, 0, 0.0, r.paper_real_mean, r.paper_real_std))
            continue
        hours_tau = world_model_hours + hours[f"cmaes_tau_{r.tau:g}"]
        for where, mean, std, pm, ps in (("dream", r.dream_mean, r.dream_std, r.paper_dream_mean, r.paper_dream_std),
                                         ("real game", r.real_mean, r.real_std, r.paper_real_mean, r.paper_real_std)):
            rows.append(_row(run, f"C trained in dream, tau={r.tau:g}", f"frames survived, {where}", mean, std, r.n,
                             rollouts["frames"], rollouts["episodes"], hours_tau, pm, ps))
    df = pd.DataFrame(rows)
    df.to_csv(run.results / "summary.csv", index=False)
    return df


def _row(run, method, metric, mean, std, n, steps, episodes, core_hours, paper_mean, paper_std):
    return {"experiment": EXPERIMENT, "method": method, "metric": metric, "mean": round(mean, 1),
            "std": round(std, 1), "n": int(n), "env_steps": int(steps), "paper_mean": paper_mean,
            "paper_std": paper_std, "scale": run.scale, "train_episodes": int(episodes),
            "core_hours": round(core_hours, 2)}
