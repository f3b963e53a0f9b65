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

    def members_of(self, n: int, device=None) -> torch.Tensor:
        """[n * P] member index of each flat particle this step (flat j = sequence * P + particle)."""
        B = self.ens.members
        if self.propagation == "ts1":
            perm = torch.randperm(n * self.P, generator=self.generator).to(device)
            members = torch.empty_like(perm)
            members[perm] = torch.arange(n * self.P, device=device) % B
            return members
        return torch.arange(n * self.P, device=device) % B

    def step(self, s, a):
        """Particles s [M, D], actions a [M, A] -> (next states [M, D], rewards [M], disagreement [M])."""
        ens, B, M = self.ens, self.ens.members, len(s)
        x = ens.inputs(s, a)
        if self.propagation == "expectation" or self.penalty:
            mean_all, _ = ens(x)                                          # [B, M, out]
        if self.propagation == "expectation":
            y = mean_all.mean(0)
        else:
            members = self.members_of(M // self.P, s.device)
            order = torch.argsort(members, stable=True)                  # group the particles by member
            xs = x[order].view(B, M // B, -1)
            mean, logvar = ens(xs)
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
