"""Dreamer's behaviour learning: an actor and a critic trained on imagined latent trajectories.

    R_t = r_t + gamma * c_t * ((1 - lambda) * v(s_{t+1}) + lambda * R_{t+1}),   R_H = v(s_H)   (lambda-returns)

The actor maximises R / S by backpropagating through the learned dynamics (continuous actions), plus an
entropy bonus; S = max(1, P95(R) - P5(R)) tracked by an EMA (Dreamer v3's return normalisation; S = 1 without it).
The critic regresses R (two-hot cross-entropy in v3, a unit Gaussian in v1/v2); R bootstraps from a slow EMA copy.
"""
import copy

import torch
import torch.distributions as D
import torch.nn as nn

from ..models.rssm import mlp
from ..models.twohot import bins, two_hot_decode, two_hot_loss


def lambda_returns(reward, cont, value, gamma: float, lam: float) -> torch.Tensor:
    """reward, cont [H, N] (of the step into state t + 1), value [H + 1, N] (of state t) -> returns [H, N]."""
    returns, last = [], value[-1]
    for t in reversed(range(len(reward))):
        last = reward[t] + gamma * cont[t] * ((1 - lam) * value[t + 1] + lam * last)
        returns.append(last)
    return torch.stack(returns[::-1])


class Actor(nn.Module):
    """features [..., F] -> a tanh-squashed Gaussian over actions in [-1, 1]^A (std in [min_std, max_std])."""

    def __init__(self, features: int, action_dim: int, hidden: int, layers: int, min_std: float = 0.1,
                 max_std: float = 1.0):
        super().__init__()
        self.net = mlp(features, hidden, 2 * action_dim, layers)
        self.min_std, self.max_std = min_std, max_std

    def forward(self, feat) -> D.Distribution:
        mean, std = self.net(feat).chunk(2, -1)
        std = (self.max_std - self.min_std) * torch.sigmoid(std + 2.0) + self.min_std
        normal = D.Normal(mean, std, validate_args=False)
        return D.Independent(D.TransformedDistribution(normal, D.TanhTransform(cache_size=1), validate_args=False), 1,
                             validate_args=False)

    def mode(self, feat) -> torch.Tensor:
        return torch.tanh(self.net(feat).chunk(2, -1)[0])


class Critic(nn.Module):
    """features [..., F] -> value; two-hot over `num_bins` symlog bins, or a scalar."""

    def __init__(self, features: int, hidden: int, layers: int, two_hot: bool, num_bins: int, bin_range: float):
        super().__init__()
        self.two_hot = two_hot
        self.net = mlp(features, hidden, num_bins if two_hot else 1, layers)
        nn.init.zeros_(self.net[-1].weight), nn.init.zeros_(self.net[-1].bias)
        self.register_buffer("bins", bins(num_bins, -bin_range, bin_range))

    def forward(self, feat) -> torch.Tensor:
        out = self.net(feat)
        return two_hot_decode(out, self.bins) if self.two_hot else out.squeeze(-1)

    def loss(self, feat, target) -> torch.Tensor:
        out = self.net(feat)
        if self.two_hot:
            return two_hot_loss(out, target, self.bins)
        return -D.Normal(out.squeeze(-1), 1.0).log_prob(target)


class ReturnScale:
    """S = max(1, EMA of P95 - P5 of the returns), Dreamer v3's normaliser for the actor's objective."""

    def __init__(self, decay: float = 0.99):
        self.decay, self.range = decay, None

    def update(self, returns: torch.Tensor) -> torch.Tensor:
        q = torch.quantile(returns.detach().flatten().float(), returns.new_tensor([0.05, 0.95], dtype=torch.float32))
        spread = q[1] - q[0]
        self.range = spread if self.range is None else self.decay * self.range.to(spread) + (1 - self.decay) * spread
        return torch.clamp(self.range, min=1.0)

    def state_dict(self) -> dict:
        return {"range": self.range}

    def load_state_dict(self, state: dict):
        self.range = state["range"]


class ActorCritic(nn.Module):
    """Trains on imagined trajectories from a world model (wmlib.models.world_model.WorldModel)."""

    def __init__(self, features: int, action_dim: int, hidden: int, layers: int, two_hot: bool, num_bins: int,
                 bin_range: float, gamma: float, lam: float, entropy_coef: float, return_norm: bool,
                 slow_tau: float, actor_lr: float, critic_lr: float, grad_clip: float):
        super().__init__()
        self.actor = Actor(features, action_dim, hidden, layers)
        self.critic = Critic(features, hidden, layers, two_hot, num_bins, bin_range)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.gamma, self.lam, self.entropy_coef = gamma, lam, entropy_coef
        self.slow_tau, self.grad_clip = slow_tau, grad_clip
        self.scale = ReturnScale() if return_norm else None
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=actor_lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=critic_lr, eps=1e-5)

    def imagine(self, world_model, h, z, horizon: int):
        """Roll the actor out in the prior for `horizon` steps from start states h, z [N, ...] ->
        features [H + 1, N, F], actions [H, N, A], log-probs [H, N] (differentiable through the dynamics)."""
        rssm = world_model.rssm
        feats, actions, logps = [torch.cat([h, z], -1)], [], []
        for _ in range(horizon):
            dist = self.actor(feats[-1].detach())
            a = dist.rsample()
            logps.append(dist.log_prob(a)), actions.append(a)
            h, prior = rssm.img_step(h, z, a)
            z = rssm.sample(prior)
            feats.append(torch.cat([h, z], -1))
        return torch.stack(feats), torch.stack(actions), torch.stack(logps)

    def update(self, world_model, h, z, horizon: int) -> dict:
        """One actor and one critic step from posterior start states h, z [N, ...] (detached here)."""
        feat, _, logp = self.imagine(world_model, h.detach(), z.detach(), horizon)
        reward = world_model.reward(feat[1:])
        cont = world_model.cont(feat[1:])
        value = self.slow_critic(feat)
        returns = lambda_returns(reward, cont, value, self.gamma, self.lam)           # [H, N]
        weight = torch.cumprod(torch.cat([torch.ones_like(cont[:1]), cont[:-1]]), 0).detach()
        scale = self.scale.update(returns) if self.scale is not None else 1.0
        entropy = -logp
        actor_loss = -(weight * (returns / scale + self.entropy_coef * entropy)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=list(self.actor.parameters()))
        nn.utils.clip_grad_norm_(self.actor.parameters(), self.grad_clip)
        self.actor_opt.step()

        critic_loss = (weight * self.critic.loss(feat[:-1].detach(), returns.detach())).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), self.grad_clip)
        self.critic_opt.step()
        with torch.no_grad():
            for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters()):
                slow.lerp_(fast, self.slow_tau)
        return {"actor": actor_loss.item(), "critic": critic_loss.item(), "return": returns.mean().item(),
                "entropy": entropy.mean().item(), "return_scale": float(scale)}
