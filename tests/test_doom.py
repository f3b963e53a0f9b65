"""TakeCover: preprocessing, the random data policy, crash recovery, the episode stream M learns from (and its
encoding, kept once for every M that reads it)."""
import logging
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import torch

from wmlib.data.rollouts import Episode, RolloutStore
from wmlib.envs.takecover import ACTION_TO_MOVE, MOVE_TO_ACTION, HeldRandomPolicy, ResilientEnv, make_takecover
from wmlib.experiments.doom import Run, world_model
from wmlib.experiments.doom.ablation import variant_run
from wmlib.experiments.doom.params import DoomParams
from wmlib.experiments.doom.world_model import LATENTS, encode_rollouts, load_latents
from wmlib.experiments.world_models import load_vae
from wmlib.io import save_torch
from wmlib.models.vae import ConvVAE
from wmlib.params import load_params


def test_observation_is_the_hudless_screen_resized():
    env = make_takecover(max_steps=5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(0)
        steps, done = steps + 1, terminated or truncated
        assert reward == 1.0
    assert steps == 5 and truncated  # the frame cap is a truncation, not a death
    env.close()


def test_moves_and_actions_agree():
    for move, action in MOVE_TO_ACTION.items():
        assert ACTION_TO_MOVE[action] == move


def test_random_policy_holds_each_action_for_1_to_10_frames():
    policy = HeldRandomPolicy(np.random.default_rng(0), (1, 10))
    actions = np.array([policy(None) for _ in range(50_000)])
    np.testing.assert_allclose(np.bincount(actions) / len(actions), [1 / 3] * 3, atol=0.02)  # uniform: thirds
    changes = np.flatnonzero(np.diff(actions)) + 1
    runs = np.diff(np.concatenate([[0], changes, [len(actions)]]))
    # a hold lasts 5.5 frames on average and the next draw repeats the action with probability 1/3,
    # so a run of one action lasts 5.5 / (1 - 1/3) = 8.25 frames on average
    assert runs.mean() == pytest.approx(8.25, rel=0.05)


class Crash(RuntimeError):
    pass


class FlakyEnv:
    """Dies with `Crash` at step 3 of its first `crashes` episodes (shared count across instances)."""
    crashes = 0

    def reset(self, seed=None):
        self.t = 0
        return 0, {}

    def step(self, action):
        self.t += 1
        if self.t == 3 and FlakyEnv.crashes > 0:
            FlakyEnv.crashes -= 1
            raise Crash("vizdoom exited")
        return 0, 1.0, self.t == 5, False, {}

    def close(self):
        pass


def play(env, seed):
    env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        _, r, terminated, truncated, _ = env.step(0)
        total, done = total + r, terminated or truncated
    return total


def test_crashed_episode_is_retried_on_a_new_env_and_logged(caplog):
    FlakyEnv.crashes = 2
    built = []
    env = ResilientEnv(lambda: built.append(FlakyEnv()) or built[-1], retries=3, errors=(Crash,))
    with caplog.at_level(logging.WARNING):
        assert env.run(play, seed=7) == 5.0
    assert env.restarts == 2 and len(built) == 3
    assert caplog.text.count("VizDoom died in the episode with seed 7") == 2


def test_episode_that_keeps_crashing_fails_loudly():
    FlakyEnv.crashes = 10
    env = ResilientEnv(FlakyEnv, retries=2, errors=(Crash,))
    with pytest.raises(RuntimeError, match="died 3 times in the episode with seed 1"):
        env.run(play, seed=1)


def test_episode_stream_marks_restarts_and_deaths(tmp_path):
    """Episodes laid end to end: restart = 1 on each first frame, done = 1 on a death, not on the cap."""
    run = Run("smoke", load_params(DoomParams, "smoke"), tmp_path, tmp_path)
    store = RolloutStore(tmp_path / "rollouts")
    rng = np.random.default_rng(0)
    lengths, entries, meta = (4, 6, 3), [], {"max_steps": 6}
    for seed, T in enumerate(lengths):
        ep = Episode(seed, rng.integers(0, 256, (T, 64, 64, 3), dtype=np.uint8),
                     rng.integers(0, 3, T).astype(np.float32), np.ones(T, np.float32))
        entries.append(store.write(ep, meta))
    store.write_index(entries, meta)
    out = encode_rollouts(run, ConvVAE(64).eval())
    assert out["mu"].shape == (13, 64)
    assert out["restart"].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0]
    assert out["done"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]  # the 6-frame one hit the cap
    actions = np.concatenate([store[i].actions for i in range(3)]).astype(int)
    np.testing.assert_array_equal(out["move"], ACTION_TO_MOVE[actions])
    np.testing.assert_array_equal(out["action"], out["move"])  # no replayable policy: the move stands in


