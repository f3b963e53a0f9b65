"""CarRacing preprocessing, action mapping and seed ranges."""
import cv2
import gymnasium as gym
import numpy as np
import pytest

from wmlib.envs.carracing import TrackFollower, carracing_action, first_difference, make_carracing, rotate_like_pygame
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


def sweep(env, t):  # steering sweeps, bursts of gas, braking
    return np.array([np.sin(t / 20), 0.5 + 0.5 * np.sin(t / 50), 0.3 * max(0.0, np.sin(t / 70))], np.float32)


def off_the_field(env, t):  # straight on: off the track, then out of the playfield (-100, terminated)
    return np.array([0.0, 0.3, 0.0], np.float32)


@pytest.mark.parametrize("seed, policy, max_steps, ends", [
    (0, sweep, 400, "truncated"),
    (1, off_the_field, 1000, "left the playfield"),
    (2, TrackFollower(), 1500, "lap finished")])
def test_fast_carracing_is_gymnasiums_bit_for_bit(seed, policy, max_steps, ends):
    """Whole episodes of FastCarRacing and gymnasium's CarRacing-v3: every observation, reward, termination and
    truncation equal, through the zoom-in, off-track driving, leaving the playfield and finishing a lap."""
    differs, steps, info = first_difference(seed, policy, max_steps)
    assert differs is None, f"step {differs} differs"
    assert {"truncated": steps == max_steps and not info,
            "left the playfield": info.get("lap_finished") is False,
            "lap finished": info.get("lap_finished") is True}[ends], (steps, info)


def test_rotation_matches_pygame_to_the_last_bit():
    pygame = pytest.importorskip("pygame")
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 300, 200), rng.normal(0, 300, 200)
    quarter = np.pi / 2
    for angle in [*rng.uniform(-20, 20, 50), 0.0, quarter, -quarter, np.pi, 3 * quarter, quarter + 5e-7,
                  quarter + 2e-6, -1e-7, 2 * np.pi - 1e-7, -7 * quarter]:
        rx, ry = rotate_like_pygame(x, y, angle)
        expected = np.array([tuple(pygame.math.Vector2(a, b).rotate_rad(angle)) for a, b in zip(x, y)])
        np.testing.assert_array_equal(np.stack([rx, ry], -1), expected)
