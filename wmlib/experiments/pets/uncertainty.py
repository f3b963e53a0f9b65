"""Notebook 19: what the ensemble knows about its own errors.

    disagreement          epistemic uncertainty: the variance across members of their mean predictions
    one_step              per transition: disagreement, the ensemble mean's squared error, the predictive PIT
    open_loop             per (start, k): disagreement and error after k open-loop steps along real actions
    coverage, ece         calibration of the predictive distribution: observed vs nominal central-interval coverage
    variance_reliability  predicted variance against the realised squared error, by quantile bins of the former
    auroc                 how well a score separates out-of-distribution from in-distribution transitions
    q_disagreement        TD-MPC's Q-ensemble on the same transitions (its model: tdmpc_model), for comparison

Errors and disagreements are in standardised target units (the ensemble's output standardiser) and averaged over
the output dimensions, so that every state dimension counts alike. The predictive distribution of a transition is
the ensemble's equal-weight mixture of its members' Gaussians (torch.distributions.MixtureSameFamily).
"""
import numpy as np
import pandas as pd
import torch
from scipy.stats import mannwhitneyu, spearmanr
from torch.distributions import Categorical, MixtureSameFamily, Normal

from ...models.ensemble import GaussianEnsemble
from ...models.latent_model import LatentModel
from ...params import load_params
from .. import mujoco
from ..mujoco import train as mujoco_train
from ..mujoco.params import MujocoParams


@torch.no_grad()
def disagreement(ens: GaussianEnsemble, obs, action) -> torch.Tensor:
    """[N]: variance across members of the mean prediction (standardised units), averaged over outputs."""
    return ens(ens.inputs(obs, action))[0].var(0).mean(-1)


def mixture(ens: GaussianEnsemble, obs, action) -> MixtureSameFamily:
    """The ensemble's predictive distribution over standardised targets, batch [N, out]: B equal-weight members."""
    mean, logvar = ens(ens.inputs(obs, action))
    std = torch.full_like(mean, 1e-6) if logvar is None else (0.5 * logvar).exp()
    weights = Categorical(logits=torch.zeros(*mean.shape[1:], ens.members, device=mean.device))
    return MixtureSameFamily(weights, Normal(mean.movedim(0, -1), std.movedim(0, -1)))


@torch.no_grad()
def one_step(ens: GaussianEnsemble, obs, action, next_obs, reward) -> dict:
    """Per transition [N]: disagreement, the squared error of the members' mean prediction, the predicted total
    variance (mixture), and the PIT [N, out] (the mixture's CDF at the realised target)."""
    y = ens.targets(obs, action, next_obs, reward)
    mix = mixture(ens, obs, action)
    return {"disagreement": disagreement(ens, obs, action), "sq_error": ((mix.mean - y) ** 2).mean(-1),
            "variance": mix.variance.mean(-1), "pit": mix.cdf(y)}


@torch.no_grad()
def open_loop(ens: GaussianEnsemble, obs, action, horizons: list[int], starts: int | None = None) -> pd.DataFrame:
    """One real trajectory obs [T+1, D], action [T, A]: from each start t every member rolls its mean prediction
    forward along the real actions (TS-inf without sampling). Rows (start, k, disagreement, sq_error) for k in
    `horizons`: the variance across members of the predicted state after k steps and the squared error of their
    mean, both in units of the delta standardiser's std, averaged over state dimensions."""
    T, K, D = len(action), max(horizons), ens.obs_dim
    t0 = torch.arange(0, T - K + 1) if starts is None else torch.linspace(0, T - K, starts).long()
    s = obs[t0].expand(ens.members, -1, -1)                               # [B, S, D]
    scale, rows = ens.out_norm.std[:D], []
    for k in range(1, K + 1):
        mean, _ = ens(ens.inputs(s, action[t0 + k - 1].expand(ens.members, -1, -1)))
        s = s + ens.out_norm.inverse(mean)[..., :D]
        if k in horizons:
            dis = (s / scale).var(0).mean(-1)
            err = ((s.mean(0) - obs[t0 + k]) / scale).pow(2).mean(-1)
            rows += [{"start": int(t), "k": k, "disagreement": float(d), "sq_error": float(e)}
                     for t, d, e in zip(t0, dis, err)]
    return pd.DataFrame(rows)


