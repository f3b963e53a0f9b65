"""The device switch: World Models' V, M, C, dreams and agents train and act on the device they are given
(the CPU everywhere; CUDA where present), hand numpy back, and `device="cpu"` changes nothing."""
import numpy as np
import pytest
import torch

from wmlib import training
from wmlib.control.agent import WorldModelAgent
from wmlib.envs.carracing import carracing_action
from wmlib.experiments import Run
from wmlib.experiments.carracing.controller import build_agent
from wmlib.experiments.carracing.world_model import dream
from wmlib.experiments.carracing.world_model import load_mdnrnn as load_carracing_mdnrnn
from wmlib.experiments.doom.controller import DoomAgent, _dream_task
from wmlib.experiments.doom.params import DoomParams
from wmlib.experiments.doom.world_model import dream_frames, load_mdnrnn, make_mdnrnn
from wmlib.experiments.doom.world_model import train_mdnrnn as train_doom_mdnrnn
from wmlib.experiments.world_models import load_vae
from wmlib.io import save_torch
from wmlib.models.dream import BatchedDream, DreamEnv, linear_policy
from wmlib.models.mdnrnn import MDNRNN
from wmlib.models.vae import ConvVAE, frames_to_tensor
from wmlib.params import MDNRNNParams, VAEParams, load_params

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
VAE = VAEParams(z_size=8, epochs=2, batch_size=2, lr=1e-3, kl_tolerance=0.5, frame_stride=1)
MDN = MDNRNNParams(hidden=16, mixtures=3, seq_len=6, batch_size=4, lr=1e-2, grad_clip=1.0, steps=20)
Z, H = 4, 8  # the tiny Doom M's sizes


@pytest.fixture
def frames():
    """8 dark grey frames (8, 64, 64, 3) uint8: a few steps take V's reconstructions from mid-grey to dark."""
    return np.broadcast_to(np.arange(30, 38, dtype=np.uint8)[:, None, None, None], (8, 64, 64, 3)).copy()


def on(module, device) -> bool:
    return all(p.device.type == device for p in module.parameters())


def reconstruction(vae, frames) -> float:
    """Summed squared error per frame of V's reconstruction from mu (no sampling)."""
    x = frames_to_tensor(frames).to(next(vae.parameters()).device)
    with torch.inference_mode():
        return ((vae.decode(vae.encode(x)[0]) - x) ** 2).flatten(1).sum(1).mean().item()


@pytest.mark.parametrize("device", DEVICES)
def test_world_models_vae_trains_and_resumes_on_the_device(device, frames, tmp_path):
    one_epoch = VAE.model_copy(update={"epochs": 1})
    vae, history = training.train_vae(frames, one_epoch, tmp_path / "a.ckpt", 0, progress=False, device=device)
    ckpt = torch.load(tmp_path / "a.ckpt", weights_only=False)
    ckpt["config"]["epochs"] = 2  # pretend the 2-epoch run was killed after epoch 1
    torch.save(ckpt, tmp_path / "b.ckpt")
    vae, history = training.train_vae(frames, VAE, tmp_path / "b.ckpt", 0, progress=False, device=device)
    assert on(vae, device) and [h["step"] for h in history] == [4, 8] and np.isfinite(history[-1]["loss"])
    torch.manual_seed(0)
    assert reconstruction(vae, frames) < 0.5 * reconstruction(ConvVAE(VAE.z_size).to(device), frames)
    mu, logvar = training.encode_frames(vae, frames, batch=3)
    assert isinstance(mu, np.ndarray) and mu.shape == logvar.shape == (8, VAE.z_size)


@pytest.mark.parametrize("device", DEVICES)
def test_world_models_vae_trains_under_bf16_autocast(device, frames, tmp_path):
    p = VAE.model_copy(update={"bf16": True, "epochs": 1})
    vae, history = training.train_vae(frames, p, tmp_path / "v.ckpt", 0, progress=False, device=device)
    assert on(vae, device) and all(v.dtype == torch.float32 for v in vae.state_dict().values())
    assert np.isfinite([h["loss"] for h in history]).all()


