"""The device switch on the MuJoCo side (TD-MPC, Dreamer, SAC, replay, planners) and the switch itself.

Every test taking `device` runs on the CPU everywhere and on CUDA where a GPU is present (`pytest -m gpu` runs only
the CUDA ones; without a GPU they are skipped).
"""
import numpy as np
import pytest
import torch

from wmlib.data.replay import EpisodeBuffer
from wmlib.device import resolve_device
from wmlib.experiments.mujoco.dreamer import Dreamer
from wmlib.experiments.mujoco.params import MujocoParams
from wmlib.experiments.mujoco.tdmpc import TDMPC
from wmlib.params import ParamsError, load_params

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def smoke(**changes):
    return load_params(MujocoParams, "smoke").model_copy(update=changes)


def on(module, device) -> bool:
    return all(p.device.type == torch.device(device).type for p in module.parameters())


# --- the switch --------------------------------------------------------------------------------------------------
def test_auto_is_cuda_exactly_when_a_gpu_is_present():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_or_missing_devices_are_named():
    with pytest.raises(ValueError, match="'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:1': CUDA is not available"):
            resolve_device("cuda:1")


def test_params_reject_a_misspelled_device(tmp_path):
    import yaml

    from wmlib.params import PARAMS_FILE
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["mujoco"]["smoke"]["device"] = "gpu"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"mujoco\.smoke\.device: String should match pattern"):
        load_params(MujocoParams, "smoke", tmp_path / "params.yaml")


# --- replay and planning -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_replay_builds_batches_on_its_device_from_the_same_indices(device):
    """The same generator gives the same windows on any device: indices are drawn on the CPU."""
    buffers = [EpisodeBuffer(40, 10, (3,), 2, device=d) for d in ("cpu", device)]
    episode = torch.randn(11, 3), torch.rand(10, 2), torch.randn(10)
    for b in buffers:
        b.add(*episode)
    (obs, action, reward, terminated), on_device = (b.sample(4, 3, torch.Generator().manual_seed(0)) for b in buffers)
    assert obs.device.type == "cpu" and on_device[0].device.type == torch.device(device).type
    for x, y in zip((obs, action, reward, terminated), on_device):
        assert torch.equal(x, y.cpu())


@pytest.mark.parametrize("device", DEVICES)
def test_tdmpc_plans_and_updates_on_its_device(device):
    p = smoke()
    agent = TDMPC(5, 2, p, discount=0.99, device=device)
    assert on(agent.model, device) and agent.q_scale.device.type == torch.device(device).type
    action = agent.act(np.zeros(5, np.float32), explore=True)
    assert isinstance(action, np.ndarray) and action.shape == (2,) and np.all(np.abs(action) <= 1)
    H, B = p.train.horizon, p.train.batch_size
    batch = (torch.randn(H + 1, B, 5, device=device), torch.rand(H, B, 2, device=device) * 2 - 1,
             torch.randn(H, B, device=device))
    assert np.isfinite(list(agent.update(*batch).values())).all()


def test_tdmpc_on_an_explicit_cpu_is_the_default_agent():
    """device='cpu' changes nothing: the same seed gives the same weights and the same actions."""
    p, obs = smoke(), np.linspace(-1, 1, 5).astype(np.float32)
    actions = []
    for kwargs in ({}, {"device": "cpu"}):
        torch.manual_seed(0)
        agent = TDMPC(5, 2, p, discount=0.99, **kwargs)
        actions.append(agent.act(obs, explore=True))
    assert np.array_equal(*actions)


# --- Dreamer -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pixels", [False, True])
def test_dreamer_acts_and_updates_on_its_device(device, pixels):
    d = smoke().dreamer
    shape = (64, 64, 3) if pixels else (5,)
    agent = Dreamer(shape, 2, d, device=device)
    assert on(agent.wm, device) and on(agent.ac, device)
    T, B = d.train.seq_len, d.train.batch_size
    obs = torch.randint(0, 256, (T + 1, B, *shape), dtype=torch.uint8) if pixels else torch.randn(T + 1, B, 5)
    metrics = agent.update(obs.to(device), (torch.rand(T, B, 2) * 2 - 1).to(device), torch.randn(T, B).to(device))
    assert np.isfinite(list(metrics.values())).all()
    frame = np.zeros(shape, np.uint8 if pixels else np.float32)
    assert agent.act(frame, explore=True).shape == (2,)


def test_dreamer_bf16_autocast_trains_the_world_model_in_float32_weights():
    """The paper scale's switch: the world-model step runs under bf16 autocast (here on the CPU); weights, the
    posterior states handed to the actor-critic and the losses stay float32 and finite."""
    d = smoke().dreamer
    d = d.model_copy(update={"train": d.train.model_copy(update={"bf16": True})})
    agent = Dreamer((64, 64, 3), 2, d)
    T, B = d.train.seq_len, d.train.batch_size
    obs = torch.randint(0, 256, (T + 1, B, 64, 64, 3), dtype=torch.uint8)
    metrics, (h, z) = agent.update_world_model(obs, torch.rand(T, B, 2) * 2 - 1, torch.randn(T, B))
    assert h.dtype == z.dtype == torch.float32 and np.isfinite(list(metrics.values())).all()
    assert all(p.dtype == torch.float32 for p in agent.wm.parameters())
    assert np.isfinite(list(agent.update_actor_critic(h, z).values())).all()


# --- whole training jobs on the GPU ------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("learner", ["tdmpc", "dreamer", "sac"])
def test_a_smoke_training_job_runs_on_cuda(tmp_path, learner):
    from wmlib.experiments.mujoco.dreamer import train_dreamer
    from wmlib.experiments.mujoco.params import BudgetParams
    from wmlib.experiments.mujoco.train import train_sac, train_tdmpc
    task = "dmc/cartpole-swingup"
    p = smoke(device="cuda", budgets={task: BudgetParams(frames=800, eval_every=800)})
    shared = (p, tmp_path / "data", tmp_path / "results")
    job = (task, 0) if learner == "sac" else (task, 0, "full")
    result = {"tdmpc": train_tdmpc, "dreamer": train_dreamer, "sac": train_sac}[learner](shared, job)
    assert result["frames"] == 800 and np.isfinite(result["mean"])
