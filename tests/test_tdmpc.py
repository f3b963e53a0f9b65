"""The TD-MPC agent's parts against direct computations, and its replay, env and checkpoint plumbing."""
import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wmlib.data.replay import EpisodeBuffer
from wmlib.envs.mujoco_tasks import ActionRepeat, gym_id, make_env
from wmlib.experiments.mujoco.params import MujocoParams
from wmlib.experiments.mujoco.tdmpc import TDMPC, discount_for
from wmlib.models.latent_model import EnsembleLinear, LatentModel, Mish, SimNorm
from wmlib.models.twohot import bins, symexp, symlog, two_hot, two_hot_decode, two_hot_loss
from wmlib.params import load_params

CENTRES = bins(101, -10.0, 10.0)


# --- discrete regression -----------------------------------------------------------------------------
def test_symlog_symexp_round_trip():
    x = torch.tensor([-1e4, -3.5, -1.0, 0.0, 0.25, 7.0, 1e4])
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-5)
    assert torch.allclose(symlog(x), torch.sign(x) * torch.log(1 + x.abs()))


def test_two_hot_puts_mass_on_the_two_bracketing_bins():
    x = torch.tensor([0.0, 1.0, -5.0, 123.4, 2e4])  # the last one lies beyond the range: clipped
    t = two_hot(x, CENTRES)
    assert torch.allclose(t.sum(-1), torch.ones(5))
    assert ((t > 0).sum(-1) <= 2).all()
    expected = symlog(x).clamp(-10, 10)
    assert torch.allclose((t * CENTRES).sum(-1), expected, atol=1e-5)  # expected bin value = symlog(x)


def test_two_hot_decode_inverts_encode():
    x = torch.linspace(-2000, 2000, 41)
    logits = torch.log(two_hot(x, CENTRES) + 1e-12)
    assert torch.allclose(two_hot_decode(logits, CENTRES), x, rtol=1e-3, atol=1e-3)


def test_two_hot_loss_is_the_cross_entropy():
    logits, x = torch.randn(7, 101), torch.randn(7) * 30
    direct = F.cross_entropy(logits, two_hot(x, CENTRES), reduction="none")  # soft-label cross-entropy
    assert torch.allclose(two_hot_loss(logits, x, CENTRES), direct, atol=1e-5)


# --- the latent model ----------------------------------------------------------------------------------
def test_simnorm_is_a_softmax_per_group_of_8():
    x = torch.randn(5, 64) * 10
    z = SimNorm(8)(x)
    assert torch.allclose(z, F.softmax(x.view(5, 8, 8), -1).view(5, 64), atol=1e-6)
    assert torch.allclose(z.view(5, 8, 8).sum(-1), torch.ones(5, 8))


def test_encoder_latents_are_normalised():
    m = LatentModel(5, 1, latent=32, hidden=16, encoder_hidden=16, num_q=2)
    z = m.encode(torch.randn(9, 5) * 100)
    assert (z >= 0).all() and torch.allclose(z.view(9, 4, 8).sum(-1), torch.ones(9, 4), atol=1e-5)


def test_fast_mish_matches_torch():
    x = torch.linspace(-30, 30, 10_001)
    with torch.no_grad():
        assert torch.allclose(Mish()(x.clone()), F.mish(x), atol=1e-5)


def test_ensemble_linear_equals_separate_layers():
    layer, x = EnsembleLinear(3, 4, 5), torch.randn(6, 4)
    y = layer(x)
    for e in range(3):
        assert torch.allclose(y[e], x @ layer.weight[e] + layer.bias[e], atol=1e-6)


def test_paper_model_has_tdmpc2s_5m_parameters():
    p = load_params(MujocoParams, "paper")
    m = LatentModel(24, 6, **p.paper_model.model_dump())  # walker-walk's dimensions
    assert 4.5e6 < m.num_parameters() < 5.5e6


