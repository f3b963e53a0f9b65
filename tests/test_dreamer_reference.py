"""Dreamer v3's actor-critic rules as in DreamerV3's reference code (wmlib.control.actor_critic's docstring cites file
and line), and v1/v2's free nats, each against a direct computation."""
import copy

import numpy as np
import pytest
import torch
import torch.distributions as D

from wmlib.control.actor_critic import Actor, ActorCritic, ReturnScale, actor_loss, imagination_weights
from wmlib.models.rssm import kl_loss
from wmlib.models.world_model import WorldModel, WorldModelConfig


def test_return_scale_ema_starts_at_zero():
    """S_n = max(1, (1 - 0.99^n) x spread) after n updates with the same P95 - P5 spread (numpy's percentiles)."""
    x = torch.linspace(0, 1000, 201)
    spread = np.percentile(x.numpy(), 95) - np.percentile(x.numpy(), 5)
    scale = ReturnScale(decay=0.99)
    for n in range(1, 201):
        s = scale.update(x)
        assert s.item() == pytest.approx(max(1.0, (1 - 0.99 ** n) * spread), rel=1e-4)
    assert ReturnScale().update(torch.linspace(0, 10, 11)).item() == 1.0  # 0.01 x 9: below the floor


def test_actor_loss_is_the_weighted_advantage_over_the_scale():
    torch.manual_seed(0)
    H, N, scale, eta = 4, 3, 2.5, 0.1
    returns, entropy, weight = torch.randn(H, N, requires_grad=True), torch.rand(H, N), torch.rand(H, N)
    value = torch.randn(H, N, requires_grad=True)
    expected = 0.0
    for t in range(H):
        for n in range(N):
            expected -= weight[t, n] * ((returns[t, n].item() - value[t, n].item()) / scale + eta * entropy[t, n])
    loss = actor_loss(returns, value, scale, entropy, weight, eta, advantage=True)
    assert loss.item() == pytest.approx(expected.item() / (H * N), rel=1e-5)
    loss.backward()
    assert value.grad is None  # the baseline is a constant for the actor; the returns carry the gradient
    torch.testing.assert_close(returns.grad, -weight / (scale * H * N))
    no_baseline = actor_loss(returns, value, scale, entropy, weight, eta, advantage=False)
    assert no_baseline.item() == pytest.approx(-(weight * (returns / scale + eta * entropy)).mean().item())


def test_v3_actor_is_a_normal_around_tanh_mu_with_analytic_entropy():
    torch.manual_seed(0)
    actor = Actor(6, 2, 16, 1, "normal")
    feat = torch.randn(5, 6)
    mu, raw = actor.net(feat).chunk(2, -1)
    std = 0.9 * torch.sigmoid(raw + 2.0) + 0.1
    dist = actor(feat)
    torch.testing.assert_close(dist.mean, torch.tanh(mu))
    torch.testing.assert_close(dist.stddev, std)
    entropy = (0.5 * torch.log(2 * torch.pi * torch.e * std ** 2)).sum(-1)  # closed form, per action dimension
    torch.testing.assert_close(actor.entropy(dist, dist.sample()), entropy)
    tanh = Actor(6, 2, 16, 1, "tanh_normal")
    a = tanh(feat).rsample()
    assert a.abs().max() < 1 and torch.equal(tanh.entropy(tanh(feat), a), -tanh(feat).log_prob(a))


def test_imagination_weights_are_the_discounted_continue_products():
    cont = torch.tensor([[1.0, 0.9], [0.5, 1.0], [0.2, 0.0], [1.0, 1.0]])
    gamma = 0.99
    w = imagination_weights(cont, gamma)
    for n in range(2):
        for t in range(4):
            assert w[t, n].item() == pytest.approx(float(np.prod([gamma * cont[i, n].item() for i in range(t)])))


class _Gaussians:
    """A stand-in for the RSSM: unit Gaussians around the given means, so KL(q || p) = 0.5 |mu_q - mu_p|^2."""

    @staticmethod
    def dist(mean):
        return D.Independent(D.Normal(mean, 1.0), 1)


