"""The control tasks: DeepMind Control through shimmy, and gymnasium's MuJoCo envs, as flat float32 vectors.

A task name is `dmc/<domain>-<task>` (shimmy's `dm_control/<domain>-<task>-v0`) or `gym/<EnvId>`.
Steps are counted in *frames* (environment steps before action repeat) everywhere, as the papers do:
one agent step with action repeat k is k frames, and its reward is the sum of the k rewards.
"""
import os

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AddRenderObservation, FlattenObservation, TimeLimit, TransformObservation

# MuJoCo picks its OpenGL backend when dm_control is first imported: headless software rendering (EGL on
# surfaceless Mesa) for the pixel observations, unless the user chose another.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("EGL_PLATFORM", "surfaceless")

EVAL_SEED = 10_000  # evaluation episodes use seeds EVAL_SEED + i; training episodes use seed * 100_000 + episode


def eval_seeds(n: int) -> list[int]:
    """The seeds of the first n evaluation episodes, shared by every learner."""
    return list(range(EVAL_SEED, EVAL_SEED + n))


class ActionRepeat(gym.Wrapper):
    """Repeat each action `repeat` frames and sum the rewards; stop early when the episode ends."""

    def __init__(self, env, repeat: int):
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {repeat}")
        self.repeat = repeat

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def gym_id(task: str) -> str:
    """'dmc/cartpole-swingup' -> 'dm_control/cartpole-swingup-v0'; 'gym/HalfCheetah-v5' -> 'HalfCheetah-v5'."""
    kind, _, name = task.partition("/")
    if kind == "dmc" and name:
        return f"dm_control/{name}-v0"
    if kind == "gym" and name:
        return name
    raise ValueError(f"task must be 'dmc/<domain>-<task>' or 'gym/<EnvId>', got {task!r}")


def make_env(task: str, action_repeat: int = 1, max_frames: int | None = None, pixels: bool = False,
             size: int = 64) -> gym.Env:
    """The task as a gymnasium env with actions in [-1, 1] and flat float32 observations, or, with `pixels`,
    size x size RGB frames (uint8) rendered once per agent step (headless EGL, chosen above; ~20-45 frames/s
    on this CPU, so pixels are for smoke checks and GPU machines).
    `max_frames` caps an episode (frames, before action repeat); None keeps the task's own limit (1000)."""
    env_id = gym_id(task)
    dmc = env_id.startswith("dm_control/")
    render = {}
    if pixels:
        render = ({"render_kwargs": {"width": size, "height": size, "camera_id": 0}} if dmc
                  else {"width": size, "height": size})
        render["render_mode"] = "rgb_array"
    if dmc:
        import shimmy
        gym.register_envs(shimmy)
    env = gym.make(env_id, **render)
    if not (np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)):
        raise ValueError(f"{task}: expected actions in [-1, 1], got {env.action_space}")
    if max_frames is not None:
        env = TimeLimit(env.unwrapped if dmc else env, max_frames)
    if pixels:
        return AddRenderObservation(ActionRepeat(env, action_repeat), render_only=True)
    env = FlattenObservation(env)
    box = gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32)
    env = TransformObservation(env, lambda o: o.astype(np.float32), box)
    return ActionRepeat(env, action_repeat)
