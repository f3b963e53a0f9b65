"""PETS: the probabilistic ensemble against direct computations, trajectory sampling, and CEM through a known
linear model with identical members (the planners' linear-quadratic check, wmlib.experiments.mujoco.lqr)."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from wmlib.control.pets import ParticleModel, PETSAgent
from wmlib.control.planners import PlannerParams, plan
from wmlib.experiments.mujoco.lqr import LinearQuadratic
from wmlib.models.ensemble import EnsembleParams, GaussianEnsemble, bootstrap_indices, fit, soft_bound


def test_gaussian_nll_matches_the_direct_formula():
    torch.manual_seed(0)
    ens = GaussianEnsemble(3, 2, members=4, hidden=16, layers=2)
    x, y = torch.randn(4, 10, 5), torch.randn(4, 10, 4)
    loss, per_member = ens.loss(x, y)
    mean, logvar = ens(x)
    direct = 0.5 * (((y - mean) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi))
    assert torch.allclose(per_member, direct.mean((1, 2)), atol=1e-5)
    bounds = 0.01 * (ens.max_logvar.sum() - ens.min_logvar.sum())
    assert torch.allclose(loss, direct.mean((1, 2)).sum() + bounds, atol=1e-5)


def test_logvar_soft_bounds():
    lo, hi = torch.tensor(-3.0), torch.tensor(0.5)
    raw = torch.linspace(-50, 50, 101)
    logvar = soft_bound(raw, lo, hi)
    top = lo + torch.nn.functional.softplus(hi - lo)  # the soft upper limit: max_logvar + softplus(min - max)
    assert (logvar >= lo).all() and (logvar <= top).all() and top - hi < 0.03
    assert torch.allclose(logvar[:5], lo.expand(5), atol=1e-4)   # far below: min_logvar
    assert torch.allclose(logvar[-5:], top.expand(5), atol=1e-4)  # far above: max_logvar (softly)
    mid = torch.tensor(-1.0)  # well inside: nearly the identity, and the formula written out
    expected = lo + torch.log1p(torch.exp((hi - torch.log1p(torch.exp(hi - mid))) - lo))
    assert torch.allclose(soft_bound(mid, lo, hi), expected) and abs(soft_bound(mid, lo, hi) - mid) < 0.1


def test_ensemble_outputs_stay_within_the_bounds():
    ens = GaussianEnsemble(3, 1, members=2, hidden=8, layers=1, min_logvar=-4.0, max_logvar=0.0)
    _, logvar = ens(1e3 * torch.randn(50, 4))
    assert (logvar >= -4.0).all() and (logvar <= 0.02).all()


def test_bootstrap_resampling():
    g = torch.Generator().manual_seed(0)
    idx = bootstrap_indices(10_000, 5, g)
    assert idx.shape == (5, 10_000) and idx.min() >= 0 and idx.max() < 10_000
    unique = torch.tensor([len(row.unique()) / 10_000 for row in idx])
    assert torch.allclose(unique, torch.full((5,), 1 - math.exp(-1)), atol=0.01)  # with replacement: 1 - 1/e
    assert not torch.equal(idx[0], idx[1])                                          # each member its own


def test_batched_ensemble_equals_separate_networks():
    torch.manual_seed(1)
    ens = GaussianEnsemble(4, 2, members=3, hidden=16, layers=2)
    linears = [m for m in [*ens.body, ens.head] if not isinstance(m, nn.SiLU)]
    x = torch.randn(7, 6)
    mean, logvar = ens(x)
    for b in range(3):
        net = []
        for layer in linears:
            lin = nn.Linear(*layer.weight.shape[1:])
            lin.weight.data, lin.bias.data = layer.weight[b].T.clone(), layer.bias[b, 0].clone()
            net += [lin, nn.SiLU()]
        out = nn.Sequential(*net[:-1])(x)
        m, raw = out.chunk(2, -1)
        assert torch.allclose(mean[b], m, atol=1e-5)
        assert torch.allclose(logvar[b], soft_bound(raw, ens.min_logvar[b], ens.max_logvar[b]), atol=1e-5)


def test_distribution_is_in_raw_units():
    ens = GaussianEnsemble(2, 1, members=2, hidden=8, layers=1)
    ens.out_norm.mean.fill_(3.0), ens.out_norm.std.fill_(2.0)
    obs, action = torch.randn(5, 2), torch.randn(5, 1)
    mean, logvar = ens(ens.inputs(obs, action))
    dist = ens.distribution(obs, action)
    assert torch.allclose(dist.mean, mean * 2 + 3) and torch.allclose(dist.stddev, 2 * (0.5 * logvar).exp())


def test_fit_learns_a_noisy_linear_system_and_its_noise():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    n = 2000
    obs, action = torch.randn(n, 2, generator=g), torch.rand(n, 1, generator=g) * 2 - 1
    next_obs = obs + 0.1 * action + 0.05 * torch.randn(n, 2, generator=g)
    reward = obs[:, 0] + 0.1 * torch.randn(n, generator=g)
    ens = GaussianEnsemble(2, 1, members=3, hidden=32, layers=2)
    info = fit(ens, obs, action, next_obs, reward, EnsembleParams(max_epochs=30, patience=5, lr=3e-3, batch_size=32), g)
    assert info["epochs"] >= 5
    dist = ens.distribution(obs[:200], action[:200])
    assert (dist.mean[:, :, :2] - (next_obs - obs)[:200]).pow(2).mean() < 0.004       # ~ the noise variance
    assert torch.allclose(dist.stddev[:, :, :2].mean(), torch.tensor(0.05), rtol=0.4)  # the noise scale learned
    assert (dist.mean[:, :, 2] - obs[:200, 0]).pow(2).mean() < 0.01                    # the reward's mean
    assert 0.05 < dist.stddev[:, :, 2].mean() < 0.3  # its noise (0.1) only roughly: the holdout MSE stops it early


# --- trajectory sampling ---------------------------------------------------------------------------

def member_tagging_ensemble(members=4):
    """Members that add their own index to the state (delta = b, deterministic): the state records who stepped it."""
    ens = GaussianEnsemble(1, 1, members=members, layers=0, deterministic=True)
    with torch.no_grad():
        ens.head.weight.zero_()
        ens.head.bias.copy_(torch.arange(members, dtype=torch.float32).view(members, 1, 1).expand(-1, 1, 2))
    return ens


@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
def test_trajectory_sampling_assignment(propagation):
    B, P, N, H = 4, 8, 5, 6
    pm = ParticleModel(member_tagging_ensemble(B), P, propagation, generator=torch.Generator().manual_seed(0))
    z, a = pm.start(torch.zeros(1)).expand(N, -1), torch.zeros(N, 1)
    steps = []
    for _ in range(H):
        z2 = pm.next(z, a)
        steps.append((z2 - z).round().long())  # [N, P]: the member that stepped each particle
        z = z2
    steps = torch.stack(steps)                 # [H, N, P]
    for t in range(H):                         # every step the members get equal shares of the particles
        assert torch.equal(torch.bincount(steps[t].flatten(), minlength=B), torch.full((B,), N * P // B))
    if propagation == "ts_inf":                # each particle keeps its member: p mod B
        assert torch.equal(steps, (torch.arange(P) % B).expand(H, N, P))
    else:                                      # resampled: particles switch members between steps
        assert (steps[1:] != steps[:-1]).float().mean() > 0.5


def test_expectation_uses_the_mean_member():
    pm = ParticleModel(member_tagging_ensemble(4), 4, "expectation")
    z = pm.start(torch.zeros(1)).expand(3, -1)
    assert torch.allclose(pm.next(z, torch.zeros(3, 1)), torch.full((3, 4), 1.5))  # mean of 0, 1, 2, 3


def test_particles_must_split_evenly():
    with pytest.raises(ValueError, match="particles"):
        ParticleModel(member_tagging_ensemble(4), 6)


def test_disagreement_penalty_lowers_the_score_by_lambda_times_the_variance():
    ens = member_tagging_ensemble(4)
    z, a = torch.zeros(2, 4), torch.zeros(2, 1)
    plain = ParticleModel(ens, 4, "ts_inf").reward(z, a)
    penalised = ParticleModel(ens, 4, "ts_inf", penalty=0.5).reward(z, a)
    assert torch.allclose(plain - penalised, torch.full((2,), 0.5 * torch.arange(4.0).var()))


# --- CEM through a known linear model, every member identical ---------------------------------------

def linear_ensemble(lq: LinearQuadratic, members: int, deterministic: bool) -> GaussianEnsemble:
    """Members with no hidden layer whose mean is the exact delta (A - I) z + B a; the reward head is unused
    (the known LQ reward is plugged in) and the variance is pinned at exp(-20)."""
    ens = GaussianEnsemble(2, 1, members=members, layers=0, deterministic=deterministic, min_logvar=-21.0,
                           max_logvar=-20.0)
    W = torch.cat([lq.A - torch.eye(2), lq.B], 1).T                           # [in 3, delta 2]
    with torch.no_grad():
        ens.head.weight.zero_(), ens.head.bias.zero_()
        ens.head.weight[:, :, :2] = W
        if not deterministic:
            ens.head.bias[:, :, 3:] = -20.0                                     # raw log-variance
    return ens


@pytest.mark.parametrize("method", ["cem", "mppi"])
@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("propagation", ["ts_inf", "ts1", "expectation"])
def test_planning_through_an_identical_ensemble_reaches_the_lqr_optimum(propagation, deterministic, method):
    lq, z0 = LinearQuadratic.double_integrator(), torch.tensor([1.0, 0.0])
    lq = LinearQuadratic(lq.A, lq.B, lq.Q, lq.R, P=torch.zeros(2, 2))  # PETS has no terminal value
    H = 3
    optimum = lq.optimal_plan(z0, H)
    best = lq.plan_return(z0, optimum)
    g = torch.Generator().manual_seed(0)
    pm = ParticleModel(linear_ensemble(lq, 5, deterministic), 5, propagation, reward_fn=lq.reward, generator=g)
    cfg = PlannerParams(horizon=H, iterations=6, samples=512, policy_samples=0, elites=64, temperature=0.5,
                        min_std=0.05, max_std=2.0, method=method, use_prior=False, action="mean")  # PETS's
    action, mean, _ = plan(pm, pm.start(z0), cfg, action_dim=1, discount=1.0, generator=g)
    assert abs(action.item() - optimum[0, 0].item()) < 0.01
    assert lq.plan_return(z0, mean) <= best + 1e-5
    assert lq.plan_return(z0, mean) > best - 1e-3 * abs(best)


# --- the device switch: the same code on the CPU and, where present, on CUDA -------------------------------------

@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_fit_and_act_on_the_device(device, propagation):
    g = torch.Generator().manual_seed(0)
    obs, action = torch.randn(300, 3, generator=g), torch.rand(300, 2, generator=g) * 2 - 1
    ens = GaussianEnsemble(3, 2, members=5, hidden=16, layers=2).to(device)
    info = fit(ens, obs, action, obs + 0.1 * action[:, :1], obs[:, 0], EnsembleParams(max_epochs=2, batch_size=64), g)
    assert info["epochs"] >= 1 and all(p.device.type == device for p in ens.parameters())
    cfg = PlannerParams(horizon=4, iterations=2, samples=16, policy_samples=0, elites=4, temperature=0.5,
                        min_std=0.05, max_std=0.5, method="cem", use_prior=False)
    agent = PETSAgent(ens, cfg, 2, particles=10, propagation=propagation, penalty=0.5)
    a = agent.act(np.zeros(3, np.float32))
    assert a.shape == (2,) and np.all(np.abs(a) <= 1)