def test_stream_holds_the_continuous_actions_of_the_random_policy(tmp_path):
    """The rollouts store TakeCover actions; the continuous actions the random policy quantised (the authors'
    M input) are replayed from each episode's seed, equal to those drawn while collecting."""
    run = Run("smoke", load_params(DoomParams, "smoke"), tmp_path, tmp_path)
    store = RolloutStore(tmp_path / "rollouts")
    meta, entries, drawn = {"policy": "held_uniform", "hold": [1, 10], "max_steps": 50}, [], []
    for seed, T in ((11, 30), (12, 50)):
        policy = HeldRandomPolicy(np.random.default_rng(seed), meta["hold"])
        actions = []
        for _ in range(T):
            actions.append(policy(None))
            drawn.append(policy.value)
        ep = Episode(seed, np.zeros((T, 64, 64, 3), np.uint8), np.array(actions, np.float32), np.ones(T, np.float32))
        entries.append(store.write(ep, meta))
    store.write_index(entries, meta)
    out = encode_rollouts(run, ConvVAE(64).eval())
    np.testing.assert_allclose(out["action"], drawn, rtol=0, atol=1e-7)
    assert len(np.unique(out["action"])) > 6 and np.abs(out["action"]).max() <= 1
    np.testing.assert_array_equal(out["move"], (out["action"] > 1 / 3).astype(float) - (out["action"] < -1 / 3))


def small_run(tmp_path, seed: int = 0) -> Run:
    """A run with three short episodes of random frames and a random V (vae.pt)."""
    run = Run("smoke", load_params(DoomParams, "smoke"), tmp_path, tmp_path)
    store, rng, entries, meta = RolloutStore(tmp_path / "rollouts"), np.random.default_rng(0), [], {"max_steps": 9}
    for ep_seed, T in enumerate((5, 9, 7)):
        ep = Episode(ep_seed, rng.integers(0, 256, (T, 64, 64, 3), dtype=np.uint8),
                     rng.integers(0, 3, T).astype(np.float32), np.ones(T, np.float32))
        entries.append(store.write(ep, meta))
    store.write_index(entries, meta)
    write_vae(run, seed)
    return run


def write_vae(run: Run, seed: int):
    torch.manual_seed(seed)
    save_torch({"z_size": 64, "model": ConvVAE(64).state_dict()}, run.data / "vae.pt")


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        assert a[k].dtype == b[k].dtype, k


def test_latents_are_encoded_once_then_read_back_unchanged(tmp_path, monkeypatch):
    run = small_run(tmp_path)
    expected = encode_rollouts(run, load_vae(run))
    assert_same(load_latents(run), expected)
    assert (tmp_path / LATENTS).exists()

    def no_encoding(*args):
        raise AssertionError("encoded again")
    monkeypatch.setattr(world_model, "encode_rollouts", no_encoding)
    assert_same(load_latents(run), expected)  # read back from latents.npz


