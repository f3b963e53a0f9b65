"""How well a trained Dreamer world model predicts: open-loop error against real trajectories (notebook 15).

From a start step the model observes `context` real observations (posterior), then imagines with the prior
under the actions that were really taken, and its decoded predictions are compared with what happened.
Errors are in the space the decoder reconstructs (symlog state vectors, or frames in [-0.5, 0.5]); for
vectors each dimension's squared error is divided by its variance over the episodes, so 1.0 is as good as
always predicting the mean. Predicting the last observation ("persistence") is the baseline to beat.
"""
import numpy as np
import pandas as pd
import torch

from ...envs.mujoco_tasks import EVAL_SEED
from ...io import load_json
from .train import run_dir


@torch.no_grad()
def collect_episodes(agent, env, episodes: int, seed: int = EVAL_SEED) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Real trajectories of the agent's evaluation policy: (obs [T + 1, ...], action [T, A]) per episode."""
    out = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        agent.reset()
        ep_obs, ep_action, done = [np.ascontiguousarray(obs)], [], False
        while not done:
            action = agent.act(obs)
            obs, _, terminated, truncated, _ = env.step(action)
            ep_obs.append(np.ascontiguousarray(obs)), ep_action.append(action)
            done = terminated or truncated
        out.append((torch.as_tensor(np.array(ep_obs)), torch.as_tensor(np.array(ep_action), dtype=torch.float32)))
    return out


@torch.no_grad()
def open_loop(wm, obs, action, starts: list[int], context: int, horizon: int):
    """Predictions from several start steps of one episode: obs [T + 1, ...], action [T, A] ->
    predicted and real targets [horizon, len(starts), ...], and the last observed target [len(starts), ...], on the CPU
    (computed on the model's device)."""
    device = next(wm.parameters()).device
    obs, action = obs.to(device), action.to(device)
    idx = torch.as_tensor(starts, device=device)
    window = idx[None] + torch.arange(context + horizon, device=device)[:, None]   # [context + horizon, N]
    target = wm.target(obs[window])
    prev = torch.cat([torch.zeros_like(action[:1]), action])[window[:context]]
    prev[0] = 0  # windows start from the zero state, as in training
    h, z, _, _ = wm.rssm.observe(wm.embed(obs[window[:context]]), prev)
    hs, zs = wm.rssm.imagine(h[-1], z[-1], action[window[context:] - 1])
    pred = wm.decode(torch.cat([hs, zs], -1))
    return pred.cpu(), target[context:].cpu(), target[context - 1].cpu()


def open_loop_error(wm, episodes, context: int, horizon: int, stride: int = 10) -> pd.DataFrame:
    """Mean normalised squared error of the model and of persistence at 1..horizon imagined steps, over the windows
    of the episodes at least context + horizon steps long (a terminating task's may be shorter: Hopper falling);
    NaN with 0 windows if none is."""
    preds, reals, lasts = [], [], []
    for obs, action in episodes:
        starts = list(range(0, len(action) - context - horizon + 1, stride))
        if not starts:
            continue
        pred, real, last = open_loop(wm, obs, action, starts, context, horizon)
        preds.append(pred), reals.append(real), lasts.append(last)
    steps = np.arange(1, horizon + 1)
    if not preds:
        return pd.DataFrame({"step": steps, "model": np.nan, "persistence": np.nan, "windows": 0})
    pred, real, last = torch.cat(preds, 1), torch.cat(reals, 1), torch.cat(lasts, 0)
    dims = tuple(range(2, pred.dim()))
    var = real.var(dim=(0, 1), keepdim=True).clamp(min=1e-6) if not wm.pixels else torch.ones(())
    model = ((pred - real) ** 2 / var).mean(dims).mean(1)
    persistence = ((last[None] - real) ** 2 / var).mean(dims).mean(1)
    return pd.DataFrame({"step": steps, "model": model.numpy(), "persistence": persistence.numpy(),
                         "windows": pred.shape[1]})


def ablation_table(run, errors: pd.DataFrame) -> pd.DataFrame:
    """The full agent and each ablation on the ablation task: final return and open-loop error at `horizons`."""
    p, d = run.params, run.params.dreamer
    rows = []
    for variant in ["full", *d.ablations]:
        e = load_json(run_dir(run.results, "dreamer", d.ablation_task, p.seeds[0], variant) / "eval.json")
        err = errors[(errors.task == d.ablation_task) & (errors.variant == variant)].set_index("step").model
        rows.append({"task": d.ablation_task, "variant": variant, "mean": e["mean"], "std": e["std"], "n": e["n"],
                     "frames": e["frames"], "core_hours": e["core_hours"],
                     **{f"error_{h}": float(err[h]) for h in d.diagnostics.horizons}})
    return pd.DataFrame(rows)
