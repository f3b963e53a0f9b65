"""TD-MPC2's decoder-free latent world model: encoder, latent dynamics, reward, Q-ensemble, policy prior.

Shapes: obs [B, obs_dim], z [B, latent], a [B, action_dim] in [-1, 1]; Q-ensemble outputs [num_q, B].
Every head is an MLP of LayerNorm + Mish layers (Hansen et al., 2024). Two switches reproduce TD-MPC (v1)
choices so their effect can be measured: `simnorm` (latent normalised by a softmax over groups of 8)
and `two_hot` (reward and Q as discrete regression over bins in symlog space, else a scalar with MSE).
With `termination` (tasks whose episodes terminate: Hopper, Walker2d) a termination head classifies each latent as
terminal or not (TD-MPC2's `_termination`, an MLP on z trained with binary cross-entropy).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from .twohot import bins, two_hot_decode, two_hot_loss

LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


class SimNorm(nn.Module):
    """Softmax over consecutive groups of `group` latent dimensions: each group lies on a simplex.
    Written out (max, exp, sum) because F.softmax over many groups of 8 is ~5x slower on CPU."""

    def __init__(self, group: int = 8):
        super().__init__()
        self.group = group

    def forward(self, x):
        g = x.unflatten(-1, (x.shape[-1] // self.group, self.group))
        e = torch.exp(g - g.amax(-1, keepdim=True))
        return (e / e.sum(-1, keepdim=True)).flatten(-2)


def _tanh_softplus(s):
    """tanh(softplus(x)) = q / (2 - q) with q = s (2 - s), s = sigmoid(x): exact algebra, accurate and finite for
    every x (q in [0, 1])."""
    q = torch.rsub(s, 2).mul_(s)  # torch.rsub(s, 2) = 2 - s without the Python operator wrapper
    return q.div_(torch.rsub(q, 2))


class _CPUMish(torch.autograd.Function):
    """mish = x t with t = tanh(softplus(x)), derivative t + x (1 - t^2) sigmoid(x): on the CPU ~2-3x faster than
    F.mish forward and backward (a few cheap passes around one sigmoid)."""

    @staticmethod
    def forward(ctx, x):
        s = torch.sigmoid(x)
        t = _tanh_softplus(s)
        ctx.save_for_backward(x, s, t)
        return x * t

    @staticmethod
    def backward(ctx, grad):
        x, s, t = ctx.saved_tensors
        return torch.addcmul(t, x, (t * t).neg_().add_(1).mul_(s)).mul_(grad)


class Mish(nn.Module):
    """mish(x) = x tanh(softplus(x)), computed from sigmoid(x) (`_tanh_softplus`): ~3x faster than F.mish on the
    CPU, which matters inside the planner (without autograd, in place) and in the update (`_CPUMish`); with
    autograd the GPU keeps its fused F.mish."""

    def forward(self, x):
        if torch.is_grad_enabled():
            return _CPUMish.apply(x) if x.device.type == "cpu" else F.mish(x)
        return _tanh_softplus(torch.sigmoid(x)).mul_(x)


class EnsembleLinear(nn.Module):
    """[E, B, in] (or [B, in], shared by all members) -> [E, B, out]: E independent linear layers in one bmm."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x):
        if x.dim() == 2:
            x = x.expand(self.weight.shape[0], *x.shape)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    def __init__(self, members: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, out_act: nn.Module | None = None,
        dropout: float = 0.0, members: int | None = None) -> nn.Sequential:
    """`layers` hidden layers of Linear -> (Dropout on the first) -> LayerNorm -> Mish, then a linear output;
    with `out_act` the output layer is normed too (TD-MPC2's encoder and dynamics end in LayerNorm + SimNorm).
    `members` builds an ensemble of that many independent MLPs evaluated together ([E, B, out])."""
    def linear(i, o):
        return nn.Linear(i, o) if members is None else EnsembleLinear(members, i, o)

    def norm(d):
        return nn.LayerNorm(d) if members is None else EnsembleLayerNorm(members, d)

    mods, dims = [], [in_dim] + [hidden] * layers
    for i in range(layers):
        mods += [linear(dims[i], dims[i + 1])] + ([nn.Dropout(dropout)] if dropout and i == 0 else [])
        mods += [norm(dims[i + 1]), Mish()]
    mods.append(linear(dims[-1], out_dim))
    if out_act is not None:
        mods += [norm(out_dim), out_act]
    return nn.Sequential(*mods)


