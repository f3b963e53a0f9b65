"""Notebook 16: every learner at the same frame budget, beside the published returns and a random policy; the
sample-efficiency table, learning curves and summary rows."""
import numpy as np
import pandas as pd

from ...envs.mujoco_tasks import EVAL_SEED, eval_seeds, make_env
from ...evaluation import run_episodes, summarise
from ...io import load_json
from .dreamer import PUBLISHED as DREAMER_PUBLISHED
from .train import run_dir

LEARNERS = ("tdmpc", "dreamer", "sac")
METHODS = {"tdmpc": "TD-MPC (MPPI)", "dreamer": "Dreamer (v3)", "sac": "SAC (SB3 defaults)",
           "random": "random policy"}


def random_returns(task: str, action_repeat: int, episodes: int, max_frames: int | None = None) -> list[float]:
    """The uniform random policy's returns on the evaluation seeds: the floor every learner must clear."""
    env = make_env(task, action_repeat, max_frames)
    env.action_space.seed(EVAL_SEED)
    return run_episodes(env, lambda _: env.action_space.sample(), eval_seeds(episodes)).returns


def published_points(p, method: str) -> dict[str, dict[int, float]]:
    """task -> {frames: return} published for `method`: TD-MPC (v1) from params, DreamerV3 (states)."""
    if method == "tdmpc":
        return {t: s.published for t, s in p.tasks.items()}
    return DREAMER_PUBLISHED if method == "dreamer" else {}


def published(p, method: str, task: str, frames: int) -> float:
    """`method`'s published return at `frames`, linearly interpolated between its reported points."""
    points = sorted(published_points(p, method).get(task, {}).items())
    if not points or not points[0][0] <= frames <= points[-1][0]:
        return float("nan")
    x, y = zip(*points)
    return float(np.interp(frames, x, y))


def _runs(run, method: str, task: str, variant: str = "full") -> list[dict]:
    return [load_json(run_dir(run.results, method, task, s, variant) / "eval.json") for s in run.params.seeds]


def comparison_table(run) -> pd.DataFrame:
    """One row per task and method at the task's frame budget: mean +- std of evaluation returns (episodes
    pooled over seeds), beside the method's published return at the same number of frames."""
    p, rows = run.params, []
    for task, budget in p.budgets.items():
        for method in LEARNERS:
            runs = _runs(run, method, task)
            r = summarise([x for e in runs for x in e["returns"]])
            rows.append({"task": task, "method": method, **r, "frames": budget.frames, "seeds": len(runs),
                         "train_episodes": sum(e["episodes"] for e in runs),
                         "core_hours": sum(e["core_hours"] for e in runs),
                         "published": published(p, method, task, budget.frames)})
        r = summarise(random_returns(task, p.tasks[task].action_repeat, p.evaluation.episodes, p.evaluation.max_frames))
        rows.append({"task": task, "method": "random", **r, "frames": 0, "seeds": 1, "train_episodes": 0,
                     "core_hours": 0.0, "published": float("nan")})
    return pd.DataFrame(rows)


def learning_curves(run, variant: str = "full") -> pd.DataFrame:
    """Long table: task, method, seed, frames, mean, std of the periodic evaluation episodes."""
    parts = []
    for task in run.params.budgets:
        for method in LEARNERS:
            for seed in run.params.seeds:
                df = pd.read_csv(run_dir(run.results, method, task, seed, variant) / "curve.csv")
                parts.append(df[["frames", "mean", "std"]].assign(task=task, method=method, seed=seed))
    return pd.concat(parts, ignore_index=True)


def summary_rows(run, table: pd.DataFrame) -> pd.DataFrame:
    """results/<scale>/mujoco/summary.csv rows (see wmlib.summary.COLUMNS)."""
    return pd.DataFrame({
        "experiment": table.task, "method": table.method.map(METHODS), "metric": "return",
        "mean": table["mean"], "std": table["std"], "n": table.n, "env_steps": table.frames,
        "paper_mean": table.published, "paper_std": float("nan"), "scale": run.scale,
        "train_episodes": table.train_episodes, "core_hours": table.core_hours})
