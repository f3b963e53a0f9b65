"""Step 5: every method on the same new tracks, the summary rows and the compute used."""
import numpy as np
import pandas as pd

from ...envs.carracing import make_carracing
from ...envs.seeds import episode_seeds
from ...evaluation import EvalResult, evaluate, run_episode
from ...io import load_json, save_csv
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
    """One row per method for results/summary.csv. env_steps, train_episodes and core_hours count what
    it took to train that method: the random rollouts, V, M (full only) and its CMA-ES run."""
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
        rows.append({"experiment": EXPERIMENT, "method": label, "metric": "return on new tracks",
                     "mean": round(r.mean, 1), "std": round(r.std, 1), "n": len(r.returns),
                     "env_steps": steps, "paper_mean": paper_mean, "paper_std": paper_std, "scale": run.scale,
                     "train_episodes": episodes, "core_hours": round(core_hours, 2)})
    df = pd.DataFrame(rows)
    save_csv(df, run.results / "summary.csv")
    return df
