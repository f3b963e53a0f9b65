"""Step 4: C, trained with CMA-ES in the real environment (full: [z, h]; z_only: the V-only ablation).

CMA-ES runs in `controller.phases` phases, each a DVC stage of a few hours that continues the previous phase's
checkpoint: `python -m wmlib.experiments.carracing.controller --scale default --variant full --phase 2`.
Notebook 04 then finds every phase done (or, outside DVC, runs them) and writes C's weights and the curves.
"""
import argparse
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...control.agent import WorldModelAgent
from ...control.cmaes import run_cmaes
from ...control.controller import LinearController
from ...device import resolve_device
from ...envs.carracing import CARRACING_ACTION_SIZE, carracing_action, make_carracing
from ...envs.seeds import episode_seeds
from ...evaluation import run_batch
from ...io import load_torch, save_csv, save_json, save_torch
from ...models.mdnrnn import MDNRNN
from ...models.vae import ConvVAE
from . import Run, setup


def make_controller(variant: str, z_size: int, hidden: int) -> LinearController:
    """full: C sees [z, h] (867 parameters at the paper's sizes); z_only: C sees z (99)."""
    if variant not in ("full", "z_only"):
        raise ValueError(f"controller variant must be 'full' or 'z_only', got {variant!r}")
    return LinearController(z_size + (hidden if variant == "full" else 0), CARRACING_ACTION_SIZE)


def _agent_weights(run: Run, variant: str) -> dict:
    """What a worker needs to build the agent (plain tensors, cheap to ship to Ray) and the `device` setting, which
    each worker resolves for itself."""
    shared = {"variant": variant, "vae": load_torch(run.data / "vae.pt"), "device": run.params.device}
    if variant == "full":
        shared["mdnrnn"] = load_torch(run.data / "mdnrnn.pt")
    return shared


def build_agent(shared: dict) -> WorldModelAgent:
    """V and M (full only) on `shared["device"]` (default: the CPU), for C's of the variant's size."""
    device = resolve_device(shared.get("device", "cpu"))
    vae = ConvVAE(shared["vae"]["z_size"]).to(device)
    vae.load_state_dict(shared["vae"]["model"])
    mdnrnn = None
    if shared["variant"] == "full":
        m = shared["mdnrnn"]
        mdnrnn = MDNRNN(m["z_size"], CARRACING_ACTION_SIZE, m["hidden"], m["mixtures"]).to(device)
        mdnrnn.load_state_dict(m["model"])
    return WorldModelAgent(vae, carracing_action, CARRACING_ACTION_SIZE, mdnrnn)


_worker = {"envs": []}  # this process's agent and envs, rebuilt when the shared weights or episode length change


def _controller_episodes(shared, items):
    """Worker task: items = [(controller params, seed, max_steps, early_stop)], one max_steps and early_stop,
    stepped together by one batched agent -> [(return, steps)]."""
    max_steps, early_stop = items[0][2], items[0][3]
    if _worker.get("shared") is not shared or _worker.get("max_steps") != max_steps:
        for env in _worker["envs"]:
            env.close()
        _worker.update(shared=shared, max_steps=max_steps, agent=build_agent(shared), envs=[])
    envs = _worker["envs"]
    envs += [make_carracing(max_steps) for _ in range(len(items) - len(envs))]
    return run_batch(envs[:len(items)], _worker["agent"], np.stack([x for x, *_ in items]),
                     [seed for _, seed, *_ in items], early_stop)


def run_episodes_batched(pool, items: list, shared: dict, batch: int, **kwargs) -> list[tuple[float, int]]:
    """Every (params, seed, max_steps, early_stop) item on the pool, up to `batch` episodes per task (fewer when
    that keeps every worker busy)."""
    batch = max(1, min(batch, math.ceil(len(items) / pool.workers)))
    chunks = [items[i:i + batch] for i in range(0, len(items), batch)]
    return [r for chunk in pool.map(_controller_episodes, chunks, shared, **kwargs) for r in chunk]


def phase_checkpoint(run: Run, variant: str, phase: int) -> Path:
    """data/<scale>/carracing/cmaes/<variant>-<phase>.pkl: CMA-ES after phase `phase` (a DVC output each)."""
    return run.data / "cmaes" / f"{variant}-{phase}.pkl"


