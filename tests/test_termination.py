"""Tasks whose episodes terminate (Hopper falls): replay's absorbing padding, TD-MPC's termination head (TD target,
loss, planner masking) and Dreamer's continue head, against direct computations; and a smoke run on Hopper-v5."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wmlib.control.actor_critic import lambda_returns
from wmlib.control.planners import rollout_returns
from wmlib.data.replay import EpisodeBuffer
from wmlib.experiments.mujoco import dreamer, train
from wmlib.experiments.mujoco.params import MujocoParams
from wmlib.experiments.mujoco.tdmpc import TDMPC
from wmlib.models.latent_model import LatentModel
from wmlib.params import load_params


def smoke():
    return load_params(MujocoParams, "smoke")


def test_replay_pads_a_terminated_episode_with_an_absorbing_state():
    buf = EpisodeBuffer(capacity=30, length=10, obs_shape=(1,), action_dim=1)
    buf.add(torch.arange(4.0)[:, None], torch.ones(3, 1), torch.tensor([1.0, 2.0, 3.0]), terminated=True)
    assert torch.equal(buf.obs[0, :, 0], torch.tensor([0.0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3]))
    assert torch.equal(buf.reward[0], torch.tensor([1.0, 2, 3, 0, 0, 0, 0, 0, 0, 0]))
    assert torch.equal(buf.terminated[0], torch.tensor([0.0, 0, 1, 1, 1, 1, 1, 1, 1, 1]))
    obs, action, reward, terminated = buf.sample(500, 4, torch.Generator().manual_seed(0))
    assert set(obs[0, :, 0].tolist()) == {0.0, 1.0, 2.0}               # windows start at real, live steps
    assert torch.equal(terminated, (obs[1:, :, 0] == 3).float())       # 1 on the step into the end and after
    assert torch.equal(reward, torch.where(terminated.bool() & (obs[:-1, :, 0] == 3), 0.0, obs[:-1, :, 0] + 1))
    with pytest.raises(ValueError, match="fewer steps only for an episode that terminated"):
        buf.add(torch.zeros(4, 1), torch.zeros(3, 1), torch.zeros(3))


def test_replay_keeps_every_short_episode_that_fits_its_capacity():
    buf = EpisodeBuffer(capacity=40, length=10, obs_shape=(1,), action_dim=1)  # 4 slots of 10 steps
    for e in range(12):
        buf.add(torch.full((3, 1), float(e)), torch.zeros(2, 1), torch.zeros(2), terminated=True)
    assert len(buf) == 12 and sorted(buf.obs[:12, 0, 0].tolist()) == list(map(float, range(12)))
    restored = EpisodeBuffer(40, 10, (1,), 1)
    restored.load_state_dict(buf.state_dict())
    assert restored.episodes == buf.episodes and torch.equal(restored.terminated, buf.terminated)


def test_td_target_does_not_bootstrap_past_a_termination():
    agent = TDMPC(5, 1, smoke(), discount=0.9)
    torch.nn.init.normal_(agent.model._target_qs[-1].weight)  # Q's output layer starts at zero: make Q nonzero
    z, r, done = agent.model.encode(torch.randn(4, 5)), torch.randn(4), torch.tensor([0.0, 1.0, 0.0, 1.0])
    torch.manual_seed(3)
    target = agent.td_target(z, r, done)
    torch.manual_seed(3)
    with torch.no_grad():
        a = agent.model.pi(z).sample()
        q = agent.model.decode(agent.model.q_logits(z, a, target=True)).min(0).values  # num_q = 2: min over both
    assert torch.allclose(target, r + 0.9 * (1 - done) * q, atol=1e-6)
    assert torch.equal(target[done.bool()], r[done.bool()]) and (q != 0).all()


class Chain:
    """A latent that counts steps (z -> z + 1), reward 1 per step, value 10, terminal from z = 2 on."""
    episodic = True

    def next(self, z, a):
        return z + 1

    def reward(self, z, a):
        return torch.ones(len(z))

    def value(self, z):
        return torch.full((len(z),), 10.0)

    def terminated(self, z):
        return (z[:, 0] >= 2).float()


@pytest.mark.parametrize("episodic", [True, False])
def test_planner_counts_nothing_after_a_predicted_termination(episodic):
    model = Chain()
    model.episodic = episodic
    z0, g = torch.tensor([[0.0], [1.0], [2.0]]), 0.9
    ret = rollout_returns(model, z0, torch.zeros(4, 3, 1), g)
    # direct: from z0 = 0 the steps reach 1, 2 (terminal): rewards of steps 0 and 1 count, no value
    no_end = sum(g ** t for t in range(4)) + 10 * g ** 4
    expected = torch.tensor([1 + g, 1.0, 1.0]) if episodic else torch.full((3,), no_end)
    assert torch.allclose(ret, expected)


def test_termination_head_learns_by_bce_on_the_next_latents():
    p = smoke()
    model = LatentModel(5, 1, **p.model.model_dump(), termination=True)
    agent = TDMPC(5, 1, p, discount=0.9, model=model)
    obs, action, reward = torch.randn(4, 8, 5), torch.rand(3, 8, 1) * 2 - 1, torch.randn(3, 8)
    done = torch.zeros(3, 8)
    done[1:, :4] = 1
    _, parts, zs = agent.model_loss(obs, action, reward, done)
    p_term = torch.sigmoid(model.termination_logits(zs[1:]))
    direct = -(done * p_term.log() + (1 - done) * (1 - p_term).log()).mean()
    assert parts["termination"].item() == pytest.approx(direct.item(), rel=1e-5)
    assert set(map(id, model._termination.parameters())) <= set(map(id, model.model_parameters()))
    losses = [agent.update(obs, action, reward, done)["termination"] for _ in range(60)]
    assert losses[-1] < 0.9 * losses[0]  # the head is trained by the model's optimiser


def test_lambda_returns_stop_at_a_predicted_end():
    reward, value = torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[5.0], [6.0], [7.0], [8.0]])
    cont, g, lam = torch.tensor([[1.0], [0.0], [1.0]]), 0.9, 0.95
    ret = lambda_returns(reward, cont, value, g, lam)
    r2 = 3.0 + g * 8.0
    r1 = 2.0  # the step into state 2 ends the episode: no bootstrap
    r0 = 1.0 + g * ((1 - lam) * 6.0 + lam * r1)
    assert torch.allclose(ret[:, 0], torch.tensor([r0, r1, r2]))


def test_dreamer_continue_head_learns_the_terminations_and_imagines_from_live_states(monkeypatch):
    p = smoke()
    d = p.dreamer.model_copy(update={"pixels": False})
    agent = dreamer.Dreamer((5,), 1, d)
    obs, action, reward = torch.randn(5, 3, 5), torch.rand(4, 3, 1) * 2 - 1, torch.randn(4, 3)
    done = torch.zeros(4, 3)
    done[2:, 0] = 1
    seen = {}
    h, z = torch.zeros(5, 3, 2), torch.arange(15.0).reshape(5, 3, 1)  # state (t, b) is number 3t + b

    def loss(o, a, r, cont):
        seen["cont"] = cont
        return torch.zeros((), requires_grad=True), {}, (h, z)

    monkeypatch.setattr(agent.wm, "loss", loss)
    monkeypatch.setattr(agent.ac, "update", lambda wm, h, z, horizon: seen.setdefault("starts", z[:, 0]) is None or {})
    agent.update(obs, action, reward, done)
    assert torch.equal(seen["cont"], 1 - done)  # the continue head's targets
    # states 3 and 4 of sequence 0 (after the terminating step 2) are terminal: numbers 9 and 12
    assert set(seen["starts"].tolist()) == set(range(15)) - {9.0, 12.0}
    monkeypatch.undo()
    _, metrics, (h, z) = agent.wm.loss(obs, action, reward, 1 - done)
    logits = agent.wm.continue_head(torch.cat([h, z], -1)[1:]).squeeze(-1)
    direct = F.binary_cross_entropy_with_logits(logits, 1 - done)
    assert metrics["cont"] == pytest.approx(direct.item(), rel=1e-5)


@pytest.mark.parametrize("learner", ["tdmpc", "dreamer"])
def test_a_smoke_run_on_hopper_learns_from_terminated_episodes(tmp_path, learner):
    raw = smoke().model_dump()
    assert raw["tasks"]["gym/Hopper-v5"]["terminates"]
    raw["budgets"]["gym/Hopper-v5"] = {"frames": 300, "eval_every": 300}
    raw["dreamer"]["pixels"], raw["device"] = False, "cpu"  # state vectors: rendering Hopper is slow
    p = MujocoParams.model_validate(raw)
    fn = train.train_tdmpc if learner == "tdmpc" else dreamer.train_dreamer
    result = fn((p, tmp_path / "data", tmp_path / "results"), ("gym/Hopper-v5", 0, "full"))
    assert result["frames"] >= 300 and result["episodes"] > 300 / 200  # Hopper falls long before the 200-frame cap
    assert np.isfinite(result["mean"])
    with pytest.raises(RuntimeError, match="set `terminates: true`"):
        raw["tasks"]["gym/Hopper-v5"]["terminates"] = False
        fn((MujocoParams.model_validate(raw), tmp_path / "d2", tmp_path / "r2"), ("gym/Hopper-v5", 0, "full"))
