"""Step 10: the paper's temperature table rebuilt (with 95% intervals), the random baseline, and the summary rows."""
import numpy as np
import pandas as pd
import torch

from ...envs.seeds import episode_seeds
from ...envs.takecover import make_takecover
from ...evaluation import EvalResult, run_episode
from ...intervals import mean_interval
from ...io import load_json, save_csv, save_json
from ...models.dream import BatchedDream, linear_policy
from ...models.vae import frames_to_tensor
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
    """One row per tau in params (and the random policy): dream and real scores (mean, std and a 95% bootstrap
    interval of the mean over the episodes: wmlib.intervals) beside the paper's."""
    rows = []
    for tau in run.params.taus:
        e = load_json(run.tau_dir(tau) / "evaluation.json")
        (dream_low, dream_high), (real_low, real_high) = (
            mean_interval(EvalResult.load(run.tau_dir(tau) / f"eval_{where}.json").returns)
            for where in ("dream", "real"))
        paper = PAPER_TABLE.get(round(tau, 2), (None,) * 4)
        rows.append({"tau": tau, "dream_mean": e["dream_mean"], "dream_std": e["dream_std"], "dream_low": dream_low,
                     "dream_high": dream_high, "real_mean": e["real_mean"], "real_std": e["real_std"],
                     "real_low": real_low, "real_high": real_high, "n": e["n"],
                     "paper_dream_mean": paper[0], "paper_dream_std": paper[1],
                     "paper_real_mean": paper[2], "paper_real_std": paper[3]})
    real_low, real_high = mean_interval(random.returns)
    rows.append({"tau": None, "dream_mean": None, "dream_std": None, "dream_low": None, "dream_high": None,
                 "real_mean": random.mean, "real_std": random.std, "real_low": real_low, "real_high": real_high,
                 "n": len(random.returns), "paper_dream_mean": None, "paper_dream_std": None,
                 "paper_real_mean": PAPER_RANDOM[0], "paper_real_std": PAPER_RANDOM[1]})
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


def first_frames(run: Run, seeds) -> np.ndarray:
    """The first frame of the real episode of each seed: uint8 (n, 64, 64, 3)."""
    env = make_takecover(run.params.evaluation.max_steps)
    frames = np.stack([env.reset(seed=s)[0] for s in seeds])
    env.close()
    return frames


@torch.inference_mode()
def exploitation(run: Run, dreams: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each controller's real-game survival (its evaluation, eval_real.json) against its survival in its own dream
    (at its tau) started from the same first frames: V's encoding of each real episode's first frame, `dreams`
    dreams from each, on the run's device with a generator seeded by `seed`. A dream that is easier than the
    game (exploited) shows as dream > real. Returns (per episode: tau, seed, real, dream mean; per tau: real
    and dream means +- std, gap = dream - real, ratio = dream / real), saved as exploitation_episodes.csv and
    exploitation.csv."""
    vae, (mdnrnn, initial) = load_vae(run), load_mdnrnn(run)
    cap, rows = run.params.evaluation.max_steps, []
    for tau in run.params.taus:
        real = EvalResult.load(run.tau_dir(tau) / "eval_real.json")
        mu, logvar = vae.encode(frames_to_tensor(first_frames(run, real.seeds)).to(run.device))
        g = torch.Generator(device=mdnrnn.head.weight.device).manual_seed(seed)
        dream = BatchedDream(mdnrnn, mu, logvar, tau, cap, generator=g)
        n = len(real.seeds)
        policy = linear_policy(np.repeat(load_controller_params(run, tau)[None], n * dreams, 0), dream.device,
                               initial["action_input"] == "move")
        survived = dream.rollout(policy, n * dreams, starts=np.repeat(np.arange(n), dreams)).reshape(n, dreams)
        rows += [{"tau": tau, "seed": s, "real": r, "dream": d} for s, r, d in zip(real.seeds, real.returns,
                                                                                    survived.mean(1))]
    episodes = pd.DataFrame(rows)
    per_tau = episodes.groupby("tau").agg(real_mean=("real", "mean"), real_std=("real", np.std),
                                          dream_mean=("dream", "mean"), dream_std=("dream", np.std),
                                          n=("real", "size")).reset_index()
    per_tau["gap"] = per_tau.dream_mean - per_tau.real_mean
    per_tau["ratio"] = per_tau.dream_mean / per_tau.real_mean
    save_csv(episodes, run.results / "exploitation_episodes.csv")
    save_csv(per_tau.round(2), run.results / "exploitation.csv")
    return episodes, per_tau


def summary_rows(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """Rows for results/summary.csv: per tau, the dream score and the real score of the controller
    trained at that tau; and the random policy's real score. env_steps counts real frames used in
    training (the random rollouts: C itself never sees the real game); train_episodes likewise."""
    rollouts = load_json(run.results / "rollouts.json")
    hours = compute_used(run, {f"cmaes_tau_{tau:g}": f"taus/{float(tau)}/controller.json" for tau in run.params.taus})
    world_model_hours = hours["rollouts"] + hours["vae"] + hours["mdnrnn"]
    rows = []
    for r in table.itertuples():
        real = (r.real_mean, r.real_std, r.real_low, r.real_high)
        if pd.isna(r.tau):
            rows.append(_row(run, "random policy", "frames survived, real game", *real, r.n,
                             0, 0, 0.0, r.paper_real_mean, r.paper_real_std))
            continue
        hours_tau = world_model_hours + hours[f"cmaes_tau_{r.tau:g}"]
        for where, score, pm, ps in (("dream", (r.dream_mean, r.dream_std, r.dream_low, r.dream_high),
                                      r.paper_dream_mean, r.paper_dream_std),
                                     ("real game", real, r.paper_real_mean, r.paper_real_std)):
            rows.append(_row(run, f"C trained in dream, tau={r.tau:g}", f"frames survived, {where}", *score, r.n,
                             rollouts["frames"], rollouts["episodes"], hours_tau, pm, ps))
    df = pd.DataFrame(rows)
    save_csv(df, run.results / "summary.csv")
    return df


def _row(run, method, metric, mean, std, low, high, n, steps, episodes, core_hours, paper_mean, paper_std):
    return {"experiment": EXPERIMENT, "method": method, "metric": metric, "mean": round(mean, 1),
            "std": round(std, 1), "n": int(n), "ci_low": round(low, 1), "ci_high": round(high, 1),
            "env_steps": int(steps), "paper_mean": paper_mean,
            "paper_std": paper_std, "scale": run.scale, "train_episodes": int(episodes),
            "core_hours": round(core_hours, 2)}