def train_phase(run: Run, variant: str, phase: int):
    """CMA-ES over C's weights up to generation ceil(phase / phases * generations), continuing phase - 1's
    checkpoint; fitness = mean return over `rollouts` tracks, the same tracks for every candidate of a
    generation. Checkpointed each generation: a killed phase resumes where it stopped."""
    p = run.params.controller
    if not 1 <= phase <= p.phases:
        raise ValueError(f"phase must be in 1..controller.phases={p.phases}, got {phase}")
    shared = _agent_weights(run, variant)
    dim = make_controller(variant, shared["vae"]["z_size"],
                          shared["mdnrnn"]["hidden"] if variant == "full" else 0).n_params
    with run.pool() as pool:
        def fitness(solutions, g):
            start = time.monotonic()
            seeds = episode_seeds("train", p.rollouts, offset=(g - 1) * p.rollouts)
            items = [(x, s, p.max_steps, p.early_stop) for x in solutions for s in seeds]
            res = run_episodes_batched(pool, items, shared, p.batch, progress=False)
            returns = np.array([r for r, _ in res]).reshape(len(solutions), p.rollouts)
            return returns.mean(1), {"env_steps": int(sum(s for _, s in res)),
                                     "seconds": time.monotonic() - start}

        def evaluate_mean(mean, g):
            start = time.monotonic()
            seeds = episode_seeds("train", p.eval_episodes, offset=5 * 10**8 + g * p.eval_episodes)
            res = run_episodes_batched(pool, [(mean, s, p.max_steps, 0) for s in seeds], shared, p.batch,
                                       progress=False)
            returns = [r for r, _ in res]
            return {"mean": float(np.mean(returns)), "std": float(np.std(returns)),
                    "env_steps": int(sum(s for _, s in res)), "seconds": time.monotonic() - start}

        return run_cmaes(fitness, dim, popsize=p.popsize, sigma0=p.sigma0, generations=p.generations,
                         stop_at=math.ceil(phase * p.generations / p.phases),
                         checkpoint=phase_checkpoint(run, variant, phase),
                         continues=phase_checkpoint(run, variant, phase - 1) if phase > 1 else None,
                         seed=run.params.seed, evaluate=evaluate_mean, eval_every=p.eval_every,
                         config={"variant": variant, "rollouts": p.rollouts, "max_steps": p.max_steps,
                                 "early_stop": p.early_stop, "weights": _digest(shared)})


def train_controller(run: Run, variant: str):
    """Every phase of CMA-ES (those already done are only loaded), then C's weights (the best-evaluated mean) in
    data/<scale>/carracing/controller_<variant>.pt and the curves and totals in results/<scale>/carracing/."""
    p = run.params.controller
    for phase in range(1, p.phases + 1):
        cma_run = train_phase(run, variant, phase)
    dim = len(cma_run.best_params)
    save_torch({"variant": variant, "params": cma_run.best_params}, run.data / f"controller_{variant}.pt")
    history = pd.DataFrame(cma_run.history)
    save_csv(history, run.results / f"cmaes_{variant}.csv")
    evals = pd.DataFrame(cma_run.evaluations)
    save_csv(evals, run.results / f"cmaes_{variant}_evaluations.csv")
    save_json({"variant": variant, "parameters": dim, "generations": len(history), "phases": p.phases,
               "episodes": len(history) * p.popsize * p.rollouts + len(evals) * p.eval_episodes,
               "env_steps": int(history.env_steps.sum() + evals.env_steps.sum()),
               "seconds": float(history.seconds.sum() + evals.seconds.sum()),
               "workers": run.params.parallel.workers,
               "best_evaluation": float(evals["mean"].max())}, run.results / f"controller_{variant}.json")
    return cma_run


def load_controller_params(run: Run, variant: str) -> np.ndarray:
    return load_torch(run.data / f"controller_{variant}.pt")["params"]


def _digest(obj) -> str:
    h = hashlib.sha256()
    for t in _tensors(obj):
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for k in sorted(obj):
            yield from _tensors(obj[k])


def main(argv=None):
    parser = argparse.ArgumentParser(description="One phase of CarRacing's CMA-ES (a DVC stage each).")
    parser.add_argument("--scale", required=True)
    parser.add_argument("--variant", required=True, choices=["full", "z_only"])
    parser.add_argument("--phase", required=True, type=int)
    args = parser.parse_args(argv)
    cma_run = train_phase(setup(args.scale), args.variant, args.phase)
    print(f"{args.variant}, phase {args.phase}: generation {cma_run.generation}, "
          f"evaluations {[round(e['mean'], 1) for e in cma_run.evaluations]}")


if __name__ == "__main__":
    main()