def test_world_models_vae_on_the_cpu_is_the_default(frames, tmp_path):
    p = VAE.model_copy(update={"epochs": 1})
    default, _ = training.train_vae(frames[:4], p, tmp_path / "a.ckpt", 0, progress=False)
    cpu, _ = training.train_vae(frames[:4], p, tmp_path / "b.ckpt", 0, progress=False, device="cpu")
    for a, b in zip(default.state_dict().values(), cpu.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_world_models_mdnrnn_trains_on_the_device(device, tmp_path):
    E, T = 4, 12
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((2, E, T, 3)).astype(np.float32)
    model, history = training.train_mdnrnn(mu, logvar - 4, np.zeros((E, T, 2), np.float32), np.full(E, T), MDN,
                                           tmp_path / "m.ckpt", 0, progress=False, device=device)
    assert on(model, device) and history[-1]["step"] == MDN.steps and np.isfinite(history[-1]["nll"])


@pytest.mark.parametrize("device", DEVICES)
def test_world_models_doom_mdnrnn_trains_on_the_run_device(device, tmp_path):
    """Doom's M on the run's device, from an episode stream of 80 frames; then loaded back onto that device."""
    run = Run("smoke", load_params(DoomParams, "smoke"), tmp_path, tmp_path, torch.device(device))
    rng, n = np.random.default_rng(0), 80
    restart, done = np.zeros(n, np.float32), np.zeros(n, np.float32)
    restart[[0, 40]], done[[39, 79]] = 1, 1
    lat = {"mu": rng.standard_normal((n, 64)).astype(np.float32), "logvar": np.full((n, 64), -4, np.float32),
           "move": rng.integers(-1, 2, n).astype(np.float32), "restart": restart, "done": done}
    model, history = train_doom_mdnrnn(run, lat, progress=False)
    assert on(model, device) and np.isfinite(history[-1]["nll"]) and np.isfinite(history[-1]["done_loss"])
    m, initial = load_mdnrnn(run)
    assert on(m, device) and initial["initial_mu"].shape == (2, 64)


def tiny_doom_m(device):
    """A Doom-style M (done head) with z = 4, hidden = 8, on `device`."""
    return make_mdnrnn(Z, H, 3).to(device).eval()


@pytest.mark.parametrize("device", DEVICES)
def test_world_models_dream_runs_on_the_device_and_returns_numpy(device):
    d = BatchedDream(tiny_doom_m(device), np.zeros((3, Z)), np.zeros((3, Z)), tau=1.15, max_steps=15)
    obs = d.reset(5)
    assert obs.shape == (5, Z + 2 * H) and obs.device.type == d.initial_mu.device.type == device
    survived = d.rollout(linear_policy(np.random.default_rng(0).standard_normal((6, Z + 2 * H)), d.device), 6)
    assert isinstance(survived, np.ndarray) and survived.shape == (6,)
    assert ((1 <= survived) & (survived <= 15)).all()
    env = DreamEnv(tiny_doom_m(device), np.zeros((3, Z)), np.zeros((3, Z)), max_steps=5)
    obs, _ = env.reset(seed=0)
    assert isinstance(obs, np.ndarray) and isinstance(env.step(1)[0], np.ndarray)


@pytest.mark.parametrize("device", DEVICES)
def test_world_models_dream_task_and_doom_agent_use_the_shared_device(device):
    m = tiny_doom_m("cpu")
    shared = {"vae": {"z_size": Z, "model": ConvVAE(Z).state_dict()},
              "mdnrnn": {"z_size": Z, "hidden": H, "mixtures": 3, "model": m.state_dict(),
                         "initial_mu": np.zeros((3, Z), np.float32), "initial_logvar": np.zeros((3, Z), np.float32)},
              "device": device}
    scores = _dream_task(shared, (np.ones((2, Z + 2 * H)), 3, 1.0, 10, 0))
    assert isinstance(scores, np.ndarray) and scores.shape == (2, 3)
    agent = DoomAgent(shared, np.zeros(Z + 2 * H))
    assert on(agent.vae, device) and on(agent.cell, device) and on(agent.controller, device)
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert agent(frame) in (0, 1, 2) and agent.h.device.type == device


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", ["full", "z_only"])
def test_world_models_carracing_agent_acts_on_the_device(device, variant):
    shared = {"variant": variant, "vae": {"z_size": 8, "model": ConvVAE(8).state_dict()}, "device": device}
    if variant == "full":
        shared["mdnrnn"] = {"z_size": 8, "hidden": 16, "mixtures": 2, "model": MDNRNN(8, 3, 16, 2).state_dict()}
    params = np.random.default_rng(0).standard_normal((2, 3 * (8 + (16 if variant == "full" else 0)) + 3))
    agent = build_agent(shared)
    agent.reset(params, [0, 1])
    assert agent.device.type == device and on(agent.vae, device) and agent.weight.device.type == device
    frames = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    for _ in range(2):
        actions = agent(frames)
        assert isinstance(actions, np.ndarray) and actions.shape == (2, 3) and actions.dtype == np.float32
    assert agent.h.device.type == device


@pytest.mark.parametrize("device", DEVICES)
def test_world_models_agent_moves_m_to_vs_device(device):
    agent = WorldModelAgent(ConvVAE(8).to(device), carracing_action, 3, MDNRNN(8, 3, 16, 2))
    assert on(agent.mdnrnn, device)
    agent.reset(np.zeros(agent.n_params), [0])
    assert agent(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 3)


@pytest.mark.parametrize("device", DEVICES)
def test_world_models_checkpoints_load_and_dream_on_the_device(device, tmp_path):
    """V and M saved from the device load onto the run's device; the dreams decoded there come back as numpy."""
    run = Run("smoke", load_params(DoomParams, "smoke"), tmp_path, tmp_path, torch.device(device))
    vae, m = ConvVAE(Z).to(device), tiny_doom_m(device)
    save_torch({"z_size": Z, "model": vae.state_dict()}, tmp_path / "vae.pt")
    save_torch({"z_size": Z, "hidden": H, "mixtures": 3, "model": m.state_dict(),
                "initial_mu": np.zeros((3, Z), np.float32), "initial_logvar": np.zeros((3, Z), np.float32)},
               tmp_path / "mdnrnn.pt")
    vae, (m, initial) = load_vae(run), load_mdnrnn(run)
    assert on(vae, device) and on(m, device) and on(load_mdnrnn(run, torch.device("cpu"))[0], "cpu")
    frames = dream_frames(vae, m, initial, tau=1.0, steps=4)
    assert isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.shape[1:] == (64, 64, 3)
    save_torch({"z_size": Z, "hidden": H, "mixtures": 2, "model": MDNRNN(Z, 3, H, 2).to(device).state_dict()},
               tmp_path / "mdnrnn.pt")
    carracing_m = load_carracing_mdnrnn(run)
    assert on(carracing_m, device)
    latents = {"mu": np.zeros((1, 10, Z), np.float32), "actions": np.zeros((1, 10, 3), np.float32),
               "lengths": np.array([10])}
    dreams = dream(vae, carracing_m, latents, taus=(1.0,), start=2, steps=5)
    assert all(isinstance(v, np.ndarray) and v.shape == (6, 64, 64, 3) for v in dreams.values())
