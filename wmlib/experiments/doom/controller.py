"""Step 9: C trained with CMA-ES entirely inside M's dream at temperature tau, then scored over
`evaluation.episodes` dreams and `evaluation.episodes` real TakeCover episodes.

CMA-ES runs in `controller.phases` phases, each a DVC stage of at most about 1.5 hours that continues the previous
phase's checkpoint: `python -m wmlib.experiments.doom.controller --scale default --tau 1.15 --phase 2`.
Notebook 09 then finds every phase done (or, outside DVC, runs them) and writes C's weights and the curves.

C: a = tanh(W [z, c, h]), no bias: 64 + 512 + 512 = 1,088 parameters; the game gets move = quantize(a).
In the real game z is sampled from V's encoding of the frame and M is fed (z, action, restart flag) after
each action, exactly as in the dream; the action M is fed is the move or a itself, as M was trained
(`mdnrnn.action_input`, stored with M).
"""
import argparse
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...control.cmaes import run_cmaes
from ...control.controller import LinearController
from ...device import resolve_device
from ...envs.seeds import episode_seeds
from ...envs.takecover import MOVE_TO_ACTION, ResilientEnv, make_takecover
from ...evaluation import EvalResult, run_episode
from ...io import load_torch, save_csv, save_json, save_torch
from ...models.dream import BatchedDream, linear_policy, quantize_action
from ...models.vae import ConvVAE, frames_to_tensor
from . import Run, setup
from .world_model import make_mdnrnn


def make_controller(z_size: int, hidden: int) -> LinearController:
    """C sees [z, c, h]: 1,088 parameters at the paper's sizes."""
    return LinearController(z_size + 2 * hidden, 1, bias=False)


def _weights(run: Run) -> dict:
    """What a worker needs to dream or act (plain tensors, cheap to ship to Ray) and the `device` setting, which
    each worker resolves for itself."""
    return {"vae": load_torch(run.data / "vae.pt"), "mdnrnn": load_torch(run.data / "mdnrnn.pt"),
            "device": run.params.device}


def _build_dream(shared, tau, max_steps) -> BatchedDream:
    """The dream on `shared["device"]` (default: the CPU)."""
    m = shared["mdnrnn"]
    mdnrnn = make_mdnrnn(m["z_size"], m["hidden"], m["mixtures"]).to(resolve_device(shared.get("device", "cpu")))
    mdnrnn.load_state_dict(m["model"])
    return BatchedDream(mdnrnn, m["initial_mu"], m["initial_logvar"], tau, max_steps)


def quantizes(shared) -> bool:
    """Whether M takes the quantised move (else C's continuous action); M saved before the switch took moves."""
    return shared["mdnrnn"].get("action_input", "move") == "move"


def _dream_task(shared, item):
    """Worker task: item = (weights (n, 1088), dreams per row, tau, max_steps, seed) -> frames survived,
    (n, rollouts), numpy. All n * rollouts dreams are one batch, on `shared["device"]`."""
    weights, rollouts, tau, max_steps, seed = item
    torch.manual_seed(seed)
    dream = _build_dream(shared, tau, max_steps)
    w = np.repeat(np.asarray(weights, np.float32), rollouts, axis=0)
    return dream.rollout(linear_policy(w, dream.device, quantizes(shared)), len(w)).reshape(-1, rollouts)


def dream_scores(pool, shared, weights, rollouts: int, tau: float, max_steps: int, seed: int) -> np.ndarray:
    """Frames survived (n, rollouts) for n controllers, the batch split evenly over the pool's workers; each dreams
    on `shared["device"]` (default: the CPU)."""
    chunks = np.array_split(np.asarray(weights), min(pool.workers, len(weights)))
    items = [(c, rollouts, tau, max_steps, seed * 1000 + i) for i, c in enumerate(chunks)]
    return np.concatenate(pool.map(_dream_task, items, shared, progress=False))


def phase_checkpoint(run: Run, tau: float, phase: int) -> Path:
    """data/<scale>/doom/cmaes/<tau>-<phase>.pkl: CMA-ES at `tau` after phase `phase` (a DVC output each)."""
    return run.data / "cmaes" / f"{float(tau)}-{phase}.pkl"


