"""Step 10: the paper's temperature table rebuilt, the random baseline, and the summary rows."""
import numpy as np
import pandas as pd
import torch

from ...envs.seeds import episode_seeds
from ...envs.takecover import make_takecover
from ...evaluation import EvalResult, run_episode
from ...io import load_json, save_csv, save_json
from ...models.dream import BatchedDream, linear_policy
from ..world_models import compute_used, load_vae
from . import EXPERIMENT, PAPER_RANDOM, PAPER_TABLE, Run
from .controller import DoomAgent, _weights, dream_scores, evaluate_real, load_controller_params
from .world_model import load_mdnrnn


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
    save_csv(df, run.results / "temperature_table.csv")
    return df


@torch.inference_mode()
def controller_dream(run: Run, tau: float, steps: int, seed: int = 0) -> np.ndarray:
    """The controller trained at `tau` playing one dream at `tau` on the run's device, decoded by V:
    uint8 (T, 64, 64, 3) numpy, T - 1 frames survived (at most `steps`)."""
    vae, (mdnrnn, initial) = load_vae(run), load_mdnrnn(run)
    torch.manual_seed(seed)
    dream = BatchedDream(mdnrnn, initial["initial_mu"], initial["initial_logvar"], tau, steps)
    policy = linear_policy(load_controller_params(run, tau)[None], dream.device, initial["action_input"] == "move")
    alive = torch.zeros(1, dtype=torch.long, device=dream.device)
    obs, zs, done = dream.reset(1), [dream.z], torch.zeros(1, dtype=torch.bool)
    while not done[0]:
        obs, _, done = dream.step(policy(obs, alive))
        zs.append(dream.z)
    return (vae.decode(torch.cat(zs)).movedim(1, -1) * 255).round().byte().cpu().numpy()


def cross_temperature(run: Run, dreams: int) -> pd.DataFrame:
    """Every trained controller (rows) in the dream at every tau (columns): mean frames survived over
    `dreams` dreams. Tells a dream that rewards the wrong behaviour (its own controller is the best in
    its column) from a search that stopped short (another controller beats it there)."""
    shared, taus = _weights(run), run.params.taus
    params = np.stack([load_controller_params(run, t) for t in taus])
    cap = run.params.controller.max_steps
    with run.pool() as pool:
        cols = {f"dream tau={t:g}": dream_scores(pool, shared, params, dreams, t, cap, seed=3 * 10**6).mean(1)
                for t in taus}
    df = pd.DataFrame(cols, index=[f"C trained at tau={t:g}" for t in taus]).round(0)
    save_csv(df, run.results / "cross_temperature.csv", index=True)
    return df


def real_moves(run: Run, episodes: int) -> pd.DataFrame:
    """Share of left / stay / right moves each trained controller makes in `episodes` real episodes."""
    shared, env, rows = _weights(run), make_takecover(run.params.evaluation.max_steps), {}
    for t in run.params.taus:
        agent, actions = DoomAgent(shared, load_controller_params(run, t)), []
        for seed in episode_seeds("eval", episodes):
            run_episode(env, lambda obs: actions.append(agent(obs)) or actions[-1], seed)
        counts = np.bincount(actions, minlength=3) / len(actions)
        rows[f"C trained at tau={t:g}"] = {"left": counts[2], "stay": counts[0], "right": counts[1]}
    env.close()
    df = pd.DataFrame(rows).T.round(2)
    save_csv(df, run.results / "real_moves.csv", index=True)
    return df


def summary_rows(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """Rows for results/summary.csv: per tau, the dream score and the real score of the controller
    trained at that tau; and the random policy's real score. env_steps counts real frames used in
    training (the random rollouts: C itself never sees the real game); train_episodes likewise."""
    rollouts = load_json(run.results / "rollouts.json")
    hours = compute_used(run, {f"cmaes_tau_{tau:g}": f"taus/{float(tau)}/controller.json" for tau in run.params.taus})
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
    save_csv(df, run.results / "summary.csv")
    return df


def _row(run, method, metric, mean, std, n, steps, episodes, core_hours, paper_mean, paper_std):
    return {"experiment": EXPERIMENT, "method": method, "metric": metric, "mean": round(mean, 1),
            "std": round(std, 1), "n": int(n), "env_steps": int(steps), "paper_mean": paper_mean,
            "paper_std": paper_std, "scale": run.scale, "train_episodes": int(episodes),
            "core_hours": round(core_hours, 2)}
