"""What the release players of the MuJoCo learners (wmlib.release.mujoco) and PETS (wmlib.release.pets) share:
episodes of an agent on a control task (wmlib.envs.mujoco_tasks), each seeded by its own seed, and a rendered video
of one; and which seed of their runs is released."""
import numpy as np
import torch

from ..envs.mujoco_tasks import make_env
from ..evaluation import EvalResult, run_episode


def released_seed(p) -> int:
    """The one seed per task whose runs are released (MujocoParams or PETSParams): the first of `seeds`; the other
    seeds' checkpoints stay in the DVC cache (the 60 MB budget: wmlib.release.budget)."""
    return p.seeds[0]


class ControlPlayer:
    """A subclass sets p (parameters with tasks[task].action_repeat and evaluation.max_frames), learner, task,
    policy (obs -> action), reset (called after each env reset, or None) and, if the agent acts on pixels, pixels."""
    pixels = False

    def seed_episode(self, seed: int):
        """Seed what the agent draws from in an episode: torch's global generator (TD-MPC's planner)."""
        torch.manual_seed(seed)

    def _env(self, pixels: bool = False):
        return make_env(self.task, self.p.tasks[self.task].action_repeat, self.p.evaluation.max_frames,
                        pixels or self.pixels)

    def evaluate(self, seeds: list[int]) -> EvalResult:
        env, res = self._env(), []
        for seed in seeds:
            self.seed_episode(seed)
            res.append(run_episode(env, self.policy, seed, reset=self.reset)[:2])
        env.close()
        return EvalResult(f"{self.learner}/{self.task}", list(seeds), [float(r) for r, _ in res],
                          [int(n) for _, n in res])

    def record(self, seed: int, max_steps: int | None = None) -> np.ndarray:
        """Rendered 64x64 frames of one episode: a pixel env stepped in lockstep with the agent's env (same seed,
        same actions), as the state-vector agents never see pixels."""
        env, screen = self._env(), self._env(pixels=True)
        self.seed_episode(seed)
        obs, _ = env.reset(seed=seed)
        frames, done = [screen.reset(seed=seed)[0]], False
        if self.reset is not None:
            self.reset()
        while not done and (max_steps is None or len(frames) < max_steps):
            action = self.policy(obs)
            obs, _, terminated, truncated, _ = env.step(action)
            frames.append(screen.step(action)[0])
            done = terminated or truncated
        env.close(), screen.close()
        return np.stack(frames)
