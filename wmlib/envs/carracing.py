"""CarRacing-v3 with the paper's preprocessing: drop the dashboard (rows 84..95), resize to 64x64."""
import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box
from gymnasium.wrappers import ResizeObservation, TransformObservation

CARRACING_ACTION_SIZE = 3


def make_carracing(max_steps: int = 1000, render_mode: str | None = None) -> gym.Env:
    """CarRacing-v3 (continuous, fixed colours) whose observations are uint8 (64, 64, 3) frames."""
    env = gym.make("CarRacing-v3", continuous=True, domain_randomize=False,
                   max_episode_steps=max_steps, render_mode=render_mode)
    env = TransformObservation(env, lambda obs: obs[:84], Box(0, 255, (84, 96, 3), np.uint8))
    return ResizeObservation(env, (64, 64))


def carracing_action(a: np.ndarray) -> np.ndarray:
    """Controller output in [-1, 1]^3 -> env action: steer = a0, gas = (a1 + 1) / 2, brake = clip(a2, 0, 1)."""
    return np.array([a[0], (a[1] + 1) / 2, np.clip(a[2], 0, 1)], dtype=np.float32)


class BrownianPolicy:
    """Random data-collection policy: a clipped Brownian walk on the action (dt = 1/50), which
    explores the track far better than independent uniform actions."""

    def __init__(self, action_space: Box, rng: np.random.Generator, dt: float = 1 / 50):
        self.space, self.rng, self.dt = action_space, rng, dt
        self.action = rng.uniform(action_space.low, action_space.high).astype(np.float32)

    def __call__(self, obs) -> np.ndarray:
        step = np.sqrt(self.dt) * self.rng.standard_normal(self.space.shape)
        self.action = np.clip(self.action + step, self.space.low, self.space.high).astype(np.float32)
        return self.action