def test_free_nats_per_element_v3_and_after_averaging_v1_v2():
    post = torch.tensor([[[1.0, 0.0]], [[np.sqrt(6.0), 0.0]]])  # KLs 0.5 and 3.0 against a zero prior
    prior = torch.zeros_like(post)
    per_element, _ = kl_loss(_Gaussians, post, prior, 1.0, 0.0, free_nats=1.0)
    averaged, _ = kl_loss(_Gaussians, post, prior, 1.0, 0.0, free_nats=1.0, free_avg=True)
    assert per_element.item() == pytest.approx((max(0.5, 1.0) + max(3.0, 1.0)) / 2)  # 2.0
    assert averaged.item() == pytest.approx(max((0.5 + 3.0) / 2, 1.0))               # 1.75
    below, _ = kl_loss(_Gaussians, post / 10, prior, 1.0, 0.0, free_nats=1.0, free_avg=True)
    assert below.item() == 1.0  # under the free nats on average: no gradient at all


def _actor_critic(slowreg: float):
    torch.manual_seed(0)
    wm = WorldModel((5,), 2, WorldModelConfig(deter=16, hidden=16, stoch=4, classes=4, layers=1)).requires_grad_(False)
    ac = ActorCritic(wm.rssm.feature_size, 2, 16, 1, True, 255, 20.0, 0.99, 0.95, 3e-4, True, 0.02, 1e-3, 1e-3,
                     100.0, slowreg=slowreg)
    for p in ac.critic.net[-1].parameters():  # a critic that predicts something, so fast and slow can differ
        torch.nn.init.normal_(p, std=0.5)
    ac.slow_critic.load_state_dict(ac.critic.state_dict())
    return wm, ac


def test_critic_loss_adds_slowreg_times_the_loss_towards_the_slow_critic():
    _, ac = _actor_critic(1.0)
    with torch.no_grad():
        for p in ac.slow_critic.parameters():
            p.add_(0.3 * torch.randn_like(p))
    feat, returns, weight = torch.randn(4, 3, ac.critic.net[0].in_features), torch.randn(4, 3), torch.rand(4, 3)
    with_reg = ac.critic_loss(feat, returns, weight)
    ac.slowreg = 0.0
    without = ac.critic_loss(feat, returns, weight)
    reg = (weight * ac.critic.loss(feat, ac.slow_critic(feat).detach())).mean()
    assert with_reg.item() == pytest.approx((without + reg).item(), rel=1e-5) and reg.item() > 0


@pytest.mark.parametrize("slowreg, bootstraps_from_slow", [(1.0, False), (0.0, True)])
def test_returns_bootstrap_from_the_fast_critic_with_slowreg(slowreg, bootstraps_from_slow):
    """Moving only the slow critic changes the imagined returns iff they bootstrap from it (slowreg = 0)."""
    wm, ac = _actor_critic(slowreg)
    moved = copy.deepcopy(ac)
    with torch.no_grad():
        for p in moved.slow_critic.parameters():
            p.add_(1.0)
    h, z = wm.rssm.initial(8)
    torch.manual_seed(1)
    a = ac.update(wm, h, z, horizon=4)["return"]
    torch.manual_seed(1)
    b = moved.update(wm, h, z, horizon=4)["return"]
    assert (a != b) == bootstraps_from_slow


def test_each_reference_ablation_undoes_one_rule_only():
    from wmlib.experiments.mujoco.dreamer import ABLATIONS, variant_config
    from wmlib.experiments.mujoco.params import MujocoParams
    from wmlib.params import load_params
    d = load_params(MujocoParams, "smoke").dreamer
    full = variant_config(d)
    assert (full["advantage"], full["actor_dist"], full["slowreg"], full["free_avg"]) == (True, "normal", 1.0, False)
    for name, (key, old) in {"no_baseline": ("advantage", False), "tanh_actor": ("actor_dist", "tanh_normal"),
                             "slow_target": ("slowreg", 0.0)}.items():
        cfg = variant_config(d, name)
        assert cfg[key] == old and {k for k in cfg if cfg[k] != full[k]} == {key} == set(ABLATIONS[name])
