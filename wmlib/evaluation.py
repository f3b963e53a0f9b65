"""The evaluation harness of every learner: episodes on seeds disjoint from training, per-episode returns kept.

    run_episode(env, policy, seed)            one episode -> (return, steps, frames or None)
    run_episodes(env, policy, seeds, method)  one env, several seeds -> EvalResult
    evaluate(pool, episode_fn, shared, ...)   World Models' evaluation seeds, in parallel -> EvalResult
"""
from dataclasses import asdict, dataclass

import numpy as np

from .envs.seeds import episode_seeds
from .io import load_json, save_json


@dataclass
class EvalResult:
    method: str
    seeds: list[int]
    returns: list[float]
    steps: list[int]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def save(self, path):
        save_json({**asdict(self), "mean": self.mean, "std": self.std, "n": len(self.returns)}, path)

    @classmethod
    def load(cls, path) -> "EvalResult":
        d = load_json(path)
        return cls(d["method"], d["seeds"], d["returns"], d["steps"])


def summarise(returns) -> dict:
    """{mean, std, n, returns} of a list of episode returns: the fields every result file carries."""
    r = np.asarray(returns, dtype=float)
    return {"mean": float(r.mean()), "std": float(r.std()), "n": int(len(r)), "returns": r.tolist()}


def run_episode(env, policy, seed: int, early_stop: int = 0, record: bool = False, reset=None):
    """One episode of `policy` (obs -> action); returns (return, steps, frames or None).

    `reset()` (default: `policy.reset`, if it has one) is called after the env's reset. early_stop > 0 ends
    the episode after that many consecutive steps without positive reward (a training-time shortcut for
    hopeless CMA-ES candidates; evaluation always runs to the end). `record` keeps every observation acted on.
    """
    obs, _ = env.reset(seed=seed)
    reset = reset if reset is not None else getattr(policy, "reset", None)
    if reset is not None:
        reset()
    total, steps, since_reward, frames = 0.0, 0, 0, [] if record else None
    done = False
    while not done:
        if record:
            frames.append(obs)
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total, steps = total + float(reward), steps + 1
        since_reward = 0 if reward > 0 else since_reward + 1
        done = _episode_over(terminated, truncated, since_reward, early_stop)
    return total, steps, (np.stack(frames) if record else None)


def _episode_over(terminated: bool, truncated: bool, since_reward: int, early_stop: int) -> bool:
    """The env ended the episode, or (early_stop > 0) it went `early_stop` steps without positive reward."""
    return terminated or truncated or (early_stop > 0 and since_reward >= early_stop)


def run_batch(envs, agent, params, seeds: list[int], early_stop: int = 0) -> list[tuple[float, int]]:
    """len(seeds) episodes at once, one per env, of a batched agent (`agent.reset(params, seeds)`, then
    `agent(obs (k, ...), rows) -> actions (k, ...)` for the k episodes still running); `early_stop` as in
    `run_episode`. Returns (return, steps) per episode."""
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds)]
    agent.reset(params, seeds)
    totals, steps, since_reward = [0.0] * len(seeds), [0] * len(seeds), [0] * len(seeds)
    running = list(range(len(seeds)))
    while running:
        actions = agent(np.stack([obs[i] for i in running]), running)
        still = []
        for i, action in zip(running, actions):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            totals[i], steps[i] = totals[i] + float(reward), steps[i] + 1
            since_reward[i] = 0 if reward > 0 else since_reward[i] + 1
            if not _episode_over(terminated, truncated, since_reward[i], early_stop):
                still.append(i)
        running = still
    return list(zip(totals, steps))


def run_episodes(env, policy, seeds: list[int], method: str = "", reset=None) -> EvalResult:
    """One episode per seed on one env, in order (see `run_episode`)."""
    results = [run_episode(env, policy, s, reset=reset)[:2] for s in seeds]
    return EvalResult(method, list(seeds), [r for r, _ in results], [n for _, n in results])


def evaluate(pool, episode_fn, shared, method: str, episodes: int, desc: str | None = None) -> EvalResult:
    """Run `episode_fn(shared, seed) -> (return, steps)` on the first `episodes` evaluation seeds."""
    seeds = episode_seeds("eval", episodes)
    results = pool.map(episode_fn, seeds, shared, desc=desc or f"evaluate {method}")
    return EvalResult(method, seeds, [float(r) for r, _ in results], [int(s) for _, s in results])
