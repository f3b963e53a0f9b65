"""Notebook 16: every learner at the same frame budget, over seeds, beside the published seeds and a random policy.

    table = comparison_table(run)        # per task and learner: mean over seeds, 95% bootstrap interval, published
    published_table(run, table)          # every published reference at the same frames: mean, range, our ranks
    aggregate(run, table)                # over the DMC tasks: IQM and mean, stratified bootstrap intervals
    head_to_head(table, "pets", "sac")   # PETS against SAC on every task both run, at the same frames

A learner is a key of LEARNERS whose runs follow wmlib.experiments.mujoco.train's layout (run_dir, eval.json,
curve.csv); a new learner adds itself there (and its published references to REFERENCES). PETS is its own
experiment (wmlib.experiments.pets, notebooks 18-19): its jobs write that layout under results/<scale>/pets/, on
the tasks of pets.<scale>.budgets, and join only under the same protocol (same_protocol).
"""
from pathlib import Path

import numpy as np
import pandas as pd
from rliable import metrics

from ... import published as pub
from ...envs.mujoco_tasks import EVAL_SEED, eval_seeds, make_env
from ...evaluation import run_episodes, summarise
from ...io import load_json
from .. import pets
from .train import run_dir

LEARNERS = {"tdmpc": "TD-MPC (MPPI)", "dreamer": "Dreamer (v3)", "sac": "SAC (SB3 defaults)",
            "pets": "PETS (CEM, TS-inf)"}
METHODS = {**LEARNERS, "random": "random policy"}
# learner -> the published curves it is compared with: (file in reference/published/, method, observations);
# "agent" observations: the learner's own (Dreamer: pixels where params dreamer.pixels, else states). The first
# with a point at the budget is the row's `paper_mean`.
REFERENCES = {
    "tdmpc": [("tdmpc.csv", "tdmpc", "states"), ("tdmpc2.csv", "tdmpc2", "states")],
    "dreamer": [("dreamerv3.csv", "dreamerv3", "agent"), ("tdmpc2.csv", "dreamerv3", "agent")],
    "sac": [("tdmpc2.csv", "sac", "states")],
}
DMC_MAX = 1000.0  # DMC returns lie in [0, 1000]: the aggregate's normalisation
CONFIDENCE, REPS = 0.95, 10_000


def random_returns(task: str, action_repeat: int, episodes: int, max_frames: int | None = None) -> list[float]:
    """The uniform random policy's returns on the evaluation seeds: the floor every learner must clear."""
    env = make_env(task, action_repeat, max_frames)
    env.action_space.seed(EVAL_SEED)
    return run_episodes(env, lambda _: env.action_space.sample(), eval_seeds(episodes)).returns


def references(p, learner: str) -> list[tuple[str, str, str]]:
    """REFERENCES[learner] with "agent" observations resolved."""
    obs = "pixels" if learner == "dreamer" and p.dreamer.pixels else "states"
    return [(f, m, obs if o == "agent" else o) for f, m, o in REFERENCES.get(learner, [])]


def dmc_name(task: str) -> str | None:
    """'dmc/walker-walk' -> 'walker-walk' (the published files' spelling); None for a task that is not DMC."""
    return task.removeprefix("dmc/") if task.startswith("dmc/") else None


def published_point(ref: tuple[str, str, str], task: str, frames: int) -> pub.Point | None:
    """The published seeds of `ref` (file, method, observations) on `task` at `frames` (wmlib.published.at)."""
    return pub.at(*ref, dmc_name(task), frames) if dmc_name(task) else None


