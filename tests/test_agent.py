"""The batched World Models agent: B episodes at once act as B agents alone would, and C's flat parameters mean what
LinearController's mean."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from wmlib.control.agent import WorldModelAgent
from wmlib.control.controller import LinearController
from wmlib.envs.carracing import carracing_action
from wmlib.evaluation import run_batch
from wmlib.models.mdnrnn import MDNRNN
from wmlib.models.vae import ConvVAE, frames_to_tensor


def agent(full: bool = True, sample_z: bool = True) -> WorldModelAgent:
    torch.manual_seed(0)
    return WorldModelAgent(ConvVAE(8), carracing_action, 3, MDNRNN(8, 3, 16, 2) if full else None, sample_z)


@pytest.mark.parametrize("full", [True, False])
def test_a_batch_acts_as_its_episodes_would_alone(full):
    """Episodes of different controllers and seeds, batched, with one leaving early: each episode's actions are the
    ones the agent gives that episode alone, on the same frames (batched matmuls round differently in the last bits,
    hence the tolerance)."""
    rng = np.random.default_rng(0)
    a = agent(full)
    params, seeds = rng.standard_normal((3, a.n_params)) * 0.3, [11, 22, 33]
    frames = rng.integers(0, 256, (12, 3, 64, 64, 3), dtype=np.uint8)
    a.reset(params, seeds)
    batched = [a(frames[t]) for t in range(6)] + [a(frames[t, [0, 2]], [0, 2]) for t in range(6, 12)]
    for i in range(3):
        alone = agent(full)
        alone.reset(params[i], [seeds[i]])
        steps = 12 if i != 1 else 6
        actions = np.concatenate([alone(frames[t, [i]]) for t in range(steps)])
        mine = np.stack([batched[t][i if t < 6 else [0, 2].index(i)] for t in range(steps)])
        np.testing.assert_allclose(actions, mine, atol=1e-5)


def test_flat_parameters_are_linear_controllers():
    """Without z's noise and M, the batched C is LinearController with the same flat vector."""
    a = agent(full=False, sample_z=False)
    c = LinearController(8, 3)
    flat = c.get_flat()
    a.reset(flat, [0])
    frame = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = carracing_action(c(a.vae.encode(frames_to_tensor(frame))[0])[0].numpy())
    np.testing.assert_allclose(a(frame)[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="expected 27 controller parameters, got 5"):
        a.reset(np.zeros(5), [0])


class CountDown(gym.Env):
    """Ends after `seed` steps; reward 1 per step, or 0 after step 2 (for early stopping)."""
    observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    action_space = gym.spaces.Box(-1, 1, (3,), np.float32)

    def reset(self, seed=None, options=None):
        self.left, self.t = seed, 0
        return np.zeros((64, 64, 3), np.uint8), {}

    def step(self, action):
        self.left, self.t = self.left - 1, self.t + 1
        return np.zeros((64, 64, 3), np.uint8), float(self.t <= 2), self.left == 0, False, {}


def test_run_batch_ends_each_episode_on_its_own():
    a = agent()
    assert run_batch([CountDown() for _ in range(3)], a, np.zeros(a.n_params), [5, 2, 9]) == [(2.0, 5), (2.0, 2),
                                                                                              (2.0, 9)]
    assert run_batch([CountDown() for _ in range(2)], a, np.zeros(a.n_params), [5, 9], early_stop=3) == [(2.0, 5),
                                                                                                      (2.0, 5)]
