"""CarRacing preprocessing, action mapping and seed ranges."""
import cv2
import gymnasium as gym
import numpy as np
import pytest

from wmlib.envs.carracing import carracing_action, make_carracing
from wmlib.envs.seeds import SEED_RANGES, episode_seeds


def test_observation_is_the_cropped_resized_frame():
    env, raw = make_carracing(max_steps=20), gym.make("CarRacing-v3", continuous=True, domain_randomize=False)
    obs, _ = env.reset(seed=5)
    ref, _ = raw.reset(seed=5)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    np.testing.assert_array_equal(obs, cv2.resize(ref[:84], (64, 64), interpolation=cv2.INTER_AREA))
    for _ in range(20):
        *_, terminated, truncated, _ = env.step(np.array([0.0, 0.5, 0.0], np.float32))
    assert truncated  # max_steps is honoured


def test_controller_output_maps_to_steer_gas_brake():
    np.testing.assert_allclose(carracing_action(np.array([-0.5, -1.0, -0.3])), [-0.5, 0.0, 0.0])
    np.testing.assert_allclose(carracing_action(np.array([0.2, 1.0, 0.7])), [0.2, 1.0, 0.7])


def test_seed_ranges_are_disjoint():
    ranges = sorted(SEED_RANGES.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
    assert episode_seeds("eval", 3) == [10**9, 10**9 + 1, 10**9 + 2]
    assert set(episode_seeds("rollouts", 100)).isdisjoint(episode_seeds("train", 100))
    with pytest.raises(ValueError, match="purpose"):
        episode_seeds("test", 1)
    with pytest.raises(ValueError, match="overflow"):
        episode_seeds("rollouts", 10, offset=10**6)
