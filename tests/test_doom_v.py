"""Doom's V step: the subsampled frames V trains on, and a stage killed while encoding, which resumes without
training V again."""
import numpy as np
import pytest
import torch

from wmlib import training
from wmlib.data.rollouts import Episode, RolloutStore
from wmlib.experiments.doom import Run
from wmlib.experiments.doom import world_model as wm
from wmlib.experiments.doom.params import DoomParams
from wmlib.io import load_torch
from wmlib.params import load_params

LENGTHS = (9, 7, 12)


def make_store(root) -> RolloutStore:
    store, rng, meta = RolloutStore(root), np.random.default_rng(0), {"max_steps": 10}
    entries = [store.write(Episode(seed, rng.integers(0, 255, (T, 64, 64, 3), dtype=np.uint8),
                                   rng.integers(0, 3, (T, 1)).astype(np.float32), np.ones(T, np.float32)), meta)
               for seed, T in enumerate(LENGTHS)]
    store.write_index(entries, meta)
    return store


@pytest.mark.parametrize("stride", [1, 3, 4])
def test_strided_frames_are_every_strideth_frame_of_every_episode(tmp_path, stride):
    store = make_store(tmp_path)
    reference = np.concatenate([ep.frames[::stride] for ep in store])
    np.testing.assert_array_equal(wm.strided_frames(store, stride), reference)


def test_v_stage_killed_while_encoding_resumes_without_training_v_again(tmp_path, monkeypatch, interrupt):
    p = load_params(DoomParams, "smoke")
    p = p.model_copy(update={"vae": p.vae.model_copy(update={"batch_size": 4, "frame_stride": 2}), "device": "cpu"})
    run = Run("smoke", p, tmp_path / "data", tmp_path / "results")
    run.results.mkdir(parents=True)
    make_store(run.data / "rollouts")
    vae, _ = wm.train_vae(run)
    interrupt(training, "encode_frames", 2, lambda: wm.encode_rollouts(run, vae))  # dies encoding episode 2
    assert (run.data / "vae.ckpt").exists() and not (run.data / "latents.npz").exists()

    steps, loss = [], training.vae_loss
    monkeypatch.setattr(training, "vae_loss", lambda *a, **k: steps.append(1) or loss(*a, **k))
    again, _ = wm.train_vae(run)  # the stage rerun
    assert steps == []  # V was trained: only loaded from its checkpoint
    for a, b in zip(vae.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    latents = wm.encode_rollouts(run, again)
    assert len(latents["mu"]) == sum(LENGTHS)  # every frame encoded, V trained on every 2nd
    assert load_torch(run.data / "vae.pt")["z_size"] == 64
    assert not (run.data / "vae.ckpt").exists()  # removed once the latents are written