def train_phase(run: Run, tau: float, phase: int):
    """CMA-ES over C's weights in the dream at `tau` up to generation ceil(phase / phases * generations),
    continuing phase - 1's checkpoint; fitness = mean frames survived over `rollouts` dreams. Checkpointed each
    generation: a killed phase resumes where it stopped."""
    p = run.params.controller
    if not 1 <= phase <= p.phases:
        raise ValueError(f"phase must be in 1..controller.phases={p.phases}, got {phase}")
    shared = _weights(run)
    m = shared["mdnrnn"]
    dim = make_controller(m["z_size"], m["hidden"]).n_params
    with run.pool() as pool:
        def fitness(solutions, g):
            start = time.monotonic()
            scores = dream_scores(pool, shared, solutions, p.rollouts, tau, p.max_steps, seed=g)
            return scores.mean(1), {"dream_steps": int(scores.sum()), "seconds": time.monotonic() - start}

        def evaluate_mean(mean, g):
            start = time.monotonic()
            scores = dream_scores(pool, shared, mean[None], p.eval_episodes, tau, p.max_steps, seed=10**6 + g)
            return {"mean": float(scores.mean()), "std": float(scores.std()), "dream_steps": int(scores.sum()),
                    "seconds": time.monotonic() - start}

        return run_cmaes(fitness, dim, popsize=p.popsize, sigma0=p.sigma0, generations=p.generations,
                         stop_at=math.ceil(phase * p.generations / p.phases),
                         checkpoint=phase_checkpoint(run, tau, phase),
                         continues=phase_checkpoint(run, tau, phase - 1) if phase > 1 else None,
                         seed=run.params.seed, evaluate=evaluate_mean, eval_every=p.eval_every,
                         config={"tau": tau, "rollouts": p.rollouts, "max_steps": p.max_steps,
                                 "eval_episodes": p.eval_episodes, "mdnrnn": _digest(m["model"])})


def train_controller(run: Run, tau: float):
    """Every phase of CMA-ES at `tau` (those already done are only loaded), then C's weights (the best-evaluated
    mean) in data/<scale>/doom/taus/<tau>/controller.pt and the curves and totals in results/.../taus/<tau>/."""
    p = run.params.controller
    for phase in range(1, p.phases + 1):
        cma_run = train_phase(run, tau, phase)
    save_torch({"tau": tau, "params": cma_run.best_params}, run.tau_dir(tau, "data") / "controller.pt")
    results = run.tau_dir(tau)
    history, evals = pd.DataFrame(cma_run.history), pd.DataFrame(cma_run.evaluations)
    save_csv(history, results / "cmaes.csv")
    save_csv(evals, results / "cmaes_evaluations.csv")
    save_json({"tau": tau, "parameters": len(cma_run.best_params), "generations": len(history), "phases": p.phases,
               "dream_episodes": len(history) * p.popsize * p.rollouts + len(evals) * p.eval_episodes,
               "dream_steps": int(history.dream_steps.sum() + evals.dream_steps.sum()),
               "seconds": float(history.seconds.sum() + evals.seconds.sum()),
               "workers": run.params.parallel.workers,
               "best_evaluation": float(evals["mean"].max())}, results / "controller.json")
    return cma_run


def load_controller_params(run: Run, tau: float) -> np.ndarray:
    return load_torch(run.tau_dir(tau, "data") / "controller.pt")["params"]


class DoomAgent:
    """Callable policy for the real game: uint8 frame (64, 64, 3) -> TakeCover action. V, M and C on
    `shared["device"]` (default: the CPU)."""

    def __init__(self, shared: dict, params):
        v, m = shared["vae"], shared["mdnrnn"]
        self.device = resolve_device(shared.get("device", "cpu"))
        self.vae = ConvVAE(v["z_size"]).to(self.device)
        self.vae.load_state_dict(v["model"])
        mdnrnn = make_mdnrnn(m["z_size"], m["hidden"], m["mixtures"]).to(self.device)
        mdnrnn.load_state_dict(m["model"])
        self.vae.eval()
        self.cell = mdnrnn.cell()
        self.controller = make_controller(m["z_size"], m["hidden"]).to(self.device).set_flat(params).eval()
        self.quantize = quantizes(shared)
        self.reset()

    def reset(self):
        """Zero LSTM state h, c (1, hidden) and the restart flag (1, 1) set, on the agent's device."""
        self.h = self.c = torch.zeros(1, self.cell.hidden_size, device=self.device)
        self.restart = torch.ones(1, 1, device=self.device)

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray) -> int:
        mu, logvar = self.vae.encode(frames_to_tensor(frame[None]).to(self.device))
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        a = self.controller(torch.cat([z, self.c, self.h], -1)).view(1, 1)
        move = quantize_action(a)
        self.h, self.c = self.cell(torch.cat([z, move if self.quantize else a, self.restart], -1), (self.h, self.c))
        self.restart = torch.zeros(1, 1, device=self.device)
        return MOVE_TO_ACTION[int(move.item())]


