"""Step 6: seeded random TakeCover episodes, collected in parallel, resumable episode by episode.

Stored actions are TakeCover action indices (T,); rewards are +1 per frame. Episodes of
`min_length` frames or fewer are kept on disk but left out of the index, as the paper drops them.
"""
import time

import numpy as np

from ...data.rollouts import RolloutStore, collect_episode
from ...envs.seeds import episode_seeds
from ...envs.takecover import HeldRandomPolicy, ResilientEnv, make_takecover
from ...io import save_json
from . import Run


def collect_rollouts(run: Run) -> RolloutStore:
    p = run.params.rollouts
    store = RolloutStore(run.data / "rollouts")
    meta = {"policy": "held_uniform", "hold": list(p.hold), "max_steps": p.max_steps}
    shared = {"root": str(store.root), "meta": meta, "retries": p.retries}
    with run.pool() as pool:
        entries = pool.map(_rollout_task, episode_seeds("rollouts", p.episodes), shared, desc="rollouts")
    kept = [e for e in entries if e["steps"] > p.min_length]
    store.write_index(kept, {**meta, "min_length": p.min_length})
    lengths = np.array([e["steps"] for e in entries])
    save_json({"episodes_collected": len(entries), "episodes": len(kept), "frames": int(sum(e["steps"] for e in kept)),
               "all_frames": int(lengths.sum()), "mean_length_all": float(lengths.mean()),
               "std_length_all": float(lengths.std()), "vizdoom_restarts": int(sum(e["restarts"] for e in entries)),
               "core_seconds": float(sum(e["seconds"] for e in entries)),  # this run's: a resumed episode counts 0
               "episodes_resumed": sum(e["resumed"] for e in entries)}, run.results / "rollouts.json")
    return store


def _rollout_task(shared, seed):
    store, meta = RolloutStore(shared["root"]), shared["meta"]
    entry = store.existing(seed, meta)
    if entry is not None:  # collected by an earlier, interrupted run
        return {**entry, "seconds": 0.0, "restarts": 0, "resumed": True}
    start = time.process_time()
    env = ResilientEnv(lambda: make_takecover(meta["max_steps"]), shared["retries"])

    def episode(e, s):
        return collect_episode(e, HeldRandomPolicy(np.random.default_rng(s), meta["hold"]), s)

    entry = store.write(env.run(episode, seed), meta)
    env.close()
    return {**entry, "seconds": time.process_time() - start, "restarts": env.restarts, "resumed": False}
