"""VizDoom TakeCover with the paper's preprocessing, and episodes that survive a VizDoom crash.

Observation: the screen without the HUD (rows 0..199 of 240), resized to uint8 (64, 64, 3).
Actions: Discrete(3), 0 stay, 1 right, 2 left; M and C work with the move -1 (left), 0, +1 (right).
Reward +1 per frame survived; episodes are capped at `max_steps` frames (2100 in the paper).
"""
import logging
import subprocess
import sys

import gymnasium as gym
import numpy as np
import psutil
from gymnasium.spaces import Box
from gymnasium.wrappers import ResizeObservation, TransformObservation

log = logging.getLogger(__name__)

ENV_ID = "VizdoomTakeCover-v1"
MOVE_TO_ACTION = {0: 0, 1: 1, -1: 2}   # move -> TakeCover action
ACTION_TO_MOVE = np.array([0.0, 1.0, -1.0], np.float32)


def make_takecover(max_steps: int = 2100) -> gym.Env:
    """TakeCover whose observations are uint8 (64, 64, 3) frames, truncated after max_steps frames."""
    from vizdoom import gymnasium_wrapper  # noqa: F401  (registers the Vizdoom* environments)
    env = gym.make(ENV_ID, max_episode_steps=max_steps)
    env = TransformObservation(env, lambda obs: obs["screen"][:200], Box(0, 255, (200, 320, 3), np.uint8))
    return EndsWithThisProcess(ResizeObservation(env, (64, 64)))


_WATCHDOG = """
import os, signal, sys, time
parent, game = map(int, sys.argv[1:])
while os.getppid() == parent:
    time.sleep(0.5)
    try:
        os.kill(game, 0)
    except ProcessLookupError:  # the game was closed
        sys.exit()
os.kill(game, signal.SIGKILL)
"""
_watched: set[int] = set()


class EndsWithThisProcess(gym.Wrapper):
    """The game runs in a vizdoom process that `reset` starts; it ignores SIGTERM and, unless closed, outlives
    this process (a notebook kernel, a worker) by as long as the machine runs. For each one, a small watchdog
    process SIGKILLs it as soon as this process is gone, however it ended (exit, error, SIGTERM, SIGKILL)."""

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        for child in psutil.Process().children():
            if child.pid not in _watched and child.name() == "vizdoom":
                _watched.add(child.pid)
                subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(psutil.Process().pid), str(child.pid)],
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        return out


def vizdoom_errors() -> tuple[type[Exception], ...]:
    """The exceptions a dying VizDoom process raises."""
    import vizdoom
    return (vizdoom.ViZDoomUnexpectedExitException, vizdoom.ViZDoomIsNotRunningException,
            vizdoom.ViZDoomErrorException)


class HeldRandomPolicy:
    """The paper's data-collection policy: a uniform action in [-1, 1], held for hold[0]..hold[1] frames.
    Returns the TakeCover action; `value` is the continuous action it was quantised from (the authors feed
    that one to M)."""

    def __init__(self, rng: np.random.Generator, hold=(1, 10)):
        self.rng, self.hold, self.left, self.action, self.value = rng, hold, 0, 0, 0.0

    def __call__(self, obs) -> int:
        if self.left == 0:
            self.value = a = self.rng.uniform(-1, 1)
            self.action = MOVE_TO_ACTION[int(a > 1 / 3) - int(a < -1 / 3)]
            self.left = int(self.rng.integers(self.hold[0], self.hold[1] + 1))
        self.left -= 1
        return self.action


class ResilientEnv:
    """An env that is rebuilt when its process dies: `run(episode_fn, seed)` retries the whole episode
    up to `retries` times, logging each failure, and counts the restarts in `self.restarts`."""

    def __init__(self, make_env, retries: int = 3, errors: tuple[type[Exception], ...] | None = None):
        self.make_env, self.retries, self.restarts = make_env, retries, 0
        self.errors = errors if errors is not None else vizdoom_errors()
        self.env = make_env()

    def run(self, episode_fn, seed: int):
        """episode_fn(env, seed) -> result, on a fresh env after each crash."""
        for attempt in range(self.retries + 1):
            try:
                return episode_fn(self.env, seed)
            except self.errors as e:
                log.warning("VizDoom died in the episode with seed %d (attempt %d of %d): %r; restarting it",
                            seed, attempt + 1, self.retries + 1, e)
                self.restarts += 1
                try:
                    self.env.close()
                except Exception:  # the process is already gone
                    pass
                self.env = self.make_env()
        raise RuntimeError(f"VizDoom died {self.retries + 1} times in the episode with seed {seed}; "
                           f"raise rollouts.retries or check the VizDoom install")

    def close(self):
        self.env.close()
