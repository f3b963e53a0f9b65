"""Step 5: every method on the same new tracks, the summary rows (with 95% intervals), V+M+C against V only on
those tracks, and the compute used."""
import numpy as np
import pandas as pd

from ...envs.carracing import make_carracing
from ...envs.seeds import episode_seeds
from ...evaluation import EvalResult, evaluate, run_episode
from ...intervals import mean_interval, paired_difference
from ...io import load_json, save_csv, save_json
from ..world_models import compute_used
from . import EXPERIMENT, METHODS, Run
from .controller import _agent_weights, build_agent, load_controller_params, run_episodes_batched
from .rollouts import _uniform


def _random_episode(shared, seed):
    env = make_carracing(shared["max_steps"])
    ret, steps, _ = run_episode(env, _uniform(env, seed), seed)
    env.close()
    return ret, steps


def evaluate_methods(run: Run) -> dict[str, EvalResult]:
    """Every method on the same `evaluation.episodes` new tracks; per-episode returns saved."""
    p = run.params.evaluation
    results = {}
    with run.pool() as pool:
        for method in METHODS:
            if method == "random":
                results[method] = evaluate(pool, _random_episode, {"max_steps": p.max_steps}, method, p.episodes)
            else:
                seeds, params = episode_seeds("eval", p.episodes), load_controller_params(run, method)
                res = run_episodes_batched(pool, [(params, s, p.max_steps, 0) for s in seeds],
                                           _agent_weights(run, method), run.params.controller.batch,
                                           desc=f"evaluate {method}")
                results[method] = EvalResult(method, seeds, [float(r) for r, _ in res], [int(n) for _, n in res])
            results[method].save(run.results / f"eval_{method}.json")
    return results


def record_agent(run: Run, variant: str = "full") -> np.ndarray:
    """Frames (T, 64, 64, 3) of the trained agent on the first evaluation track."""
    agent, seed = build_agent(_agent_weights(run, variant)), episode_seeds("eval", 1)[0]
    env = make_carracing(run.params.evaluation.gif_steps)
    agent.reset(load_controller_params(run, variant), [seed])
    _, _, frames = run_episode(env, lambda obs: agent(obs[None])[0], seed, record=True, reset=lambda: None)
    return frames


def summary_rows(run: Run, results: dict[str, EvalResult]) -> pd.DataFrame:
    """One row per method for results/summary.csv: mean, std and a 95% bootstrap interval of the mean over the
    tracks (wmlib.intervals). env_steps, train_episodes and core_hours count what it took to train that method: the
    random rollouts, V, M (full only) and its CMA-ES run."""
    rollouts = load_json(run.results / "rollouts.json")
    hours = compute_used(run, {f"cmaes_{v}": f"controller_{v}.json" for v in ("full", "z_only")})
    rows = []
    for method, (label, paper_mean, paper_std) in METHODS.items():
        if method == "random":
            steps = episodes = core_hours = 0
        else:
            cma = load_json(run.results / f"controller_{method}.json")
            steps, episodes = rollouts["frames"] + cma["env_steps"], rollouts["episodes"] + cma["episodes"]
            core_hours = hours["rollouts"] + hours["vae"] + hours[f"cmaes_{method}"] \
                + (hours["mdnrnn"] if method == "full" else 0)
        r = results[method]
        low, high = mean_interval(r.returns)
        rows.append({"experiment": EXPERIMENT, "method": label, "metric": "return on new tracks",
                     "mean": round(r.mean, 1), "std": round(r.std, 1), "n": len(r.returns),
                     "ci_low": round(low, 1), "ci_high": round(high, 1),
                     "env_steps": steps, "paper_mean": paper_mean, "paper_std": paper_std, "scale": run.scale,
                     "train_episodes": episodes, "core_hours": round(core_hours, 2)})
    df = pd.DataFrame(rows)
    save_csv(df, run.results / "summary.csv")
    return df


def full_against_v_only(run: Run, results: dict[str, EvalResult]) -> dict:
    """The paper's ordering, tested on the tracks both agents drove: V+M+C's return minus V only's, track by track,
    its mean with a 95% bootstrap interval (pairs resampled: a track's difficulty cancels) and the share of tracks
    where V+M+C scored higher. Saved as results/.../full_vs_z_only.json."""
    full, z_only = results["full"], results["z_only"]
    if full.seeds != z_only.seeds:
        raise ValueError("eval_full.json and eval_z_only.json were scored on different tracks (seeds)")
    comparison = paired_difference(full.returns, z_only.returns)
    save_json(comparison, run.results / "full_vs_z_only.json")
    return comparison
