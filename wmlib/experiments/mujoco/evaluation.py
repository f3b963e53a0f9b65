"""Scoring a policy on a task: mean and spread of episode returns over fixed seeds."""
import numpy as np

from .env import make_env

EVAL_SEED = 10_000  # evaluation episodes use seeds EVAL_SEED + i, never seen in training


def run_episodes(env, policy, episodes: int, seed: int = EVAL_SEED, reset=None) -> list[float]:
    """Returns of `episodes` episodes of `policy` (obs -> action); `reset()` is called before each."""
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        if reset is not None:
            reset()
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return returns


def random_returns(task: str, action_repeat: int, episodes: int, max_frames: int | None = None) -> list[float]:
    """The uniform random policy's returns: the floor every learner must clear."""
    env = make_env(task, action_repeat, max_frames)
    env.action_space.seed(EVAL_SEED)
    return run_episodes(env, lambda _: env.action_space.sample(), episodes)


def summarise(returns) -> dict:
    r = np.asarray(returns, dtype=float)
    return {"mean": float(r.mean()), "std": float(r.std()), "n": int(len(r)), "returns": r.tolist()}
