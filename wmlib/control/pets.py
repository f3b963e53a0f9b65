"""PETS planning: CEM (or MPPI) from wmlib.control.planners through a GaussianEnsemble with trajectory sampling.

Each action sequence is scored by P particles (P a multiple of the B members) started at the current state and
propagated through the ensemble; its score is the particles' mean summed reward (Chua et al., 2018, Alg. 2;
mbrl-lib mbrl/models/model_env.py:165-191). `ParticleModel` speaks the planners' model interface with the
particles of one sequence flattened into its "latent": z [N, P * obs_dim], so `planners.plan` runs unchanged.

Propagation (which member predicts a particle's next step), as in the PETS paper:
    ts_inf       particle p keeps member p mod B for the whole horizon (TS-inf; mbrl-lib's "fixed_model")
    ts1          every step the N x P particles are shuffled and dealt out to the members in equal shares, as
                 mbrl-lib's "random_model" (mbrl/models/gaussian_mlp.py:202-206, 156-177)
    expectation  every particle steps with the members' mean prediction, no sampling: the mean-model ablation
With a probabilistic ensemble each step samples y ~ N(mean, var) of the chosen member; a deterministic one
(the "DE" ablation) steps with the member's mean. `penalty` > 0 scores r - penalty x disagreement, where
disagreement is the variance across members of their mean predictions (standardised units, mean over outputs).

Cost: each step runs the members on the particles grouped by member, [B, N * P / B, in] (for ts_inf a reshape,
no gather). With expectation nothing is sampled, so a sequence's P particles (equal at the start) stay equal and
only one per sequence is stepped; with a penalty every member runs on every particle and each particle's own
member's prediction is taken from that pass. The results are the same as stepping every particle separately
(tests/test_pets_reference.py).

Rewards are the ensemble's learned ones by default; `reward_fn(obs, action) -> [N]` replaces them by a known
reward (the documented switch, used by the linear-quadratic check). The planner's CEM is wmlib's (clamped Gaussian
samples, no momentum), not mbrl-lib's truncated-normal CEM with alpha smoothing (trajectory_opt.py:110-140).
"""
from typing import Literal

import numpy as np
import torch

from ..models.ensemble import GaussianEnsemble
from .planners import PlannerParams, plan, shift

Propagation = Literal["ts_inf", "ts1", "expectation"]


