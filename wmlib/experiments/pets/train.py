"""PETS runs (notebook 18), one job per (task, seed, variant) (Chua et al., 2018, Alg. 1): random seed steps,
then every `fit_every` agent steps refit the ensemble on all data so far (warm-started, one Adam kept across refits, as
mbrl-lib does) and act with CEM through it; evaluation episodes every `eval_every` frames and at the end, on the
shared evaluation seeds with the shared harness (wmlib.evaluation.run_episodes), as the learners of
wmlib.experiments.mujoco do.

Outputs, in the layout of wmlib.experiments.mujoco.train.run_dir with learner "pets" (`run_dir` below; an
ablation under ablations/<variant>/ instead of full/):
    results/<scale>/pets/full/<task>/seed<seed>/eval.json   the fields every learner's eval.json has
        (method, task, seed, variant, frames, episodes, core_hours, mean, std, n, returns) plus PETS's own
    results/<scale>/pets/full/<task>/seed<seed>/curve.csv   frames, episodes, mean, std, fits, holdout_mse
    data/<scale>/pets/full/<task>/seed<seed>/agent.pt       the final ensemble (notebook 19, the release)

While the job runs, checkpoint.pt beside it holds the ensemble, the optimiser, every transition and every random
stream, written at every learning-curve point; a rerun resumes from it when it was made with the same settings
(`fingerprint`), else starts over. A finished job deletes it.

Variants: full (PE + TS-inf), ts1, expectation (the mean model), deterministic (DE + TS-inf), penalised
(PE + TS-inf, reward - uncertainty.penalty x disagreement). `python -m wmlib.experiments.pets.train --scale S
--task T --seed N --variant V` runs one job (a DVC stage each: pets_job@..., pets_ablation_job@...).
"""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ...control.pets import PETSAgent
from ...device import resolve_device
from ...envs.mujoco_tasks import eval_seeds, make_env
from ...evaluation import run_episodes, summarise
from ...io import load_json, load_torch, save_csv, save_json, save_torch
from ...models.ensemble import GaussianEnsemble, fit, make_ensemble
from ..mujoco import CHECKPOINT, WEIGHTS
from . import setup
from .params import PETSParams


def run_dir(root: Path, task: str, seed: int, variant: str = "full") -> Path:
    """<root>/full/<task>/seed<seed>/, for an ablation <root>/ablations/<variant>/<task>/seed<seed>/ (root:
    results/<scale>/pets or data/<scale>/pets): wmlib.experiments.mujoco.train.run_dir's layout for the learner
    "pets" under results/<scale>, so the MuJoCo comparison can read these runs as its own. Created if missing."""
    path = Path(root) / ("full" if variant == "full" else f"ablations/{variant}") / task / f"seed{seed}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def variant_settings(p: PETSParams, variant: str) -> dict:
    """The ensemble's `deterministic` and the planner's `propagation` and `penalty` for a variant."""
    base = {"deterministic": p.ensemble.deterministic, "propagation": p.plan.propagation, "penalty": p.plan.penalty}
    changes = {"full": {}, "ts1": {"propagation": "ts1"}, "expectation": {"propagation": "expectation"},
               "deterministic": {"deterministic": True}, "penalised": {"penalty": p.uncertainty.penalty}}
    if variant not in changes:
        raise ValueError(f"variant must be one of {', '.join(changes)}, got {variant!r}")
    return {**base, **changes[variant]}


def episode_length(p: PETSParams, task: str) -> int:
    """Agent steps per episode."""
    return math.ceil((p.evaluation.max_frames or 1000) / p.tasks[task].action_repeat)


def make_agent(p: PETSParams, obs_dim: int, action_dim: int, variant: str, seed: int, device="cpu",
               penalty: float | None = None) -> tuple[PETSAgent, GaussianEnsemble]:
    v = variant_settings(p, variant)
    ensemble = make_ensemble(obs_dim, action_dim, p.ensemble.model_copy(update={"deterministic": v["deterministic"]}))
    ensemble = ensemble.to(device)
    agent = PETSAgent(ensemble, p.plan.planner, action_dim, p.plan.particles, v["propagation"],
                      v["penalty"] if penalty is None else penalty, seed=seed)
    return agent, ensemble


def load_agent(p: PETSParams, data: Path, task: str, seed: int, variant: str = "full", device="cpu",
               penalty: float | None = None) -> tuple[PETSAgent, GaussianEnsemble]:
    """(agent, ensemble) of a finished job, the ensemble from its final weights (WEIGHTS)."""
    saved = load_torch(run_dir(data, task, seed, variant) / WEIGHTS)
    agent, ensemble = make_agent(p, saved["obs_dim"], saved["action_dim"], variant, seed, device, penalty)
    ensemble.load_state_dict(saved["ensemble"])
    return agent, ensemble


