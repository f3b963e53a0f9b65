"""The PETS planning step and ensemble fit against their previous implementations (wmlib main at c788696, before
the CPU speed-up), copied below: same seeds -> the same actions, CEM means, random streams, losses and weights."""
import copy

import numpy as np
import pytest
import torch

from wmlib.control.pets import ParticleModel, PETSAgent
from wmlib.control.planners import PlannerParams
from wmlib.models.ensemble import EnsembleParams, GaussianEnsemble, bootstrap_indices, fit, soft_bound

# Float tolerance. On CPU the results are bitwise equal, but for one case: the previous code stepped each of a
# sequence's equal expectation particles, whose results the matrix product could round differently by row (~1e-7).
TOL = {"rtol": 1e-5, "atol": 1e-6}


# --- the previous implementation -------------------------------------------------------------------

def reference_forward(ens, x):
    """GaussianEnsemble.forward as it was: the modules called in turn."""
    out = ens.head(ens.body(x))
    if ens.deterministic:
        return out, None
    mean, raw = out.chunk(2, -1)
    return mean, soft_bound(raw, ens.min_logvar, ens.max_logvar)


class ReferenceParticleModel(ParticleModel):
    """ParticleModel.step and _step as they were: every flat particle stepped, gathered by member and back."""

    def members_of(self, n, device=None):
        B = self.ens.members
        if self.propagation == "ts1":
            perm = torch.randperm(n * self.P, generator=self.generator).to(device)
            members = torch.empty_like(perm)
            members[perm] = torch.arange(n * self.P, device=device) % B
            return members
        return torch.arange(n * self.P, device=device) % B

    def step(self, s, a):
        ens, B, M = self.ens, self.ens.members, len(s)
        x = ens.inputs(s, a)
        if self.propagation == "expectation" or self.penalty:
            mean_all, _ = reference_forward(ens, x)
        if self.propagation == "expectation":
            y = mean_all.mean(0)
        else:
            members = self.members_of(M // self.P, s.device)
            order = torch.argsort(members, stable=True)
            xs = x[order].view(B, M // B, -1)
            mean, logvar = reference_forward(ens, xs)
            if logvar is not None:
                noise = torch.randn(mean.shape, generator=self.generator).to(mean.device)
                mean = mean + (0.5 * logvar).exp() * noise
            y = torch.empty_like(mean.view(M, -1))
            y[order] = mean.reshape(M, -1)
        y = ens.out_norm.inverse(y)
        reward = y[:, -1] if self.reward_fn is None else self.reward_fn(s, a)
        disagreement = mean_all.var(0).mean(-1) if self.penalty else torch.zeros_like(reward)
        return s + y[:, :-1], reward, disagreement

    def _step(self, z, a):
        if self._last is None or self._last[0] is not z or self._last[1] is not a:
            N, D = len(z), self.ens.obs_dim
            s2, r, dis = self.step(z.reshape(N * self.P, D), a.repeat_interleave(self.P, 0))
            score = (r - self.penalty * dis).view(N, self.P).mean(1)
            self._last = (z, a, s2.reshape(N, self.P * D), score)
        return self._last[2], self._last[3]


def _member_state(model, member):
    return {k: v[member].clone() for k, v in model.state_dict().items() if not k.endswith(("norm.mean", "norm.std"))}


def reference_fit(model, obs, action, next_obs, reward, cfg, generator=None, optimizer=None):
    """wmlib.models.ensemble.fit as it was."""
    n = len(obs)
    perm = torch.randperm(n, generator=generator)
    n_hold = min(int(n * cfg.holdout), cfg.max_holdout) if n > 1 else 0
    hold, train = perm[:n_hold], perm[n_hold:]
    device = next(model.parameters()).device
    obs, action, next_obs, reward = (t.to(device) for t in (obs, action, next_obs, reward))
    model.in_norm.fit(torch.cat([obs[train], action[train]], -1))
    model.out_norm.fit(torch.cat([next_obs[train] - obs[train], reward[train].unsqueeze(-1)], -1))
    x, y = model.inputs(obs, action), model.targets(obs, action, next_obs, reward)
    xh, yh = (x[hold], y[hold]) if n_hold else (x[train], y[train])
    boot = train[bootstrap_indices(len(train), model.members, generator)]
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best = model.holdout_mse(xh, yh)
    best_state = [_member_state(model, b) for b in range(model.members)]
    since, epoch, losses = 0, 0, []
    for epoch in range(1, cfg.max_epochs + 1):
        order = boot.gather(1, torch.argsort(torch.rand(boot.shape, generator=generator), 1)).to(device)
        for i in range(0, order.shape[1], cfg.batch_size):
            idx = order[:, i:i + cfg.batch_size]
            loss, _ = model.loss(x[idx], y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        score = model.holdout_mse(xh, yh)
        improved = (best - score) / best.abs().clamp_min(1e-12) > 0.01
        for b in improved.nonzero().flatten().tolist():
            best[b], best_state[b] = score[b], _member_state(model, b)
        since = 0 if improved.any() else since + 1
        if since >= cfg.patience:
            break
    state = copy.copy(model.state_dict())
    for k in best_state[0]:
        state[k] = torch.stack([s[k] for s in best_state])
    model.load_state_dict(state)
    return {"epochs": epoch, "train_loss": float(sum(losses[-10:]) / max(len(losses[-10:]), 1)),
            "holdout_mse": best.tolist()}


# --- the comparisons -------------------------------------------------------------------------------

def transitions(n, D=4, A=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs, action = torch.randn(n, D, generator=g), torch.rand(n, A, generator=g) * 2 - 1
    next_obs = obs + 0.1 * torch.cat([obs[:, A:], action], 1).roll(1, 1) + 0.05 * torch.randn(n, D, generator=g)
    return obs, action, next_obs, obs[:, 0] - action.pow(2).sum(1) + 0.1 * torch.randn(n, generator=g)


def trained_ensemble(deterministic=False, device="cpu"):
    """A small ensemble fitted a little, so members differ and the standardisers are not the identity."""
    torch.manual_seed(0)
    ens = GaussianEnsemble(4, 2, members=5, hidden=32, layers=2, deterministic=deterministic, min_logvar=-5.0)
    fit(ens, *transitions(400), EnsembleParams(max_epochs=2, batch_size=64), torch.Generator().manual_seed(0))
    return ens.to(device)


def test_state_dict_keys_are_unchanged():
    keys = [f"body.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")] + [
        "head.weight", "head.bias", "min_logvar", "max_logvar", "in_norm.mean", "in_norm.std", "out_norm.mean",
        "out_norm.std"]
    assert sorted(GaussianEnsemble(4, 2, members=5, hidden=32, layers=2).state_dict()) == sorted(keys)


@pytest.mark.parametrize("deterministic", [False, True])
def test_forward_equals_the_modules_called_in_turn(deterministic):
    ens = trained_ensemble(deterministic)
    for x in (torch.randn(7, 6), torch.randn(5, 7, 6)):
        for new, ref in zip(ens(x), reference_forward(ens, x)):
            assert (new is None and ref is None) or torch.equal(new, ref)


@pytest.mark.parametrize("propagation,deterministic,penalty", [
    ("ts_inf", False, 0.0), ("ts_inf", True, 0.0), ("ts_inf", False, 0.7), ("ts1", False, 0.0), ("ts1", True, 0.7),
    ("expectation", False, 0.0), ("expectation", False, 0.7)])
@pytest.mark.parametrize("particles", [5, 10])
def test_planning_matches_the_previous_implementation(propagation, deterministic, penalty, particles):
    """Several receding-horizon steps of CEM: each action, the final CEM mean and the planning random stream."""
    ens = trained_ensemble(deterministic)
    cfg = PlannerParams(horizon=6, iterations=3, samples=40, policy_samples=0, elites=6, temperature=0.5,
                        min_std=0.05, max_std=0.5, method="cem", use_prior=False, action="mean")
    agents = [PETSAgent(ens, cfg, 2, particles, propagation, penalty, seed=3) for _ in range(2)]
    agents[1].model = ReferenceParticleModel(ens, particles, propagation, penalty, generator=agents[1].generator)
    obs = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for o in obs:
        new, ref = (agent.act(o) for agent in agents)
        torch.testing.assert_close(torch.as_tensor(new), torch.as_tensor(ref), **TOL)
        torch.testing.assert_close(agents[0].prev_mean, agents[1].prev_mean, **TOL)
    assert torch.equal(agents[0].generator.get_state(), agents[1].generator.get_state())


@pytest.mark.parametrize("propagation", ["ts_inf", "ts1", "expectation"])
def test_one_step_matches_the_previous_implementation(propagation):
    """next and reward of particles that all differ (not only the planner's equal starts), penalty on."""
    ens, g = trained_ensemble(), [torch.Generator().manual_seed(1) for _ in range(2)]
    new, ref = (cls(ens, 10, propagation, 0.3, generator=gen) for cls, gen in zip((ParticleModel,
                                                                                  ReferenceParticleModel), g))
    z, a = torch.randn(8, 10 * 4), torch.rand(8, 2) * 2 - 1
    if propagation == "expectation":  # its particles stay equal from the start on: the case the planner meets
        z = z[:, :4].repeat(1, 10)
    with torch.no_grad():
        torch.testing.assert_close(new.next(z, a), ref.next(z, a), **TOL)
        torch.testing.assert_close(new.reward(z, a), ref.reward(z, a), **TOL)


@pytest.mark.parametrize("deterministic", [False, True])
def test_fit_matches_the_previous_implementation(deterministic):
    """Two refits with one Adam kept (as wmlib.experiments.pets.train): epochs, losses, holdout MSEs, weights."""
    cfg = EnsembleParams(max_epochs=4, patience=2, batch_size=64, lr=2e-3)
    results = []
    for fit_fn in (fit, reference_fit):
        torch.manual_seed(0)
        ens = GaussianEnsemble(4, 2, members=5, hidden=32, layers=2, deterministic=deterministic)
        opt, g = torch.optim.Adam(ens.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay), torch.Generator()
        g.manual_seed(0)
        data = transitions(700)
        infos = [fit_fn(ens, *(t[:n] for t in data), cfg, g, opt) for n in (300, 700)]
        results.append((infos, ens.state_dict(), g.get_state()))
    (new_infos, new_state, new_g), (ref_infos, ref_state, ref_g) = results
    for new, ref in zip(new_infos, ref_infos):
        assert new["epochs"] == ref["epochs"]
        assert new["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-5)
        assert new["holdout_mse"] == pytest.approx(ref["holdout_mse"], rel=1e-5)
    assert list(new_state) == list(ref_state)
    for k in ref_state:
        torch.testing.assert_close(new_state[k], ref_state[k], **TOL)
    assert torch.equal(new_g, ref_g)