_worker = {}  # this process's agent and env, rebuilt when the weights or episode cap change


def _real_episode(shared, seed):
    """Worker task: one real TakeCover episode of the agent (params in shared, or random if None)
    -> (frames survived, steps, VizDoom restarts)."""
    key = (id(shared), shared["max_steps"])
    if _worker.get("key") != key:
        if "env" in _worker:
            _worker["env"].close()
        _worker.update(key=key, env=ResilientEnv(lambda: make_takecover(shared["max_steps"]), shared["retries"]),
                       agent=DoomAgent(shared, shared["params"]) if shared["params"] is not None else None)
    env, agent = _worker["env"], _worker["agent"]
    before = env.restarts

    def episode(e, s):
        e.action_space.seed(s)
        policy = agent if agent is not None else (lambda obs: e.action_space.sample())
        return run_episode(e, policy, s)[:2]

    ret, steps = env.run(episode, seed)
    return ret, steps, env.restarts - before


def evaluate_real(run: Run, params, method: str, pool=None) -> tuple[EvalResult, int]:
    """`evaluation.episodes` real episodes on the evaluation seeds; params None = random policy.
    Returns (result, VizDoom restarts)."""
    p = run.params.evaluation
    shared = {**_weights(run), "params": params, "max_steps": p.max_steps, "retries": run.params.rollouts.retries}
    seeds = episode_seeds("eval", p.episodes)
    own = pool is None
    pool = pool or run.pool()
    try:
        res = pool.map(_real_episode, seeds, shared, desc=f"real game: {method}")
    finally:
        if own:
            pool.close()
    return EvalResult(method, seeds, [float(r) for r, _, _ in res], [int(s) for _, s, _ in res]), \
        int(sum(r for _, _, r in res))


def evaluate_tau(run: Run, tau: float) -> dict:
    """The trained controller at `tau`: dream score and real score, each over `evaluation.episodes`."""
    p = run.params.evaluation
    results, params = run.tau_dir(tau), load_controller_params(run, tau)
    start = time.monotonic()
    with run.pool() as pool:
        dream = dream_scores(pool, _weights(run), params[None], p.episodes, tau, p.max_steps,
                             seed=run.params.seed + 2 * 10**6).ravel()
        real, restarts = evaluate_real(run, params, f"tau={tau:g}", pool)
    EvalResult(f"tau={tau:g} (dream)", list(range(len(dream))), dream.astype(float).tolist(),
               dream.tolist()).save(results / "eval_dream.json")
    real.save(results / "eval_real.json")
    summary = {"tau": tau, "dream_mean": float(dream.mean()), "dream_std": float(dream.std()),
               "real_mean": real.mean, "real_std": real.std, "n": len(real.returns),
               "vizdoom_restarts": restarts, "seconds": time.monotonic() - start}
    save_json(summary, results / "evaluation.json")
    return summary


def _digest(state: dict) -> str:
    """sha256 of M's weights: a checkpoint of CMA-ES in another M's dream is not resumed or continued."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(state[k].cpu().numpy().tobytes())
    return h.hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(description="One phase of TakeCover's CMA-ES in the dream (a DVC stage each).")
    parser.add_argument("--scale", required=True)
    parser.add_argument("--tau", required=True, type=float)
    parser.add_argument("--phase", required=True, type=int)
    args = parser.parse_args(argv)
    cma_run = train_phase(setup(args.scale), args.tau, args.phase)
    print(f"tau={args.tau:g}, phase {args.phase}: generation {cma_run.generation}, "
          f"evaluations {[round(e['mean'], 1) for e in cma_run.evaluations]}")


if __name__ == "__main__":
    main()