def fingerprint(p: PETSParams, job: tuple[str, int, str]) -> str:
    """The settings a job's checkpoint was made with: it resumes only from a checkpoint with the same."""
    task, _, variant = job
    return json.dumps({"job": job, "task": p.tasks[task].action_repeat, "budget": p.budgets[task].model_dump(),
                       "variant": variant_settings(p, variant), "device": p.device,
                       **p.model_dump(include={"ensemble", "train", "plan", "evaluation"})}, sort_keys=True)


def train_pets(shared, job) -> dict:
    """One PETS run (module docstring); returns what it writes to eval.json."""
    p, data, results = shared
    task, seed, variant = job
    ar, budget = p.tasks[task].action_repeat, p.budgets[task]
    torch.set_num_threads(1)  # as the pool's workers (wmlib.parallel): small batched MLPs gain nothing from more
    torch.manual_seed(seed)
    device = resolve_device(p.device)
    env, eval_env = (make_env(task, ar, p.evaluation.max_frames) for _ in range(2))
    env.action_space.seed(seed)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent, ensemble = make_agent(p, obs_dim, action_dim, variant, seed, device)
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=p.ensemble.lr, weight_decay=p.ensemble.weight_decay)
    fit_gen = torch.Generator().manual_seed(seed)
    length = episode_length(p, task)
    total, seed_steps = budget.frames // ar, max(p.train.min_seed_steps, p.train.seed_episodes * length)
    store = {k: [] for k in ("obs", "action", "reward", "next_obs")}
    state = {"step": 0, "episode": 0, "curve": [], "fits": [], "act_seconds": [], "core_seconds": 0.0}
    ckpt, key = run_dir(data, task, seed, variant) / CHECKPOINT, fingerprint(p, job)
    if ckpt.exists():
        saved = load_torch(ckpt)
        if saved.get("fingerprint") == key:  # else written with other settings (or by an older wmlib): start over
            ensemble.load_state_dict(saved["ensemble"]), optimizer.load_state_dict(saved["optimizer"])
            store, state = {k: list(v.numpy()) for k, v in saved["data"].items()}, saved["state"]
            torch.set_rng_state(saved["rng"]), fit_gen.set_state(saved["fit_rng"])
            agent.generator.set_state(saved["plan_rng"])
            env.action_space.np_random.bit_generator.state = saved["action_rng"]
    step, episode, curve, fits, act_seconds = (state[k] for k in ("step", "episode", "curve", "fits", "act_seconds"))
    t0 = time.process_time()
    bar = tqdm(total=budget.frames, initial=step * ar, unit="frame", mininterval=30,
               desc=f"pets {task} {variant} seed {seed}")
    while step < total:
        obs, _ = env.reset(seed=seed * 100_000 + episode)
        agent.reset()
        done = False
        while not done:
            if step < seed_steps:
                action = env.action_space.sample()
            else:
                t = time.perf_counter()
                action = agent.act(obs)
                act_seconds.append(time.perf_counter() - t)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            if terminated:
                raise RuntimeError(f"{task}: the episode terminated; PETS here covers only tasks that end by time "
                                   "limit (DMC, HalfCheetah)")
            for k, v in zip(store, (obs, action, reward, next_obs)):
                store[k].append(v)
            obs, step, done = next_obs, step + 1, truncated
            bar.update(ar)
            if step >= seed_steps and (step - seed_steps) % p.train.fit_every == 0:
                t = dict(zip(store, (torch.as_tensor(np.array(v), dtype=torch.float32) for v in store.values())))
                fits.append(fit(ensemble, t["obs"], t["action"], t["next_obs"], t["reward"], p.ensemble, fit_gen,
                                optimizer))
        episode += 1
        frames, last = step * ar, step >= total
        if frames // budget.eval_every > (frames - length * ar) // budget.eval_every or last:
            n = p.evaluation.episodes if last else p.evaluation.curve_episodes
            returns = run_episodes(eval_env, agent.act, eval_seeds(n), reset=agent.reset).returns
            curve.append({"frames": frames, "episodes": episode, "fits": len(fits), "mean": float(np.mean(returns)),
                          "std": float(np.std(returns)),
                          "holdout_mse": float(np.mean(fits[-1]["holdout_mse"])) if fits else float("nan"),
                          "epochs": fits[-1]["epochs"] if fits else 0})
            bar.set_postfix(ret=f"{np.mean(returns):.0f}")
            state.update(step=step, episode=episode, final_returns=returns,
                         core_seconds=state["core_seconds"] + time.process_time() - t0)
            t0 = time.process_time()
            save_torch({"ensemble": ensemble.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
                        "data": {k: torch.as_tensor(np.array(v), dtype=torch.float32) for k, v in store.items()},
                        "rng": torch.get_rng_state(), "fit_rng": fit_gen.get_state(),
                        "plan_rng": agent.generator.get_state(),
                        "action_rng": env.action_space.np_random.bit_generator.state, "fingerprint": key}, ckpt)
    bar.close()
    env.close(), eval_env.close()
    out = run_dir(results, task, seed, variant)
    result = {"method": "pets", "task": task, "seed": seed, "variant": variant, "frames": step * ar,
              "episodes": episode, "core_hours": state["core_seconds"] / 3600, **summarise(state["final_returns"]),
              "parameters": ensemble.num_parameters(), **variant_settings(p, variant), "fits": len(fits),
              "holdout_mse": fits[-1]["holdout_mse"] if fits else None,
              "act_ms_median": 1000 * float(np.median(act_seconds)) if act_seconds else None}
    save_torch({"ensemble": ensemble.state_dict(), "obs_dim": obs_dim, "action_dim": action_dim},
               ckpt.with_name(WEIGHTS))  # before eval.json, which marks the job finished
    save_csv(pd.DataFrame(curve), out / "curve.csv")
    save_json(result, out / "eval.json")
    ckpt.unlink()
    return result