def test_td_target_against_a_direct_computation():
    p = load_params(MujocoParams, "smoke")
    agent = TDMPC(5, 1, p, discount=0.9)
    torch.nn.init.normal_(agent.model._target_qs[-1].weight)  # Q's output layer starts at zero: make Q nonzero
    z, r = agent.model.encode(torch.randn(4, 5)), torch.randn(4)
    torch.manual_seed(3)
    target = agent.td_target(z, r)
    torch.manual_seed(3)
    with torch.no_grad():
        a = agent.model.pi(z).sample()
        qs = agent.model.decode(agent.model.q_logits(z, a, target=True))  # num_q = 2: min over both
    assert torch.allclose(target, r + 0.9 * qs.min(0).values, atol=1e-6)


def test_update_moves_target_qs_by_tau():
    p = load_params(MujocoParams, "smoke")
    agent = TDMPC(5, 1, p, discount=0.9)
    before = [t.clone() for t in agent.model._target_qs.parameters()]
    agent.update(torch.randn(4, 8, 5), torch.rand(3, 8, 1) * 2 - 1, torch.randn(3, 8))
    for b, t, q in zip(before, agent.model._target_qs.parameters(), agent.model._qs.parameters()):
        assert torch.allclose(t, b + p.train.tau * (q - b), atol=1e-6)


def test_clip_norm_counts_only_the_model_losss_gradients():
    """TD-MPC2 clears the policy's gradients after its step, so an update's clip norm (`grad_norm`) is the norm of
    the model loss's gradients alone, not of those plus the previous update's policy gradients."""
    import copy
    p = load_params(MujocoParams, "smoke")
    agent = TDMPC(5, 1, p, discount=0.9)
    torch.nn.init.normal_(agent.model._qs[-1].weight)  # Q's output starts at zero: give the policy loss a gradient
    batch = (torch.randn(4, 8, 5), torch.rand(3, 8, 1) * 2 - 1, torch.randn(3, 8))
    agent.update(*batch)  # leaves the policy's gradients behind unless they are cleared
    reference = copy.deepcopy(agent)
    torch.manual_seed(5)
    grad_norm = agent.update(*batch)["grad_norm"]
    torch.manual_seed(5)
    reference.model.train()
    loss = reference.model_loss(*batch)[0]
    params = [q for q in reference.model.parameters() if q.requires_grad]
    grads = [g for g in torch.autograd.grad(loss, params, allow_unused=True) if g is not None]
    assert grad_norm == pytest.approx(torch.cat([g.flatten() for g in grads]).norm().item(), rel=1e-5)


def test_discount_heuristic():
    assert discount_for(125) == 0.96 and discount_for(500) == 0.99 and discount_for(10) == 0.95
    assert discount_for(100_000) == 0.995


# --- replay, env, params -------------------------------------------------------------------------------
def test_replay_windows_are_slices_of_stored_episodes():
    buf = EpisodeBuffer(capacity=30, length=10, obs_shape=(2,), action_dim=1)
    for e in range(3):
        t = torch.arange(11.0)
        buf.add(torch.stack([t, torch.full_like(t, e)], -1), t[:10, None] / 10, t[:10] + 100 * e)
    obs, action, reward, terminated = buf.sample(64, 3)
    assert not terminated.any()  # time-limit episodes never terminate
    assert obs.shape == (4, 64, 2) and action.shape == (3, 64, 1) and reward.shape == (3, 64)
    ep, start = obs[0, :, 1], obs[0, :, 0]
    assert torch.equal(obs[:, :, 0], start + torch.arange(4.0)[:, None])   # consecutive steps
    assert torch.equal(reward, start + torch.arange(3.0)[:, None] + 100 * ep)  # of the same episode
    restored = EpisodeBuffer(30, 10, (2,), 1)
    restored.load_state_dict(buf.state_dict())
    assert torch.equal(restored.obs, buf.obs) and restored.added == 3