@torch.no_grad()
def q_disagreement(model: LatentModel, obs, action) -> torch.Tensor:
    """[N]: the std across TD-MPC's Q heads (dropout off) of Q(encode(obs), action), in return units: the
    disagreement of a value ensemble on the same transitions, for comparison (ranks as its variance would)."""
    model.eval()
    return model.q(model.encode(obs), action, "all").std(0)


def tdmpc_model(scale: str, task: str, seed: int) -> LatentModel:
    """The TD-MPC model of (task, seed) at `scale`: the mujoco_tdmpc_job stage's final checkpoint, the job trained
    first where it has not run (outside the pipeline), as PETS's own (train.ensure)."""
    p = load_params(MujocoParams, scale)
    if task not in p.budgets or seed not in p.seeds:
        raise ValueError(f"TD-MPC runs no ({task}, seed {seed}) at scale {scale}: the task must be in "
                         f"mujoco.{scale}.budgets ({', '.join(p.budgets)}), the seed in mujoco.seeds {p.seeds}")
    run = mujoco.setup(scale)
    mujoco_train.train_missing(run, "tdmpc", mujoco_train.train_tdmpc, [(task, seed, "full")])
    return mujoco_train.load_agent(run.params, run.data, task, seed).model


def spearman(x, y) -> float:
    """Spearman rank correlation of two samples."""
    return float(spearmanr(np.asarray(x), np.asarray(y)).statistic)


def coverage(pit, levels) -> np.ndarray:
    """Observed coverage of the central intervals at each nominal level: the fraction of targets whose PIT lies
    within (1 - level) / 2 of 0.5 (Kuleshov et al., 2018). pit: any shape, levels [L] in (0, 1)."""
    centred = np.abs(2 * np.asarray(pit, dtype=float).ravel() - 1)
    return np.array([(centred <= lv).mean() for lv in levels])


def ece(pit, levels=np.linspace(0.05, 0.95, 19)) -> float:
    """Expected calibration error of the predictive distribution: mean |observed - nominal| coverage."""
    return float(np.abs(coverage(pit, levels) - np.asarray(levels)).mean())


def variance_reliability(variance, sq_error, bins: int) -> pd.DataFrame:
    """Quantile bins of the predicted variance: per bin its mean and the mean realised squared error (calibrated:
    equal); and `ence`, |rmse - predicted std| / predicted std averaged over bins (Levi et al., 2019), in attrs."""
    df = pd.DataFrame({"variance": np.asarray(variance, float), "sq_error": np.asarray(sq_error, float)})
    df["bin"] = pd.qcut(df["variance"].rank(method="first"), bins, labels=False)
    curve = df.groupby("bin")[["variance", "sq_error"]].mean().reset_index()
    curve.attrs["ence"] = float((np.abs(np.sqrt(curve.sq_error) - np.sqrt(curve.variance))
                                 / np.sqrt(curve.variance)).mean())
    return curve


def auroc(in_scores, out_scores) -> float:
    """P(score of an OOD sample > score of an in-distribution one), ties counting half: the ROC curve's area."""
    x, y = np.asarray(out_scores, float), np.asarray(in_scores, float)
    return float(mannwhitneyu(x, y).statistic / (len(x) * len(y)))


def held_action_policy(action_dim: int, seed: int):
    """A policy no agent here trains on (states 'from a different policy'): a random corner of the action box,
    redrawn every 25 steps. Returns (policy obs -> action, reset)."""
    rng, state = np.random.default_rng(seed), {"t": 0, "a": None}

    def policy(_obs):
        if state["t"] % 25 == 0:
            state["a"] = rng.choice([-1.0, 1.0], action_dim).astype(np.float32)
        state["t"] += 1
        return state["a"]

    return policy, lambda: state.update(t=0)


def episodes(env, policy, seeds: list[int], reset=None) -> list[dict]:
    """Episodes of `policy` (obs -> action; `reset()` after each env reset) on `seeds`, as tensors
    {obs [T+1, D], action [T, A], reward [T]}."""
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        if reset is not None:
            reset()
        ep, done = {"obs": [obs], "action": [], "reward": []}, False
        while not done:
            ep["action"].append(np.asarray(policy(obs), dtype=np.float32))
            obs, reward, terminated, truncated, _ = env.step(ep["action"][-1])
            ep["obs"].append(obs), ep["reward"].append(reward)
            done = terminated or truncated
        out.append({k: torch.as_tensor(np.array(v), dtype=torch.float32) for k, v in ep.items()})
    return out


