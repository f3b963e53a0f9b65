"""Uncertainty metrics of notebook 18 against direct computations and known cases."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from wmlib.experiments.pets import uncertainty as unc
from wmlib.models.ensemble import GaussianEnsemble
from wmlib.models.latent_model import LatentModel


def test_auroc_against_pairwise_counting():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(0.7, 1, 30)
    pairs = [(x > y) + 0.5 * (x == y) for x, y in itertools.product(b, a)]
    assert unc.auroc(a, b) == pytest.approx(np.mean(pairs))
    assert unc.auroc([0, 1, 2], [5, 6]) == 1.0 and unc.auroc([5, 6], [0, 1, 2]) == 0.0
    assert unc.auroc([1, 1], [1, 1]) == 0.5


def test_spearman_is_rank_based():
    x = np.arange(20.0)
    assert unc.spearman(x, np.exp(x)) == pytest.approx(1.0) and unc.spearman(x, -x ** 3) == pytest.approx(-1.0)


def test_calibrated_gaussian_has_no_calibration_error():
    y = torch.randn(20_000, generator=torch.Generator().manual_seed(0))
    levels = np.linspace(0.05, 0.95, 19)
    assert np.allclose(unc.coverage(Normal(0.0, 1.0).cdf(y), levels), levels, atol=0.015)
    assert unc.ece(Normal(0.0, 1.0).cdf(y)) < 0.01
    overconfident = unc.ece(Normal(0.0, 0.5).cdf(y))
    assert overconfident > 0.15                           # too narrow: intervals cover less than they claim
    assert unc.coverage(Normal(0.0, 0.5).cdf(y), [0.5])[0] < 0.5


def test_variance_reliability_on_calibrated_and_overconfident_predictions():
    g = torch.Generator().manual_seed(1)
    var = torch.rand(50_000, generator=g) * 4 + 0.1
    err = (var.sqrt() * torch.randn(50_000, generator=g)) ** 2
    curve = unc.variance_reliability(var, err, bins=5)
    assert len(curve) == 5 and np.allclose(curve.sq_error, curve.variance, rtol=0.05)
    assert curve.attrs["ence"] < 0.03
    assert unc.variance_reliability(var / 4, err, bins=5).attrs["ence"] == pytest.approx(1.0, abs=0.05)  # std off by 2


def identical_members(ens):
    with torch.no_grad():
        for p in ens.parameters():
            p.copy_(p[:1].expand_as(p))
    return ens


def test_disagreement_is_zero_for_identical_members_and_matches_the_variance():
    torch.manual_seed(0)
    ens = GaussianEnsemble(3, 1, members=4, hidden=8, layers=1)
    obs, action = torch.randn(6, 3), torch.randn(6, 1)
    mean, _ = ens(ens.inputs(obs, action))
    assert torch.allclose(unc.disagreement(ens, obs, action), mean.var(0).mean(-1))
    assert torch.allclose(unc.disagreement(identical_members(ens), obs, action), torch.zeros(6), atol=1e-10)


def test_mixture_of_identical_members_is_one_member():
    torch.manual_seed(0)
    ens = identical_members(GaussianEnsemble(2, 1, members=3, hidden=8, layers=1))
    obs, action = torch.randn(5, 2), torch.randn(5, 1)
    mean, logvar = ens(ens.inputs(obs, action))
    mix = unc.mixture(ens, obs, action)
    y = torch.randn(5, 3)
    assert torch.allclose(mix.cdf(y), Normal(mean[0], (0.5 * logvar[0]).exp()).cdf(y), atol=1e-6)
    assert torch.allclose(mix.variance, logvar[0].exp(), rtol=1e-5)


def test_open_loop_of_an_exact_model_has_no_error():
    """Members that predict delta = a exactly, on a trajectory that follows s' = s + a: zero error, zero
    disagreement at every horizon, one row per start and horizon."""
    ens = GaussianEnsemble(1, 1, members=2, layers=0)
    with torch.no_grad():
        ens.head.weight.zero_(), ens.head.bias.zero_()
        ens.head.weight[:, 1, 0] = 1.0
    action = torch.randn(12, 1)
    obs = torch.cat([torch.zeros(1, 1), action.cumsum(0)])
    df = unc.open_loop(ens, obs, action, [1, 3, 5])
    assert len(df) == 3 * (12 - 5 + 1)
    assert np.allclose(df.sq_error, 0, atol=1e-10) and np.allclose(df.disagreement, 0)


def q_heads_one_by_one(model: LatentModel, obs, action) -> np.ndarray:
    """[num_q, N]: each Q head evaluated on its own, its member's weights taken out of the batched ensemble layers
    and applied with torch.nn.functional (no dropout: eval), decoded as a scalar (two_hot off)."""
    x = torch.cat([model.encode(obs), action], -1)
    heads = []
    for i in range(model.num_q):
        h = x
        for layer in model._qs:
            name = type(layer).__name__
            if name == "EnsembleLinear":
                h = h @ layer.weight[i] + layer.bias[i, 0]
            elif name == "EnsembleLayerNorm":
                h = F.layer_norm(h, h.shape[-1:]) * layer.weight[i, 0] + layer.bias[i, 0]
            elif name == "Mish":
                h = F.mish(h)
        heads.append(h.squeeze(-1).numpy())
    return np.array(heads)


def test_q_disagreement_is_the_std_over_the_q_heads():
    torch.manual_seed(0)
    model = LatentModel(3, 1, latent=16, hidden=16, encoder_hidden=16, num_q=3, two_hot=False)
    with torch.no_grad():  # the Q heads start at zero (TD-MPC2's initialisation): give the members distinct outputs
        for p in model._qs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    obs, action = torch.randn(8, 3), torch.rand(8, 1) * 2 - 1
    model.eval()
    with torch.no_grad():
        qs = q_heads_one_by_one(model, obs, action)
    assert qs.shape == (3, 8) and qs.std(0, ddof=1).min() > 0
    np.testing.assert_allclose(unc.q_disagreement(model, obs, action).numpy(), qs.std(0, ddof=1), rtol=1e-5)
    with torch.no_grad():
        for p in model._qs.parameters():
            p.copy_(p[:1].expand_as(p))
    assert torch.allclose(unc.q_disagreement(model, obs, action), torch.zeros(8), atol=1e-6)


def test_tdmpc_model_names_a_task_tdmpc_does_not_run():
    with pytest.raises(ValueError, match="dmc/hopper-hop"):
        unc.tdmpc_model("smoke", "dmc/hopper-hop", 0)
