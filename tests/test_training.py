"""V and M training: they learn, they checkpoint, and they resume instead of starting over."""
import numpy as np
import pytest
import torch

from wmlib import training
from wmlib.models.vae import ConvVAE, frames_to_tensor
from wmlib.params import MDNRNNParams, VAEParams

VAE = VAEParams(z_size=8, epochs=2, batch_size=8, lr=1e-3, kl_tolerance=0.5, frame_stride=1)
MDN = MDNRNNParams(hidden=16, mixtures=3, seq_len=6, batch_size=4, lr=1e-2, grad_clip=1.0, steps=40)


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (32, 64, 64, 3), dtype=np.uint8)


def test_vae_reconstruction_error_falls(tmp_path):
    frames = np.random.default_rng(0).integers(0, 40, (32, 64, 64, 3), dtype=np.uint8)  # dark noise
    x = frames_to_tensor(torch.from_numpy(frames))

    def error(vae):
        with torch.no_grad():
            return ((vae.decode(vae.encode(x)[0]) - x) ** 2).mean().item()

    torch.manual_seed(0)  # train_vae's own initialisation
    untrained = ConvVAE(VAE.z_size)
    vae, _ = training.train_vae(frames, VAE, tmp_path / "vae.ckpt", seed=0, progress=False)
    assert error(vae) < 0.5 * error(untrained)


def test_a_finished_vae_run_loads_its_checkpoint_without_training(tmp_path, frames, monkeypatch):
    monkeypatch.setattr(training, "CHECKPOINT_SECONDS", 0)
    vae, history = training.train_vae(frames, VAE, tmp_path / "vae.ckpt", seed=0, progress=False)
    assert history[-1]["step"] == 2 * len(frames) // VAE.batch_size
    steps, loss = [], training.vae_loss
    monkeypatch.setattr(training, "vae_loss", lambda *a: steps.append(1) or loss(*a))
    again, history2 = training.train_vae(frames, VAE, tmp_path / "vae.ckpt", seed=0, progress=False)
    assert steps == [] and history2 == history
    for a, b in zip(vae.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_vae_resumes_mid_run_from_its_checkpoint(tmp_path, frames, monkeypatch):
    monkeypatch.setattr(training, "CHECKPOINT_SECONDS", 0)
    one_epoch = VAE.model_copy(update={"epochs": 1})
    training.train_vae(frames, one_epoch, tmp_path / "a.ckpt", seed=0, progress=False)
    ckpt = torch.load(tmp_path / "a.ckpt", weights_only=False)
    ckpt["config"]["epochs"] = 2  # pretend the 2-epoch run was killed after epoch 1
    torch.save(ckpt, tmp_path / "b.ckpt")
    _, history = training.train_vae(frames, VAE, tmp_path / "b.ckpt", seed=0, progress=False)
    assert [h["step"] for h in history] == [4, 8]  # continued from step 4, not from 0


def test_mdnrnn_learns_a_predictable_sequence(tmp_path):
    E, T = 6, 20
    t = np.arange(T, dtype=np.float32)
    mu = np.stack([np.stack([np.sin(t / 3 + e), np.cos(t / 3 + e)], -1) for e in range(E)]).astype(np.float32)
    logvar = np.full_like(mu, -8.0)
    actions = np.zeros((E, T, 1), np.float32)
    _, history = training.train_mdnrnn(mu, logvar, actions, np.full(E, T), MDN, tmp_path / "m.ckpt", seed=0,
                                       progress=False)
    assert history[-1]["nll"] < history[0]["nll"] - 0.5


def test_mdnrnn_rejects_a_sequence_longer_than_every_episode(tmp_path):
    z = np.zeros((2, 5, 2), np.float32)
    with pytest.raises(ValueError, match="mdnrnn.seq_len=6"):
        training.train_mdnrnn(z, z, np.zeros((2, 5, 1), np.float32), np.array([5, 5]), MDN, tmp_path / "m.ckpt",
                              seed=0, progress=False)
