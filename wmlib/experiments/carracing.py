"""World Models on CarRacing, one function per pipeline step; notebooks 01-05 call them in order."""
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import training
from ..control import LinearController, run_cmaes
from ..control.agent import WorldModelAgent, run_episode
from ..data import RolloutStore, collect_episode, load_frames
from ..envs import CARRACING_ACTION_SIZE, BrownianPolicy, carracing_action, episode_seeds, make_carracing
from ..evaluation import EvalResult, evaluate
from ..io import atomic_path, load_json, load_torch, save_json, save_torch
from ..models import MDNRNN, ConvVAE
from ..parallel import WorkerPool
from ..params import CarRacingParams, load_params, resolve_scale
from ..paths import data_dir, results_dir

EXPERIMENT = "carracing"
METHODS = {  # method key -> (label in tables, paper Table 1 mean, std)
    "full": ("V+M+C (z, h)", 906.0, 21.0),
    "z_only": ("V only (z)", 632.0, 251.0),
    "random": ("random policy", None, None),
}


@dataclass
class Run:
    """Where one scale of the experiment reads and writes, and with which parameters."""
    scale: str
    params: CarRacingParams
    data: Path      # data/<scale>/carracing: rollouts and checkpoints (DVC-cached)
    results: Path   # results/<scale>/carracing: metrics and figures (committed)

    def pool(self) -> WorkerPool:
        return WorkerPool.from_params(self.params.parallel)


def setup(scale: str | None = None) -> Run:
    scale = resolve_scale(scale)
    params = load_params(EXPERIMENT, scale)
    run = Run(scale, params, data_dir(scale, EXPERIMENT), results_dir(scale, EXPERIMENT))
    run.data.mkdir(parents=True, exist_ok=True)
    run.results.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(params.seed)
    return run


# 1. Random rollouts -------------------------------------------------------------------------

def collect_rollouts(run: Run) -> RolloutStore:
    """Collect `rollouts.episodes` seeded random episodes in parallel; resumes episode by episode."""
    p = run.params.rollouts
    store = RolloutStore(run.data / "rollouts")
    meta = {"policy": p.policy, "max_steps": p.max_steps}
    seeds = episode_seeds("rollouts", p.episodes)
    with run.pool() as pool:
        entries = pool.map(_rollout_task, seeds, {"root": str(store.root), "meta": meta}, desc="rollouts")
    store.write_index(entries, meta)
    frames = sum(e["steps"] for e in entries)
    save_json({"episodes": len(entries), "frames": frames,
               "mean_return": float(np.mean([e["return"] for e in entries])),
               "core_seconds": float(sum(e["seconds"] for e in entries))}, run.results / "rollouts.json")
    return store


def _rollout_task(shared, seed):
    store, meta = RolloutStore(shared["root"]), shared["meta"]
    entry = store.existing(seed, meta)
    if entry is None:
        start = time.process_time()
        env = make_carracing(meta["max_steps"])
        rng = np.random.default_rng(seed)
        policy = BrownianPolicy(env.action_space, rng) if meta["policy"] == "brownian" else _uniform(env, seed)
        entry = store.write(collect_episode(env, policy, seed), meta)
        env.close()
        entry["seconds"] = time.process_time() - start
    else:
        entry["seconds"] = 0.0  # collected by an earlier, interrupted run
    return entry


def _uniform(env, seed):
    env.action_space.seed(seed)
    return lambda obs: env.action_space.sample()


# 2. V: the VAE ------------------------------------------------------------------------------

def train_vae(run: Run) -> tuple[ConvVAE, list[dict]]:
    p = run.params.vae
    frames = load_frames(RolloutStore(run.data / "rollouts"), p.frame_stride)
    ckpt = run.data / "vae.ckpt"
    vae, history = training.train_vae(frames, p, ckpt, run.params.seed)
    save_torch({"z_size": p.z_size, "model": vae.state_dict()}, run.data / "vae.pt")
    ckpt.unlink(missing_ok=True)
    pd.DataFrame(history).to_csv(run.results / "vae_history.csv", index=False)
    last = history[-1]
    save_json({"frames": len(frames), "epochs": p.epochs, "steps": last["step"], "loss": last["loss"],
               "reconstruction": last["rec"], "kl": last["kl"], "seconds": last["seconds"],
               "images_per_second": last["step"] * p.batch_size / last["seconds"]}, run.results / "vae.json")
    return vae, history


def load_vae(run: Run) -> ConvVAE:
    ckpt = load_torch(run.data / "vae.pt")
    vae = ConvVAE(ckpt["z_size"])
    vae.load_state_dict(ckpt["model"])
    return vae.eval()