def test_replay_rejects_a_wrong_episode_shape():
    with pytest.raises(ValueError, match="episode of shape"):
        EpisodeBuffer(30, 10, (2,), 1).add(torch.zeros(12, 2), torch.zeros(11, 1), torch.zeros(11))


def test_action_repeat_sums_rewards_and_counts_frames():
    class Counter(gym.Env):
        observation_space, action_space = gym.spaces.Box(0, 10, (1,)), gym.spaces.Box(-1, 1, (1,))

        def reset(self, seed=None, options=None):
            self.t = 0
            return np.zeros(1, np.float32), {}

        def step(self, action):
            self.t += 1
            return np.full(1, self.t, np.float32), float(self.t), False, self.t >= 7, {}

    env = ActionRepeat(Counter(), 3)
    env.reset()
    assert env.step(0)[1] == 1 + 2 + 3 and env.step(0)[1] == 4 + 5 + 6
    obs, reward, _, truncated, _ = env.step(0)
    assert reward == 7 and truncated   # stops at the episode's end


def test_dmc_task_is_flat_float32_with_action_repeat():
    env = make_env("dmc/cartpole-swingup", action_repeat=8)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (5,)
    steps = 0
    while not (env.step(env.action_space.sample())[3]):
        steps += 1
    assert steps + 1 == 125  # 1000 frames in agent steps of 8 frames


def test_task_names_are_checked():
    assert gym_id("dmc/walker-walk") == "dm_control/walker-walk-v0"
    with pytest.raises(ValueError, match="task must be"):
        gym_id("walker-walk")


def test_v1_wide_model_counts_tdmpc_v1s_parameters_plus_its_layer_norms():
    """TD-MPC v1's TOLD (nicklashansen/tdmpc src/algorithm/{tdmpc,helper}.py at f4d85ec) on walker's sizes, counted
    layer by layer; our model with v1's widths and switches (latent 50, MLPs 512, encoder 256, 2 scalar Qs, no
    SimNorm) has exactly those Linear layers plus a LayerNorm after each hidden layer and after the latent, and a
    std output for the policy (v1's pi is deterministic)."""
    obs, A, latent, mlp, enc = 24, 6, 50, 512, 256

    def linear(i, o):
        return i * o + o

    encoder = linear(obs, enc) + linear(enc, latent)
    three = lambda i, o: linear(i, mlp) + linear(mlp, mlp) + linear(mlp, o)  # noqa: E731  v1's h.mlp
    v1 = encoder + three(latent + A, latent) + three(latent + A, 1) + three(latent, A)
    v1 += 2 * (three(latent + A, 1) + 2 * mlp)  # Q1, Q2: h.q has one LayerNorm(mlp)
    ln = lambda d: 2 * d  # noqa: E731  a LayerNorm's weight and bias
    norms = (ln(enc) + ln(latent)) + (2 * ln(mlp) + ln(latent)) + 2 * ln(mlp) + 2 * ln(mlp)  # enc, dyn, reward, pi
    norms += 2 * (2 * ln(mlp) - ln(mlp))  # each Q: two LayerNorms where v1's has one
    pi_std = mlp * A + A  # the second half of the policy's output layer
    ours = LatentModel(obs, A, latent=latent, hidden=mlp, encoder_hidden=enc, num_q=2, simnorm=False, two_hot=False)
    assert ours.num_parameters() == v1 + norms + pi_std
    assert 1.4e6 < v1 < 1.6e6  # "512-wide MLPs": 1.5M parameters, 8x this repository's default 0.19M


def test_width_study_widens_the_default_model():
    p = load_params(MujocoParams, "default")
    from wmlib.experiments.mujoco.train import make_agent

    default, wide = (make_agent(p, p.width_study.task, v).model for v in ("full", "wide"))
    assert wide._dynamics[0].out_features == 512 and wide._encoder[0].out_features == 256
    assert default.num_parameters() < 0.25e6 < 1.5e6 < wide.num_parameters()
