"""Step 1: seeded random episodes, collected in parallel, resumable episode by episode."""
import time

import numpy as np

from ...data.rollouts import RolloutStore, collect_episode
from ...envs.carracing import BrownianPolicy, make_carracing
from ...envs.seeds import episode_seeds
from ...io import save_json
from . import Run


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
               "core_seconds": float(sum(e["seconds"] for e in entries)),  # this run's: a resumed episode counts 0
               "episodes_resumed": sum(e["resumed"] for e in entries)}, run.results / "rollouts.json")
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
        entry.update(seconds=time.process_time() - start, resumed=False)
    else:
        entry.update(seconds=0.0, resumed=True)  # collected by an earlier, interrupted run
    return entry


def _uniform(env, seed):
    env.action_space.seed(seed)
    return lambda obs: env.action_space.sample()