class ParticleModel:
    """The planners' model interface (next, reward, value, pi) over flattened particles; see the module docstring."""

    def __init__(self, ensemble: GaussianEnsemble, particles: int, propagation: Propagation = "ts_inf",
                 penalty: float = 0.0, reward_fn=None, generator=None):
        if particles % ensemble.members:
            raise ValueError(f"particles ({particles}) must be a multiple of the ensemble's members "
                             f"({ensemble.members})")
        if propagation not in ("ts_inf", "ts1", "expectation"):
            raise ValueError(f"propagation must be ts_inf, ts1 or expectation, got {propagation!r}")
        self.ens, self.P, self.propagation = ensemble, particles, propagation
        self.penalty, self.reward_fn, self.generator = penalty, reward_fn, generator
        self._last = None  # (z, a, next z, reward): reward(z, a) and next(z, a) share one step

    def start(self, obs) -> torch.Tensor:
        """The planner's z for state obs [D]: P copies, flattened [P * D]."""
        return obs.repeat(self.P)

    def ts1_order(self, n: int, device=None) -> torch.Tensor:
        """ts1's deal for one step of n sequences: flat particle perm[j] (flat j = sequence * P + particle, perm a
        fresh random permutation) goes to member j mod B. -> [n * P] the flat particles sorted by member (and by
        index within one)."""
        perm = torch.randperm(n * self.P, generator=self.generator).to(device)
        return perm.view(-1, self.ens.members).T.sort(1).values.flatten()

    def by_member(self, s, a):
        """Particles s [N, P, D], actions a [N, A] -> the model inputs grouped by member, x [B, N * P / B, in],
        and `back`, which maps a result [B, N * P / B, c] to the particles [N, P, c]. ts_inf deals particle p to
        member p mod B (a reshape: x[b, n * P / B + q] is particle q * B + b of sequence n), ts1 deals a fresh
        random permutation every step (a sort by member)."""
        ens, B, (N, P, D) = self.ens, self.ens.members, s.shape
        if self.propagation == "ts1":
            order = self.ts1_order(N, s.device)
            x = ens.inputs(s.reshape(N * P, D)[order], a[order // P]).view(B, N * P // B, -1)

            def back(t):
                out = torch.empty_like(t.view(N * P, -1))
                out[order] = t.view(N * P, -1)
                return out.view(N, P, -1)
            return x, back
        k = P // B
        x = ens.inputs(s.view(N, k, B, D).permute(2, 0, 1, 3), a[None, :, None].expand(B, N, k, -1))
        return x.view(B, N * k, -1), lambda t: t.view(B, N, k, -1).permute(1, 2, 0, 3).reshape(N, P, -1)

    def step(self, s, a):
        """Particles s [N, P, D] of N sequences, their actions a [N, A] -> (next states [N, P, D], rewards [N, P],
        disagreement [N, P], None without a penalty)."""
        ens, B, (N, P, D) = self.ens, self.ens.members, s.shape
        dis = None
        if self.propagation == "expectation":  # nothing sampled: a sequence's P particles stay equal, step one
            mean_all, _ = ens(ens.inputs(s[:, 0], a))                       # every member [B, N, out]
            y = ens.out_norm.inverse(mean_all.mean(0))[:, None].expand(N, P, -1)
            if self.penalty:
                dis = mean_all.var(0).mean(-1)[:, None].expand(N, P)
        else:
            x, back = self.by_member(s, a)
            if self.penalty:  # every member on every particle, among them each particle's own member
                mean_all, logvar_all = ens(x.view(N * P, -1))                # [B, B * N * P / B, out]
                own = lambda t: t.view(B, B, N * P // B, -1).diagonal(0, 0, 1).permute(2, 0, 1)  # noqa: E731
                y, logvar = own(mean_all), None if logvar_all is None else own(logvar_all)
                dis = back(mean_all.var(0).mean(-1).view(B, -1, 1)).view(N, P)
            else:
                y, logvar = ens(x)                                           # [B, N * P / B, out]
            if logvar is not None:
                noise = torch.randn(y.shape, generator=self.generator).to(y.device)
                y = y + (0.5 * logvar).exp() * noise
            y = back(ens.out_norm.inverse(y))
        if self.reward_fn is None:
            reward = y[..., -1]
        else:
            reward = self.reward_fn(s.reshape(N * P, D), a.repeat_interleave(P, 0)).view(N, P)
        return s + y[..., :-1], reward, dis

    def _step(self, z, a):
        if self._last is None or self._last[0] is not z or self._last[1] is not a:
            N, D = len(z), self.ens.obs_dim
            s2, r, dis = self.step(z.reshape(N, self.P, D), a)
            score = (r if dis is None else r - self.penalty * dis).mean(1)
            self._last = (z, a, s2.reshape(N, self.P * D), score)
        return self._last[2], self._last[3]

    def next(self, z, a):
        return self._step(z, a)[0]

    def reward(self, z, a):
        return self._step(z, a)[1]

    def value(self, z):
        return z.new_zeros(len(z))  # PETS plans over a finite horizon, no terminal value

    def pi(self, z):
        raise NotImplementedError("PETS has no policy prior: plan with use_prior=False")


class PETSAgent:
    """Receding-horizon control: plan through the ensemble at every step, act with the first action, warm-start
    the next call with the shifted plan. act(obs [D] numpy) -> action [A] numpy."""

    def __init__(self, ensemble: GaussianEnsemble, planner: PlannerParams, action_dim: int, particles: int,
                 propagation: Propagation = "ts_inf", penalty: float = 0.0, reward_fn=None, seed: int = 0):
        if planner.use_prior:
            raise ValueError("planner.use_prior must be false for PETS (no policy prior)")
        self.device = next(ensemble.parameters()).device
        self.generator = torch.Generator().manual_seed(seed)
        self.model = ParticleModel(ensemble, particles, propagation, penalty, reward_fn, self.generator)
        self.ens, self.planner, self.action_dim = ensemble, planner, action_dim
        self.prev_mean = None

    def reset(self):
        self.prev_mean = None

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        z = self.model.start(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        noise_gen = self.generator if self.device.type == "cpu" else None
        action, mean, _ = plan(self.model, z, self.planner, self.action_dim, 1.0, self.prev_mean, noise_gen)
        self.model._last = None
        self.prev_mean = shift(mean)
        return action.cpu().numpy()
