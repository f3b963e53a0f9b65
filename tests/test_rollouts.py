"""Rollout files: round trip, resume, V's frames, and a clear error naming any corrupt or truncated file."""
import tracemalloc

import numpy as np
import pytest

from wmlib.data.rollouts import CorruptRolloutError, Episode, RolloutStore, collect_episode, load_frames
from wmlib.envs.carracing import BrownianPolicy, make_carracing

META = {"policy": "brownian", "max_steps": 5}


def random_episode(seed, steps=5):
    rng = np.random.default_rng(seed)
    return Episode(seed, rng.integers(0, 256, (steps, 64, 64, 3), dtype=np.uint8),
                   rng.standard_normal((steps, 3)).astype(np.float32), rng.standard_normal(steps).astype(np.float32))


@pytest.fixture
def store(tmp_path):
    store = RolloutStore(tmp_path / "rollouts")
    entries = [store.write(random_episode(s, 5 + s), META) for s in range(3)]
    store.write_index(entries, META)
    return store


def test_round_trip(store):
    assert len(store) == 3
    for s, ep in enumerate(store):
        ref = random_episode(s, 5 + s)
        assert ep.seed == s and len(ep) == 5 + s
        np.testing.assert_array_equal(ep.frames, ref.frames)
        np.testing.assert_array_equal(ep.actions, ref.actions)
        np.testing.assert_array_equal(ep.rewards, ref.rewards)
    assert load_frames(store, stride=2).shape == (3 + 3 + 4, 64, 64, 3)


def store_of(root, lengths) -> RolloutStore:
    store = RolloutStore(root)
    store.write_index([store.write(random_episode(s, T), META) for s, T in enumerate(lengths)], META)
    return store


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 13])
def test_load_frames_are_every_strideth_frame_of_every_episode_in_order(tmp_path, stride):
    """Against the algorithm before (every episode kept, then concatenated): the same frames, order, dtype and
    layout, so V trains on the same bytes (episodes shorter than, and not a multiple of, the stride included)."""
    store = store_of(tmp_path, (9, 7, 12, 2, 1, 8))
    reference = np.concatenate([ep.frames[::stride] for ep in store])
    frames = load_frames(store, stride)
    assert frames.dtype == reference.dtype == np.uint8 and frames.flags.c_contiguous
    np.testing.assert_array_equal(frames, reference)


def test_load_frames_holds_one_episode_at_a_time(tmp_path):
    """Peak memory beyond the result is a few episodes (reading and checking one), not all 16 of them (~20 GB at
    5,000 Doom episodes)."""
    store, episode = store_of(tmp_path, [20] * 16), 20 * 64 * 64 * 3
    tracemalloc.start()
    try:
        frames = load_frames(store)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames.nbytes == 16 * episode and peak - frames.nbytes < 8 * episode


def test_frames_are_stored_compressed(tmp_path):
    store = RolloutStore(tmp_path)
    flat = Episode(0, np.full((100, 64, 64, 3), 7, np.uint8), np.zeros((100, 3), np.float32), np.zeros(100, np.float32))
    store.write(flat, META)
    assert (tmp_path / "ep_0000000.npz").stat().st_size < flat.frames.nbytes / 50


def test_truncated_file_is_named(store):
    path = store.root / store.index[1]["file"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptRolloutError, match=str(path)):
        store[1]
    assert len(store[0]) == 5  # the others still load


def test_flipped_byte_is_named(store):
    path = store.root / store.index[2]["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRolloutError, match=f"{path}: checksum"):
        store[2]


def test_missing_file_is_named(store):
    path = store.root / store.index[0]["file"]
    path.unlink()
    with pytest.raises(CorruptRolloutError, match=f"{path}: listed in index.json but missing"):
        list(store)


def test_existing_episode_is_reused_only_if_intact_and_same_settings(store):
    assert store.existing(1, META)["steps"] == 6
    assert store.existing(1, {**META, "max_steps": 6}) is None
    assert store.existing(99, META) is None
    path = store.root / store.index[1]["file"]
    path.write_bytes(path.read_bytes()[:200])
    assert store.existing(1, META) is None


def test_collect_episode_records_what_the_env_saw():
    env = make_carracing(max_steps=12)
    ep = collect_episode(env, BrownianPolicy(env.action_space, np.random.default_rng(0)), seed=3)
    assert ep.frames.shape == (12, 64, 64, 3) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == (12, 3) and ep.rewards.shape == (12,)
    assert (ep.actions[:, 1:] >= 0).all() and (np.abs(ep.actions) <= 1).all()
    again = collect_episode(env, BrownianPolicy(env.action_space, np.random.default_rng(0)), seed=3)
    np.testing.assert_array_equal(ep.frames, again.frames)  # seeded: reproducible


def test_the_index_is_byte_stable_across_collection_runs(tmp_path):
    """The same episodes collected twice (different timings, a VizDoom restart) give the same index.json bytes, so
    a rerun of a rollouts stage leaves the stages that read it up to date."""
    indexes = []
    for run, (seconds, restarts) in enumerate([(1.5, 0), (2.7, 1)]):
        store = RolloutStore(tmp_path / str(run))
        entries = [{**store.write(random_episode(s), META), "seconds": seconds, "restarts": restarts}
                   for s in range(2)]
        store.write_index(entries, META)
        indexes.append((store.root / "index.json").read_bytes())
        assert [e["seed"] for e in store.index] == [0, 1]
    assert indexes[0] == indexes[1]



def test_a_resumed_collection_says_how_many_episodes_it_did_not_time(tmp_path):
    """CarRacing's step 1 resumes episode by episode; rollouts.json then counts the resumed episodes, whose collection
    time this run did not measure, instead of silently reporting less compute; the index is the same either way."""
    from wmlib.experiments.carracing import Run
    from wmlib.experiments.carracing.params import CarRacingParams
    from wmlib.experiments.carracing.rollouts import collect_rollouts
    from wmlib.io import load_json
    from wmlib.params import load_params

    p = load_params(CarRacingParams, "smoke")
    p = p.model_copy(update={"rollouts": p.rollouts.model_copy(update={"episodes": 2, "max_steps": 5}),
                             "parallel": p.parallel.model_copy(update={"workers": 1})})
    run = Run("smoke", p, tmp_path / "data", tmp_path / "results")
    first = collect_rollouts(run)
    index = (first.root / "index.json").read_bytes()
    (first.root / "ep_0000001.npz").unlink()  # as if interrupted before the second episode
    collect_rollouts(run)
    report = load_json(tmp_path / "results" / "rollouts.json")
    assert report["episodes"] == 2 and report["episodes_resumed"] == 1 and report["core_seconds"] > 0
    assert (first.root / "index.json").read_bytes() == index