def stratified_bootstrap(scores: np.ndarray, func, reps: int = REPS, confidence: float = CONFIDENCE,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """func(scores) [k] and its percentile interval [2, k] under the stratified bootstrap of scores [runs, tasks]:
    each replicate resamples the runs of every task independently, with replacement. This is rliable's
    get_interval_estimates (StratifiedBootstrap, method 'percentile', rliable/library.py), written out in numpy
    because rliable.library cannot be imported with this project's numpy 2 / pandas 3 (its arch dependency: 7.x
    fails to import, 8.x no longer takes the random_state that rliable passes); seeded, so reruns agree."""
    runs, tasks = scores.shape
    idx = np.random.default_rng(seed).integers(0, runs, size=(reps, runs, tasks))
    boot = np.stack([func(np.take_along_axis(scores, i, 0)) for i in idx])
    tail = 100 * (1 - confidence) / 2
    return func(scores), np.percentile(boot, [tail, 100 - tail], axis=0)


def bootstrap_interval(x, confidence: float = CONFIDENCE, reps: int = REPS, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of x [seeds] (the stratified bootstrap of one task); (nan, nan) for
    fewer than 2 values. With 3 seeds there are only 10 distinct resamples: the interval is coarse."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    _, ci = stratified_bootstrap(x[:, None], lambda s: np.array([s.mean()]), reps, confidence, seed)
    return float(ci[0, 0]), float(ci[1, 0])


def same_protocol(p, q, scale: str) -> None:
    """PETS (q: PETSParams) stands beside the learners of wmlib.experiments.mujoco (p: MujocoParams) only under
    their protocol: the same seeds, evaluation episodes and step limit and, on every task PETS runs, the same frame
    budget and action repeat (the evaluation seeds follow: eval_seeds). Else a ValueError naming each parameter."""
    bad = [f"pets.seeds {q.seeds} != mujoco.seeds {p.seeds}"] if q.seeds != p.seeds else []
    bad += [f"pets.{scale}.evaluation.{k} {getattr(q.evaluation, k)} != mujoco.{scale}.evaluation.{k} "
            f"{getattr(p.evaluation, k)}" for k in ("episodes", "max_frames")
            if getattr(q.evaluation, k) != getattr(p.evaluation, k)]
    for task, budget in q.budgets.items():
        if task not in p.budgets:
            bad.append(f"pets.{scale}.budgets has {task}, which mujoco.{scale}.budgets has not")
            continue
        if budget.frames != p.budgets[task].frames:
            bad.append(f"pets.{scale}.budgets.{task}.frames {budget.frames} != mujoco's {p.budgets[task].frames}")
        if q.tasks[task].action_repeat != p.tasks[task].action_repeat:
            bad.append(f"pets.tasks.{task}.action_repeat {q.tasks[task].action_repeat} != mujoco's "
                       f"{p.tasks[task].action_repeat}")
    if bad:
        raise ValueError("PETS is not run under the comparison's protocol: " + "; ".join(bad))


def pets_run(run):
    """The PETS experiment at the comparison's scale, its protocol checked (same_protocol)."""
    other = pets.setup(run.scale)
    same_protocol(run.params, other.params, run.scale)
    return other


def learner_runs(run, learners: dict[str, str] = LEARNERS) -> dict[str, tuple[Path, list[str]]]:
    """Per learner: the root its runs lie under (run_dir's, beside its name) and the budgeted tasks it runs:
    results/<scale>/mujoco and every task for the learners of wmlib.experiments.mujoco; for PETS results/<scale>
    (its runs: results/<scale>/pets/full/...) and the tasks of pets.<scale>.budgets, once any of its runs exists."""
    out = {}
    for learner in learners:
        if learner == "pets":
            other = pets_run(run)
            tasks = [t for t in run.params.budgets if t in other.params.budgets]
            runs = [run_dir(other.results.parent, learner, t, s) / "eval.json" for t in tasks for s in run.params.seeds]
            if not any(f.exists() for f in runs):  # notebook 16 before notebook 18 (CI's order); DVC runs PETS first
                print(f"PETS left out: none of its runs exist yet (the pets_job stages, notebook 18 write {runs[0]})")
                continue
            out[learner] = (other.results.parent, tasks)
        else:
            out[learner] = (run.results, list(run.params.budgets))
    return out


def seed_results(root: Path, learner: str, task: str, seeds: list[int]) -> list[dict]:
    """eval.json of every seed's finished run."""
    return [load_json(run_dir(root, learner, task, s) / "eval.json") for s in seeds]


def comparison_table(run, learners: dict[str, str] = LEARNERS) -> pd.DataFrame:
    """One row per task and learner that runs it, at the task's frame budget: the mean over seeds of each seed's
    mean evaluation return, the std over seeds, a 95% bootstrap interval of the mean, each seed's return; beside it
    the first published reference with seeds at these frames (REFERENCES): its mean and std over seeds. Then the
    random policy (its std and n over episodes)."""
    p, rows, sources = run.params, [], learner_runs(run, learners)
    for task, budget in p.budgets.items():
        for learner, (root, tasks) in sources.items():
            if task not in tasks:
                continue
            runs = seed_results(root, learner, task, p.seeds)
            per_seed = np.array([r["mean"] for r in runs])
            lo, hi = bootstrap_interval(per_seed)
            point = next((x for ref in references(p, learner)
                          if (x := published_point(ref, task, budget.frames))), None)
            rows.append({"task": task, "method": learner, "mean": per_seed.mean(), "std": per_seed.std(),
                         "n": len(runs), "ci_low": lo, "ci_high": hi, "frames": budget.frames, "seeds": len(runs),
                         "seed_returns": " ".join(f"{x:.1f}" for x in per_seed),
                         "episodes_per_seed": runs[0]["n"],
                         "train_episodes": sum(r["episodes"] for r in runs),
                         "core_hours": sum(r["core_hours"] for r in runs),
                         "published": point.method if point else "",
                         "published_mean": point.mean if point else np.nan,
                         "published_std": float(point.returns.std()) if point else np.nan})
        r = summarise(random_returns(task, p.tasks[task].action_repeat, p.evaluation.episodes, p.evaluation.max_frames))
        rows.append({"task": task, "method": "random", "mean": r["mean"], "std": r["std"], "n": r["n"],
                     "ci_low": np.nan, "ci_high": np.nan, "frames": 0, "seeds": 1, "seed_returns": "",
                     "episodes_per_seed": r["n"], "train_episodes": 0, "core_hours": 0.0, "published": "",
                     "published_mean": np.nan, "published_std": np.nan})
    return pd.DataFrame(rows)


def published_table(run, table: pd.DataFrame) -> pd.DataFrame:
    """Every (task, learner, published reference) at the task's budget: the published mean, min, max and number of
    seeds at the last logged point at or before the budget (wmlib.published.at), and where each of our seeds falls
    among them (`ranks`: published seeds beaten, e.g. 0/5 = below all five)."""
    p, rows = run.params, []
    for r in table[table.method != "random"].itertuples():
        ours = [float(x) for x in r.seed_returns.split()]
        for ref in references(p, r.method):
            point = published_point(ref, r.task, r.frames)
            rows.append({"task": r.task, "method": r.method, "frames": r.frames, "file": ref[0],
                         "reference": f"{ref[1]} ({ref[2]})", "ours_mean": r.mean, **pub.compare(ours, point)})
    return pd.DataFrame(rows)


def score_matrices(run, table: pd.DataFrame) -> tuple[list[str], dict[str, np.ndarray]]:
    """The DMC tasks and, per learner that runs all of them (not PETS, without dmc/cheetah-run) and per published
    reference with every task's seeds at the same frames, normalised returns [runs, tasks] (return / 1000)."""
    p = run.params
    rows = table[table.method != "random"]
    tasks = [t for t in p.budgets if dmc_name(t)]
    scores = {}
    if not tasks:
        return tasks, scores
    for learner in dict.fromkeys(rows.method):
        if not set(tasks) <= set(rows[rows.method == learner].task):
            continue
        per_task = [[float(x) for x in rows[(rows.task == t) & (rows.method == learner)].seed_returns.iloc[0].split()]
                    for t in tasks]
        scores[METHODS.get(learner, learner)] = np.array(per_task).T / DMC_MAX
        for ref in references(p, learner):
            points = [published_point(ref, t, p.budgets[t].frames) for t in tasks]
            if all(points) and len({tuple(x.seeds) for x in points}) == 1:
                scores[f"{ref[1]} ({ref[2]}), published"] = np.array([x.returns for x in points]).T / DMC_MAX
    return tasks, scores


def aggregate(run, table: pd.DataFrame, reps: int = REPS) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """IQM and mean of the normalised DMC returns over runs and tasks (rliable.metrics), with 95% stratified
    bootstrap intervals, one row per learner or published reference; and the scores [runs, tasks] they come from."""
    tasks, scores = score_matrices(run, table)
    if not tasks:
        return pd.DataFrame(), scores
    fn = lambda s: np.array([metrics.aggregate_iqm(s), metrics.aggregate_mean(s)])  # noqa: E731
    rows = []
    for name, x in scores.items():
        point, ci = stratified_bootstrap(x, fn, reps)
        rows.append({"method": name, "tasks": len(tasks), "runs": x.shape[0],
                     "iqm": point[0], "iqm_low": ci[0, 0], "iqm_high": ci[1, 0],
                     "mean": point[1], "mean_low": ci[0, 1], "mean_high": ci[1, 1]})
    return pd.DataFrame(rows), scores


def performance_profiles(scores: dict[str, np.ndarray], reps: int = REPS) -> tuple[np.ndarray, dict, dict]:
    """Score distributions (rliable's performance profiles): the fraction of runs, over all tasks, with a normalised
    score above tau, for tau in [0, 1], with 95% stratified bootstrap bands: (taus, profiles, intervals [2, taus])."""
    taus = np.linspace(0.0, 1.0, 101)
    fn = lambda s: (s.reshape(-1, 1) > taus).mean(0)  # noqa: E731
    out = {name: stratified_bootstrap(x, fn, reps) for name, x in scores.items()}
    return taus, {n: o[0] for n, o in out.items()}, {n: o[1] for n, o in out.items()}


def learning_curves(run, learners: dict[str, str] = LEARNERS) -> pd.DataFrame:
    """Long table: task, method, seed, frames, mean, std of the periodic evaluation episodes."""
    parts, sources = [], learner_runs(run, learners)
    for task in run.params.budgets:
        for learner, (root, tasks) in sources.items():
            for seed in run.params.seeds if task in tasks else []:
                df = pd.read_csv(run_dir(root, learner, task, seed) / "curve.csv")
                parts.append(df[["frames", "mean", "std"]].assign(task=task, method=learner, seed=seed))
    return pd.concat(parts, ignore_index=True)


def head_to_head(table: pd.DataFrame, a: str = "pets", b: str = "sac", reps: int = REPS) -> pd.DataFrame:
    """Learner `a` against `b` on every task both run, at the same frames and seeds (comparison_table's rows): each
    one's mean over seeds, the difference of the means with its 95% bootstrap interval (each learner's seeds
    resampled on their own), the probability of improvement P(a's seed > b's seed) (rliable's, ties half), and
    whether `a` is at least as good (difference >= 0) and whether the interval excludes 0. The interval and the
    probability use the seeds' returns as the table gives them (to 0.1)."""
    rows = []
    for task, g in table.groupby("task", sort=False):
        if not {a, b} <= set(g.method):
            continue
        ra, rb = (g[g.method == m].iloc[0] for m in (a, b))
        x, y = ([float(v) for v in r.seed_returns.split()] for r in (ra, rb))
        _, ci = stratified_bootstrap(np.array([x, y]).T, lambda s: np.array([s[:, 0].mean() - s[:, 1].mean()]), reps)
        diff = ra["mean"] - rb["mean"]
        rows.append({"task": task, "frames": int(ra.frames), "seeds": len(x), f"{a}_mean": ra["mean"],
                     f"{b}_mean": rb["mean"], "difference": diff, "ci_low": ci[0, 0], "ci_high": ci[1, 0],
                     "p_improvement": metrics.probability_of_improvement(np.array([x]).T, np.array([y]).T),
                     "at_least_as_good": bool(diff >= 0), "interval_excludes_0": bool(ci[0, 0] > 0 or ci[1, 0] < 0)})
    return pd.DataFrame(rows)


def published_curves(run, learners: dict[str, str] = LEARNERS) -> pd.DataFrame:
    """Each learner's published references up to each task's budget: task, method, reference, frames, and the mean,
    min and max over the published seeds at every logged frame count."""
    p, parts = run.params, []
    for task, budget in p.budgets.items():
        if not dmc_name(task):
            continue
        for learner in learners:
            for f, m, o in references(p, learner):
                df = pub.load(f)
                df = df[(df.method == m) & (df.observations == o) & (df.task == dmc_name(task))
                        & (df.frames <= budget.frames)]
                g = df.groupby("frames")["return"].agg(["mean", "min", "max"]).reset_index()
                parts.append(g.assign(task=task, method=learner, reference=f"{m} ({o}, {f})"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def summary_rows(run, table: pd.DataFrame) -> pd.DataFrame:
    """results/<scale>/mujoco/summary.csv rows (see wmlib.summary.COLUMNS): the mean and std over seeds, n seeds,
    the 95% bootstrap interval; the paper columns are the published seeds' mean and std at the same frames."""
    return pd.DataFrame({
        "experiment": table.task, "method": table.method.map(lambda m: METHODS.get(m, m)), "metric": "return",
        "mean": table["mean"], "std": table["std"], "n": table.n, "ci_low": table.ci_low, "ci_high": table.ci_high,
        "env_steps": table.frames, "paper_mean": table.published_mean, "paper_std": table.published_std,
        "scale": run.scale, "train_episodes": table.train_episodes, "core_hours": table.core_hours})