def train_all(run) -> list[dict]:
    """Every job of the scale (PETSParams.jobs) not finished yet (no eval.json) on the run's worker pool; then
    every job's eval.json."""
    p = run.params
    todo = [j for j in p.jobs() if not (run_dir(run.results, *j) / "eval.json").exists()]
    if todo:
        with run.pool(trains=True) as pool:
            pool.map(train_pets, todo, shared=(p, run.data, run.results), desc="pets runs")
    return [load_json(run_dir(run.results, *j) / "eval.json") for j in p.jobs()]


def ensure(run, job: tuple[str, int, str]) -> dict:
    """The job's eval.json, training it first if it has none (notebook 19 outside the pipeline)."""
    path = run_dir(run.results, *job) / "eval.json"
    if not path.exists():
        train_pets((run.params, run.data, run.results), job)
    return load_json(path)


def runs_table(run) -> pd.DataFrame:
    """One row per job of the scale: its eval.json's fields (returns left out) and the published PETS return at
    the same frames, where one exists (pets.tasks.<task>.published; nan elsewhere)."""
    rows = [load_json(run_dir(run.results, *j) / "eval.json") for j in run.params.jobs()]
    df = pd.DataFrame(rows).drop(columns=["returns", "holdout_mse"])
    df["published"] = [run.params.tasks[t].published.get(f, float("nan")) for t, f in zip(df.task, df.frames)]
    return df


def summary_table(runs: pd.DataFrame, resamples: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Per (task, variant): the mean over seeds of each seed's mean evaluation return, the std across seeds and a
    95% percentile-bootstrap interval of that mean (seeds resampled with replacement)."""
    rng, rows = np.random.default_rng(seed), []
    for (task, variant), g in runs.groupby(["task", "variant"], sort=False):
        x = g["mean"].to_numpy()
        boot = rng.choice(x, (resamples, len(x))).mean(1)
        rows.append({"task": task, "variant": variant, "seeds": len(x), "frames": int(g.frames.iloc[0]),
                     "mean": x.mean(), "std_over_seeds": x.std(), "ci_low": np.percentile(boot, 2.5),
                     "ci_high": np.percentile(boot, 97.5), "published": g.published.iloc[0],
                     "core_hours": g.core_hours.sum()})
    return pd.DataFrame(rows)


def curves(run) -> pd.DataFrame:
    """Every job's learning curve (curve.csv) with its task, seed and variant."""
    return pd.concat([pd.read_csv(run_dir(run.results, *j) / "curve.csv").assign(task=j[0], seed=j[1], variant=j[2])
                      for j in run.params.jobs()], ignore_index=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="One PETS job (a DVC stage each: pets_job@..., pets_ablation_job@...).")
    ap.add_argument("--scale", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--variant", default="full")
    args = ap.parse_args(argv)
    run = setup(args.scale)
    job = (args.task, args.seed, args.variant)
    if job not in run.params.jobs():
        raise SystemExit(f"job {job} is not one of pets.{run.scale}'s jobs (tasks x seeds, and the ablations of "
                         f"{run.params.ablation_task}): {run.params.jobs()}")
    result = train_pets((run.params, run.data, run.results), job)
    print(f"pets {args.task} {args.variant} seed {args.seed}: {result['mean']:.1f} +- {result['std']:.1f}")


if __name__ == "__main__":
    main()