def flatten(eps: list[dict]) -> tuple[torch.Tensor, ...]:
    """Episodes -> transitions (obs [N, D], action [N, A], next_obs [N, D], reward [N])."""
    return (torch.cat([e["obs"][:-1] for e in eps]), torch.cat([e["action"] for e in eps]),
            torch.cat([e["obs"][1:] for e in eps]), torch.cat([e["reward"] for e in eps]))


def measure(p, run_data, task: str, seed: int, penalised: bool = False, q_model=None) -> tuple[dict, dict]:
    """Notebook 19's measurements for the finished job (task, seed, full): fresh episodes of the agent (in
    distribution) and of `held_action_policy` (OOD) on the evaluation seeds; returns (metrics, tables) where
    metrics holds the numbers for results/ and tables the curves behind the figures. `penalised`: also the
    planner with reward - uncertainty.penalty x disagreement on the same seeds (the plain planner's returns are
    those of the in-distribution episodes). With `q_model` (a trained TD-MPC LatentModel of the same task:
    tdmpc_model) its Q-ensemble's disagreement (q_disagreement) is scored on the same transitions, against the
    ensemble's realised one-step error and as an OOD score: metrics["tdmpc_q"]."""
    from ...envs.mujoco_tasks import eval_seeds, make_env
    from .train import load_agent

    u = p.uncertainty
    agent, ens = load_agent(p, run_data, task, seed, "full")
    env = make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames)
    seeds = eval_seeds(u.episodes)
    ood_policy, ood_reset = held_action_policy(ens.action_dim, seed)
    eps = {"in": episodes(env, agent.act, seeds, agent.reset), "ood": episodes(env, ood_policy, seeds, ood_reset)}
    steps = {k: one_step(ens, *flatten(v)) for k, v in eps.items()}
    s = steps["in"]
    levels = np.linspace(0.05, 0.95, 19)
    multi = pd.concat([open_loop(ens, e["obs"], e["action"], u.horizons) for e in eps["in"]
                       if len(e["action"]) >= max(u.horizons)], ignore_index=True)
    reliability = variance_reliability(s["variance"], s["sq_error"], u.bins)
    returns = {"plain": [float(e["reward"].sum()) for e in eps["in"]]}
    if penalised:
        agent, _ = load_agent(p, run_data, task, seed, "full", penalty=u.penalty)
        returns["penalised"] = [float(e["reward"].sum()) for e in episodes(env, agent.act, seeds, agent.reset)]
    env.close()
    metrics = {
        "task": task, "seed": seed,
        "transitions": {k: len(v["sq_error"]) for k, v in steps.items()},
        "spearman_one_step": spearman(s["disagreement"], s["sq_error"]),
        "spearman_open_loop": {int(k): spearman(g.disagreement, g.sq_error) for k, g in multi.groupby("k")},
        "ece": ece(s["pit"], levels), "ence": reliability.attrs["ence"],
        "auroc_disagreement_ood": auroc(s["disagreement"], steps["ood"]["disagreement"]),
        "auroc_error_ood": auroc(s["sq_error"], steps["ood"]["sq_error"]),
        "mean_sq_error": {k: float(v["sq_error"].mean()) for k, v in steps.items()},
        "mean_disagreement": {k: float(v["disagreement"].mean()) for k, v in steps.items()},
        **{f"return_{k}": float(np.mean(v)) for k, v in returns.items()}, "returns": returns,
        **({"penalty": u.penalty} if penalised else {})}
    if q_model is not None:
        q = {k: q_disagreement(q_model, *flatten(v)[:2]) for k, v in eps.items()}
        metrics["tdmpc_q"] = {"heads": q_model.num_q, "spearman_one_step": spearman(q["in"], s["sq_error"]),
                              "spearman_with_ensemble": spearman(q["in"], s["disagreement"]),
                              "auroc_ood": auroc(q["in"], q["ood"]),
                              "mean_disagreement": {k: float(v.mean()) for k, v in q.items()}}
    tables = {"coverage": pd.DataFrame({"nominal": levels, "observed": coverage(s["pit"], levels)}),
              "reliability": reliability, "open_loop": multi,
              "disagreement": pd.concat([pd.DataFrame({"set": k, "disagreement": v["disagreement"].numpy(),
                                                       "sq_error": v["sq_error"].numpy()}) for k, v in steps.items()])}
    return metrics, tables
