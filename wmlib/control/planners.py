"""Sampling-based planners over a learned latent model: random shooting, CEM and MPPI (TD-MPC2's loop).

A planning call, for one observation's latent z:
  1. sample `samples` action sequences [H, A] from a Gaussian (mean warm-started from the previous plan),
     plus `policy_samples` sequences proposed by the policy prior rolled out in the model;
  2. roll every sequence out in latent space and score it: sum of discounted predicted rewards plus the
     discounted terminal value;
  3. re-weight: MPPI takes softmax(temperature * (score - max)) over the `elites` best, CEM weights the
     elites equally; the new mean and std are the weighted mean and std (std clamped to [min_std, max_std]);
  4. repeat for `iterations`; then `action: elite` (TD-MPC2, tdmpc2/tdmpc2.py `_plan` at e9f5932) draws one
     elite of the last iteration with probability w (its softmax weight; CEM: uniform) and returns its first
     action, `action: mean` (TD-MPC v1, PETS) returns the first action of the final mean. The caller adds
     std[0] x noise when exploring (TD-MPC2 adds it unless `eval_mode`).
Random shooting evaluates the same number of sequences, (samples + policy_samples) x iterations,
uniformly in [-1, 1] in one batch, and returns the first action of the best one.
The whole population and horizon are tensors on z's device: no Python loop over samples. `generator` (optional)
must live on that device too.

`model` needs: next(z, a) -> z', reward(z, a) -> [N], value(z) -> [N], pi(z) -> a distribution over actions; a
model with `episodic` true also terminated(z') -> [N] in {0, 1}: rewards and the terminal value after a predicted
termination count zero (TD-MPC2's `_estimate_value`).
"""
from typing import Literal

import torch
from pydantic import model_validator

from ..params import StrictParams


class PlannerParams(StrictParams):
    """A sampling planner's settings (wmlib.control.planners): the TD-MPC agent's, and the planner study's."""
    horizon: int
    iterations: int
    samples: int                 # Gaussian sequences per iteration
    policy_samples: int          # sequences proposed by the policy prior (none if use_prior is false)
    elites: int
    temperature: float           # MPPI: softmax(temperature * score) over the elites
    min_std: float
    max_std: float
    method: Literal["mppi", "cem", "shooting"] = "mppi"
    use_prior: bool = True
    action: Literal["elite", "mean"] = "elite"  # first action of an elite drawn by weight (TD-MPC2) or of the mean

    @model_validator(mode="after")
    def _sizes(self):
        for name in ("horizon", "iterations", "samples", "elites"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.elites > self.samples + self.policy_samples:
            raise ValueError(f"elites ({self.elites}) exceed samples + policy_samples")
        return self

    @property
    def evaluations(self) -> int:
        """Action sequences scored per planning call (each costs `horizon` model steps)."""
        return (self.samples + self.policy_samples) * self.iterations

    def replace(self, **changes) -> "PlannerParams":
        """A validated copy with `changes` applied (the planner study's method and prior switches)."""
        return type(self).model_validate({**self.model_dump(), **changes})


def rollout_returns(model, z, actions, discount: float):
    """z [latent] or [N, latent], actions [H, N, A] -> discounted return + terminal value [N]."""
    z = z.expand(actions.shape[1], -1) if z.dim() == 1 else z
    ret, gamma, alive, episodic = 0.0, 1.0, 1.0, getattr(model, "episodic", False)
    for a in actions:
        ret = ret + gamma * alive * model.reward(z, a)
        z = model.next(z, a)
        gamma *= discount
        if episodic:
            alive = alive * (1 - model.terminated(z))
    return ret + gamma * alive * model.value(z)


def draw_elite(elites, weights, generator=None):
    """elites [H, E, A], weights [E] (summing to 1) -> the first action [A] of one elite drawn with probability
    `weights` (TD-MPC2 draws it by Gumbel-max, the same distribution)."""
    i = torch.multinomial(weights, 1, generator=generator)
    return elites[0, i[0]]


def policy_proposals(model, z, n: int, horizon: int):
    """[H, n, A] action sequences from the policy prior rolled out in the model from z [latent]."""
    z = z.expand(n, -1)
    actions = []
    for _ in range(horizon):
        actions.append(model.pi(z).sample())
        z = model.next(z, actions[-1])
    return torch.stack(actions)


@torch.inference_mode()
def plan(model, z, cfg: PlannerParams, action_dim: int, discount: float, prev_mean=None, generator=None):
    """Plan from latent z [latent] with the settings `cfg` (PlannerParams), rewards discounted by
    `discount` per step. Returns (action [A], mean [H, A], std [H, A]); `mean` shifted by one step warm-starts
    the next call (`prev_mean`)."""
    H, A = cfg.horizon, action_dim
    n_prior = cfg.policy_samples if cfg.use_prior else 0
    n_gauss = cfg.samples + cfg.policy_samples - n_prior  # equal evaluations with or without the prior
    prior = policy_proposals(model, z, n_prior, H) if n_prior else z.new_zeros(H, 0, A)

    if cfg.method == "shooting":
        n = n_gauss * cfg.iterations
        uniform = torch.rand(H, n, A, generator=generator, device=z.device) * 2 - 1
        priors = prior.repeat(1, cfg.iterations, 1)
        actions = torch.cat([priors, uniform], 1)
        best = rollout_returns(model, z, actions, discount).argmax()
        mean = actions[:, best]
        return mean[0], mean, torch.full_like(mean, cfg.min_std)

    mean = z.new_zeros(H, A) if prev_mean is None else prev_mean.clone()
    std = z.new_full((H, A), cfg.max_std)
    for _ in range(cfg.iterations):
        noise = torch.randn(H, n_gauss, A, generator=generator, device=z.device)
        actions = torch.cat([prior, (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp(-1, 1)], 1)
        score = rollout_returns(model, z, actions, discount)
        elite_score, idx = score.topk(cfg.elites)
        elites = actions[:, idx]                                   # [H, elites, A]
        if cfg.method == "mppi":
            w = torch.softmax(cfg.temperature * (elite_score - elite_score.max()), 0)
        else:  # cem
            w = torch.full_like(elite_score, 1 / cfg.elites)
        mean = (w[None, :, None] * elites).sum(1)
        std = (w[None, :, None] * (elites - mean.unsqueeze(1)) ** 2).sum(1).sqrt().clamp(cfg.min_std, cfg.max_std)
    action = draw_elite(elites, w, generator) if cfg.action == "elite" else mean[0]
    return action, mean, std


def shift(mean):
    """Warm start: the plan [H, A] moved one step forward, with a zero action appended (as TD-MPC2 does)."""
    return torch.cat([mean[1:], torch.zeros_like(mean[:1])])