def test_latents_of_another_v_or_other_rollouts_are_encoded_again(tmp_path):
    run = small_run(tmp_path)
    first = load_latents(run)
    write_vae(run, seed=1)  # a retrained V
    second = load_latents(run)
    assert not np.array_equal(first["mu"], second["mu"])
    assert_same(second, encode_rollouts(run, load_vae(run)))
    digest, store = world_model.encoding_digest(run), RolloutStore(tmp_path / "rollouts")
    episodes = list(store)
    episodes[0].frames[:] = 255 - episodes[0].frames  # one episode's frames changed, and the index with them
    store.write_index([store.write(ep, {"max_steps": 9}) for ep in episodes], {"max_steps": 9})
    assert world_model.encoding_digest(run) != digest
    assert_same(load_latents(run), encode_rollouts(run, load_vae(run)))


def test_latents_of_an_older_wmlib_without_a_digest_are_encoded_again(tmp_path):
    run = small_run(tmp_path)
    np.savez(tmp_path / LATENTS, mu=np.zeros((21, 64), np.float32))
    assert_same(load_latents(run), encode_rollouts(run, load_vae(run)))


def test_ablation_variants_share_the_main_runs_latents(tmp_path):
    run = small_run(tmp_path)
    load_latents(run)
    vrun = variant_run(Run("default", load_params(DoomParams, "default"), tmp_path, tmp_path), "stream")
    assert_same(load_latents(vrun), load_latents(run))
    assert not (vrun.data / LATENTS).exists() and (tmp_path / LATENTS).exists()


GAME_THEN = """
import os, signal, sys, time
from wmlib.envs.takecover import make_takecover
env = make_takecover(50)
env.reset(seed=0)
print("started", flush=True)
how = sys.argv[1]
if how == "error":
    raise RuntimeError("a stage fails")
if how in ("SIGTERM", "SIGKILL"):
    os.kill(os.getpid(), getattr(signal, how))
"""


def vizdoom_processes() -> set[int]:
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "vizdoom"}


@pytest.mark.parametrize("how", ["exit", "error", "SIGTERM", "SIGKILL"])
def test_no_vizdoom_process_outlives_its_owner(how):
    """However the process that started a game ends, its vizdoom process ends too (it ignores SIGTERM)."""
    before = vizdoom_processes()
    out = subprocess.run([sys.executable, "-c", GAME_THEN, how], capture_output=True, text=True, timeout=60)
    assert "started" in out.stdout, out.stderr
    deadline = time.monotonic() + 10
    while vizdoom_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert vizdoom_processes() - before == set()


def test_a_policy_that_does_not_replay_is_named():
    from wmlib.experiments.doom.world_model import held_actions
    with pytest.raises(ValueError, match="episode 11"):
        held_actions(11, [1, 10], np.full(40, 7.0, np.float32))


def test_interrupted_collection_resumes_episode_by_episode(tmp_path, interrupt):
    """Step 6 killed after some episodes: the rerun keeps the episodes on disk (not collected again) and ends
    with the same index as an uninterrupted collection."""
    from wmlib.experiments.doom import rollouts
    from wmlib.io import load_json
    p = load_params(DoomParams, "smoke")
    p = p.model_copy(update={"rollouts": p.rollouts.model_copy(update={"episodes": 3, "max_steps": 30,
                                                                       "min_length": 0}),
                             "parallel": p.parallel.model_copy(update={"workers": 1})})
    ref = rollouts.collect_rollouts(Run("smoke", p, tmp_path / "ref", tmp_path / "ref"))
    run = Run("smoke", p, tmp_path / "run", tmp_path / "run")
    interrupt(rollouts, "_rollout_task", 3, lambda: rollouts.collect_rollouts(run))  # dies at the third episode
    store = rollouts.collect_rollouts(run)
    assert load_json(run.results / "rollouts.json")["episodes_resumed"] == 2
    assert (store.root / "index.json").read_bytes() == (ref.root / "index.json").read_bytes()