class LatentModel(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, latent: int = 512, hidden: int = 512, encoder_hidden: int = 256,
                 num_q: int = 5, num_bins: int = 101, vmin: float = -10.0, vmax: float = 10.0,
                 simnorm: bool = True, two_hot: bool = True, q_dropout: float = 0.01, termination: bool = False):
        super().__init__()
        if simnorm and latent % 8:
            raise ValueError(f"latent must be a multiple of the SimNorm group size 8, got {latent}")
        if num_q < 2:
            raise ValueError(f"num_q must be >= 2 (the TD target is the min of 2 random Qs), got {num_q}")
        self.action_dim, self.num_q, self.two_hot = action_dim, num_q, two_hot
        out = num_bins if two_hot else 1
        norm = SimNorm(8) if simnorm else nn.Identity()  # v1: no normalisation of the latent
        self._encoder = mlp(obs_dim, encoder_hidden, 1, latent, out_act=norm)
        self._dynamics = mlp(latent + action_dim, hidden, 2, latent, out_act=SimNorm(8) if simnorm else nn.Identity())
        self._reward = mlp(latent + action_dim, hidden, 2, out)
        self._pi = mlp(latent, hidden, 2, 2 * action_dim)
        self._termination = mlp(latent, hidden, 2, 1) if termination else None
        self.episodic = termination  # the planner masks rewards and values after a predicted termination
        self._qs = mlp(latent + action_dim, hidden, 2, out, dropout=q_dropout, members=num_q)
        self._target_qs = mlp(latent + action_dim, hidden, 2, out, dropout=q_dropout, members=num_q)
        for head in (self._reward, self._qs):  # zero-initialised output layers, as in TD-MPC2
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)
        self._target_qs.load_state_dict(self._qs.state_dict())
        self._target_qs.requires_grad_(False)
        self.register_buffer("centres", bins(num_bins, vmin, vmax) if two_hot else torch.zeros(1))

    def num_parameters(self) -> int:
        """Trainable parameters (the slow target Qs are a copy, not counted, as in TD-MPC2's model sizes)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # --- the model --------------------------------------------------------------------------------
    def encode(self, obs):
        return self._encoder(obs)

    def next(self, z, a):
        return self._dynamics(torch.cat([z, a], -1))

    def reward_logits(self, z, a):
        return self._reward(torch.cat([z, a], -1))

    def termination_logits(self, z):
        """z [..., latent] -> logit [...] that z is terminal (only with `termination`)."""
        return self._termination(z).squeeze(-1)

    def terminated(self, z):
        """z [N, latent] -> [N] 1.0 where z is predicted terminal (p > 0.5, as TD-MPC2's planner), else 0.0."""
        return (self.termination_logits(z) > 0).float()

    def q_logits(self, z, a, target: bool = False):
        """z [..., latent], a [..., A] -> [num_q, ..., bins]"""
        x = torch.cat([z, a], -1)
        out = (self._target_qs if target else self._qs)(x.reshape(-1, x.shape[-1]))
        return out.reshape(self.num_q, *x.shape[:-1], out.shape[-1])

    def pi(self, z) -> TransformedDistribution:
        """The policy prior: a tanh-squashed Gaussian over actions, [B, action_dim]."""
        mean, log_std = self._pi(z).chunk(2, -1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return TransformedDistribution(Normal(mean, log_std.exp(), validate_args=False), [TanhTransform(cache_size=1)],
                                       validate_args=False)

    # --- decoded scalars (what the planner uses) --------------------------------------------------
    def decode(self, logits):
        return two_hot_decode(logits, self.centres) if self.two_hot else logits.squeeze(-1)

    def regression_loss(self, logits, target):
        """[...] per-element loss of a reward/Q head against scalar targets."""
        if self.two_hot:
            return two_hot_loss(logits, target, self.centres)
        return (logits.squeeze(-1) - target) ** 2

    def reward(self, z, a):
        return self.decode(self.reward_logits(z, a))

    def q(self, z, a, kind: str = "avg", target: bool = False):
        """Q(z, a) [B]: 'avg' over 2 random members (TD-MPC2's policy and terminal value), 'min' of 2 random
        members (the TD target), or 'all' [num_q, B]."""
        qs = self.decode(self.q_logits(z, a, target))
        if kind == "all":
            return qs
        pair = qs[torch.randperm(self.num_q)[:2]]
        if kind == "min":
            return pair.min(0).values
        if kind == "avg":
            return pair.mean(0)
        raise ValueError(f"kind must be 'avg', 'min' or 'all', got {kind!r}")

    def value(self, z):
        """Terminal value for planning: Q(z, a) with a drawn from the policy prior, [B]."""
        return self.q(z, self.pi(z).sample(), "avg")

    @torch.no_grad()
    def update_target(self, tau: float):
        """Slow EMA copy of the Q-ensemble: target <- (1 - tau) target + tau online."""
        torch._foreach_lerp_(list(self._target_qs.parameters()), list(self._qs.parameters()), tau)

    def track_q_grad(self, mode: bool):
        """Whether the Q-ensemble's weights get gradients (off while the policy loss differentiates through Q)."""
        self._qs.requires_grad_(mode)

    def encoder_parameters(self):
        return self._encoder.parameters()

    def model_parameters(self):
        """Everything the model loss trains except the encoder (which gets a smaller learning rate)."""
        heads = (self._dynamics, self._reward, self._qs) + ((self._termination,) if self.episodic else ())
        return [p for m in heads for p in m.parameters()]

    def pi_parameters(self):
        return self._pi.parameters()
