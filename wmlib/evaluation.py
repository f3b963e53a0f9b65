"""Evaluation harness: N episodes on seeds disjoint from training, per-episode returns kept."""
from dataclasses import asdict, dataclass

import numpy as np

from .envs import episode_seeds
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


def evaluate(pool, episode_fn, shared, method: str, episodes: int, desc: str | None = None) -> EvalResult:
    """Run `episode_fn(shared, seed) -> (return, steps)` on the first `episodes` evaluation seeds."""
    seeds = episode_seeds("eval", episodes)
    results = pool.map(episode_fn, seeds, shared, desc=desc or f"evaluate {method}")
    return EvalResult(method, seeds, [float(r) for r, _ in results], [int(s) for _, s in results])