def encode_rollouts(run: Run, vae: ConvVAE) -> dict:
    """Encode every stored frame: mu, logvar (E, T, z), actions (E, T, A), lengths (E,), padded."""
    store = RolloutStore(run.data / "rollouts")
    lengths = np.array([e["steps"] for e in store.index])
    E, T, z = len(lengths), lengths.max(), vae.z_size
    out = {"mu": np.zeros((E, T, z), np.float32), "logvar": np.zeros((E, T, z), np.float32),
           "actions": np.zeros((E, T, CARRACING_ACTION_SIZE), np.float32), "lengths": lengths}
    for i, ep in enumerate(store):
        out["mu"][i, :len(ep)], out["logvar"][i, :len(ep)] = training.encode_frames(vae, ep.frames)
        out["actions"][i, :len(ep)] = ep.actions
    with atomic_path(run.data / "latents.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **out)
    return out


def load_latents(run: Run) -> dict:
    with np.load(run.data / "latents.npz") as f:
        return dict(f)


# 3. M: the MDN-RNN --------------------------------------------------------------------------

def train_mdnrnn(run: Run) -> tuple[MDNRNN, list[dict]]:
    p = run.params.mdnrnn
    lat = load_latents(run)
    ckpt = run.data / "mdnrnn.ckpt"
    model, history = training.train_mdnrnn(lat["mu"], lat["logvar"], lat["actions"], lat["lengths"], p,
                                           ckpt, run.params.seed)
    save_torch({"z_size": lat["mu"].shape[-1], "hidden": p.hidden, "mixtures": p.mixtures,
                "model": model.state_dict()}, run.data / "mdnrnn.pt")
    ckpt.unlink(missing_ok=True)
    pd.DataFrame(history).to_csv(run.results / "mdnrnn_history.csv", index=False)
    last = history[-1]
    save_json({"steps": last["step"], "nll": last["nll"], "seconds": last["seconds"],
               "sequence_steps_per_second": last["step"] * p.batch_size * p.seq_len / last["seconds"]},
              run.results / "mdnrnn.json")
    return model, history


def load_mdnrnn(run: Run) -> MDNRNN:
    ckpt = load_torch(run.data / "mdnrnn.pt")
    model = MDNRNN(ckpt["z_size"], CARRACING_ACTION_SIZE, ckpt["hidden"], ckpt["mixtures"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


# 4. C: the controller, trained with CMA-ES in the real environment ---------------------------

def make_controller(variant: str, z_size: int, hidden: int) -> LinearController:
    """full: C sees [z, h] (867 parameters at the paper's sizes); z_only: C sees z (99)."""
    if variant not in ("full", "z_only"):
        raise ValueError(f"controller variant must be 'full' or 'z_only', got {variant!r}")
    return LinearController(z_size + (hidden if variant == "full" else 0), CARRACING_ACTION_SIZE)


def _agent_weights(run: Run, variant: str) -> dict:
    """What a worker needs to build the agent (plain tensors, cheap to ship to Ray)."""
    shared = {"variant": variant, "vae": load_torch(run.data / "vae.pt")}
    if variant == "full":
        shared["mdnrnn"] = load_torch(run.data / "mdnrnn.pt")
    return shared


def build_agent(shared: dict, params) -> WorldModelAgent:
    vae = ConvVAE(shared["vae"]["z_size"])
    vae.load_state_dict(shared["vae"]["model"])
    mdnrnn = None
    if shared["variant"] == "full":
        m = shared["mdnrnn"]
        mdnrnn = MDNRNN(m["z_size"], CARRACING_ACTION_SIZE, m["hidden"], m["mixtures"])
        mdnrnn.load_state_dict(m["model"])
    controller = make_controller(shared["variant"], vae.z_size, mdnrnn.hidden if mdnrnn else 0)
    return WorldModelAgent(vae, controller.set_flat(params), carracing_action, mdnrnn)


_worker_cache = {}


def _controller_episode(shared, item):
    """Worker task: item = (controller params, seed, max_steps, early_stop) -> (return, steps)."""
    params, seed, max_steps, early_stop = item
    key = (id(shared), max_steps)
    if key not in _worker_cache:
        _worker_cache.clear()
        _worker_cache[key] = (build_agent(shared, params), make_carracing(max_steps))
    agent, env = _worker_cache[key]
    agent.controller.set_flat(params)
    ret, steps, _ = run_episode(env, agent, seed, early_stop)
    return ret, steps


def train_controller(run: Run, variant: str):
    """CMA-ES over C's weights; fitness = mean return over `rollouts` tracks, the same tracks for every
    candidate of a generation. Checkpointed each generation in data/<scale>/carracing/controller_<variant>/."""
    p = run.params.controller
    shared = _agent_weights(run, variant)
    dim = make_controller(variant, shared["vae"]["z_size"],
                          shared["mdnrnn"]["hidden"] if variant == "full" else 0).n_params
    out = run.data / f"controller_{variant}"
    with run.pool() as pool:
        def fitness(solutions, g):
            start = time.monotonic()
            seeds = episode_seeds("train", p.rollouts, offset=(g - 1) * p.rollouts)
            items = [(x, s, p.max_steps, p.early_stop) for x in solutions for s in seeds]
            res = pool.map(_controller_episode, items, shared, progress=False)
            returns = np.array([r for r, _ in res]).reshape(len(solutions), p.rollouts)
            return returns.mean(1), {"env_steps": int(sum(s for _, s in res)),
                                     "seconds": time.monotonic() - start}

        def evaluate_mean(mean, g):
            seeds = episode_seeds("train", p.eval_episodes, offset=5 * 10**8 + g * p.eval_episodes)
            res = pool.map(_controller_episode, [(mean, s, p.max_steps, 0) for s in seeds], shared, progress=False)
            returns = [r for r, _ in res]
            return {"mean": float(np.mean(returns)), "std": float(np.std(returns)),
                    "env_steps": int(sum(s for _, s in res))}

        cma_run = run_cmaes(fitness, dim, popsize=p.popsize, sigma0=p.sigma0, generations=p.generations,
                            checkpoint=out / "cmaes.pkl", seed=run.params.seed, evaluate=evaluate_mean,
                            eval_every=p.eval_every,
                            config={"variant": variant, "rollouts": p.rollouts, "max_steps": p.max_steps,
                                    "early_stop": p.early_stop, "weights": _digest(shared)})
    save_torch({"variant": variant, "params": cma_run.best_params}, out / "controller.pt")
    history = pd.DataFrame(cma_run.history)
    history.to_csv(run.results / f"cmaes_{variant}.csv", index=False)
    evals = pd.DataFrame(cma_run.evaluations)
    evals.to_csv(run.results / f"cmaes_{variant}_evaluations.csv", index=False)
    save_json({"variant": variant, "parameters": dim, "generations": len(history),
               "episodes": len(history) * p.popsize * p.rollouts + len(evals) * p.eval_episodes,
               "env_steps": int(history.env_steps.sum() + evals.env_steps.sum()),
               "seconds": float(history.seconds.sum()), "workers": run.params.parallel.workers,
               "best_evaluation": float(evals["mean"].max())}, run.results / f"controller_{variant}.json")
    return cma_run


def load_controller_params(run: Run, variant: str) -> np.ndarray:
    return load_torch(run.data / f"controller_{variant}" / "controller.pt")["params"]


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


# 5. Evaluation on new tracks -----------------------------------------------------------------

def _random_episode(shared, seed):
    env = make_carracing(shared["max_steps"])
    ret, steps, _ = run_episode(env, _uniform(env, seed), seed)
    env.close()
    return ret, steps


def _agent_episode(shared, seed):
    params, max_steps = shared["params"], shared["max_steps"]
    return _controller_episode(shared, (params, seed, max_steps, 0))


def evaluate_methods(run: Run) -> dict[str, EvalResult]:
    """Every method on the same `evaluation.episodes` new tracks; per-episode returns saved."""
    p = run.params.evaluation
    results = {}
    with run.pool() as pool:
        for method in METHODS:
            if method == "random":
                shared, fn = {"max_steps": p.max_steps}, _random_episode
            else:
                shared = {**_agent_weights(run, method), "params": load_controller_params(run, method),
                          "max_steps": p.max_steps}
                fn = _agent_episode
            results[method] = evaluate(pool, fn, shared, method, p.episodes)
            results[method].save(run.results / f"eval_{method}.json")
    return results


def record_agent(run: Run, variant: str = "full") -> np.ndarray:
    """Frames (T, 64, 64, 3) of the trained agent on the first evaluation track."""
    shared = _agent_weights(run, variant)
    agent = build_agent(shared, load_controller_params(run, variant))
    env = make_carracing(run.params.evaluation.gif_steps)
    _, _, frames = run_episode(env, agent, episode_seeds("eval", 1)[0], record=True)
    return frames


def summary_rows(run: Run, results: dict[str, EvalResult]) -> pd.DataFrame:
    """One row per method for results/summary.csv; env_steps = real env steps used to train it."""
    rollout_steps = load_json(run.results / "rollouts.json")["frames"]
    rows = []
    for method, (label, paper_mean, paper_std) in METHODS.items():
        train_steps = 0 if method == "random" else \
            rollout_steps + load_json(run.results / f"controller_{method}.json")["env_steps"]
        r = results[method]
        rows.append({"experiment": EXPERIMENT, "method": label, "metric": f"return over {len(r.returns)} new tracks",
                     "mean": round(r.mean, 1), "std": round(r.std, 1), "n": len(r.returns),
                     "env_steps": train_steps, "paper_mean": paper_mean, "paper_std": paper_std,
                     "scale": run.scale})
    df = pd.DataFrame(rows)
    df.to_csv(run.results / "summary.csv", index=False)
    return df


def compute_used(run: Run) -> dict:
    """Core-hours per stage, from the times each stage recorded."""
    w = run.params.parallel.workers
    threads = torch.get_num_threads()
    hours = {
        "rollouts": load_json(run.results / "rollouts.json")["core_seconds"] / 3600,
        "vae": load_json(run.results / "vae.json")["seconds"] * threads / 3600,
        "mdnrnn": load_json(run.results / "mdnrnn.json")["seconds"] * threads / 3600,
        **{f"cmaes_{v}": load_json(run.results / f"controller_{v}.json")["seconds"] * w / 3600
           for v in ("full", "z_only")},
    }
    save_json({"core_hours": hours, "total_core_hours": sum(hours.values())}, run.results / "compute.json")
    return hours
