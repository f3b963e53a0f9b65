"""The V stage CarRacing and Doom share (wmlib.experiments.world_models.train_vae): V byte for byte the one the code
before trained (so a rerun of carracing_vae reproduces its vae.pt and leaves the stages after it current), and a
stage killed while encoding (Doom's V stage, CarRacing's M stage), which resumes without training V again."""
import numpy as np
import pytest

from wmlib import training
from wmlib.data.rollouts import Episode, RolloutStore
from wmlib.experiments import carracing, doom
from wmlib.experiments.carracing.params import CarRacingParams
from wmlib.experiments.carracing.world_model import encode_rollouts as encode_carracing
from wmlib.experiments.doom.params import DoomParams
from wmlib.experiments.doom.world_model import encode_rollouts as encode_doom
from wmlib.experiments.world_models import train_vae
from wmlib.io import load_json, save_torch
from wmlib.params import load_params

LENGTHS = (9, 7, 12)
EXPERIMENTS = {"carracing": (carracing.Run, CarRacingParams, encode_carracing, 3),  # Run, params, encoder, actions
               "doom": (doom.Run, DoomParams, encode_doom, 1)}


def make_run(root, experiment: str, stride: int = 2):
    """A smoke run of `experiment` on the CPU, V on every `stride`-th frame of three stored episodes."""
    Run, Params, _, action_size = EXPERIMENTS[experiment]
    p = load_params(Params, "smoke")
    vae = p.vae.model_copy(update={"batch_size": 4, "frame_stride": stride})
    p = p.model_copy(update={"vae": vae, "device": "cpu"})
    run = Run("smoke", p, root / "data", root / "results")
    run.results.mkdir(parents=True)
    store, rng, meta = RolloutStore(run.data / "rollouts"), np.random.default_rng(0), {"max_steps": 10}
    episodes = [Episode(seed, rng.integers(0, 256, (T, 64, 64, 3), dtype=np.uint8),
                        rng.integers(0, 3, (T, action_size)).astype(np.float32), np.ones(T, np.float32))
                for seed, T in enumerate(LENGTHS)]
    entries = [store.write(ep, meta) for ep in episodes]
    store.write_index(entries, meta)
    return run


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("stride", [1, 4])
def test_v_is_byte_for_byte_the_one_the_code_before_trained(tmp_path, experiment, stride):
    """The code before written out (every episode kept, then concatenated; V trained on that; vae.pt saved):
    the same vae.pt bytes, the same frame count."""
    run = make_run(tmp_path / "run", experiment, stride)
    p = run.params.vae
    frames = np.concatenate([ep.frames[::stride] for ep in RolloutStore(run.data / "rollouts")])
    before, _ = training.train_vae(frames, p, tmp_path / "before/vae.ckpt", run.params.seed, progress=False)
    save_torch({"z_size": p.z_size, "model": before.state_dict()}, tmp_path / "before/vae.pt")
    train_vae(run)
    assert (run.data / "vae.pt").read_bytes() == (tmp_path / "before/vae.pt").read_bytes()
    assert load_json(run.results / "vae.json")["frames"] == len(frames)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_stage_killed_while_encoding_resumes_without_training_v_again(tmp_path, monkeypatch, interrupt, experiment):
    run, encode = make_run(tmp_path, experiment), EXPERIMENTS[experiment][2]
    interrupt(training, "encode_frames", 2, lambda: encode(run, train_vae(run)[0]))  # dies encoding episode 2
    assert (run.data / "vae.ckpt").exists()
    trained = (run.data / "vae.pt").read_bytes()

    steps, loss = [], training.vae_loss
    monkeypatch.setattr(training, "vae_loss", lambda *a, **k: steps.append(1) or loss(*a, **k))
    latents = encode(run, train_vae(run)[0])  # the stage rerun
    assert steps == []  # V was trained: only loaded from its checkpoint
    assert (run.data / "vae.pt").read_bytes() == trained
    encoded = latents["lengths"].sum() if experiment == "carracing" else len(latents["mu"])
    assert encoded == sum(LENGTHS)  # every frame, V trained on every 2nd
    assert not (run.data / "latents.npz").exists()  # in memory only
