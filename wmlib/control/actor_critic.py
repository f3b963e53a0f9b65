"""Dreamer's behaviour learning: an actor and a critic trained on imagined latent trajectories.

    R_t = r_t + gamma * c_t * ((1 - lambda) * v(s_{t+1}) + lambda * R_{t+1}),   R_H = v(s_H)   (lambda-returns)
    w_t = prod_{i=1..t} gamma * c_i                                              (weight of imagined state t)

The actor maximises w (R - v) / S (v3; v1/v2: w R) by backpropagating through the learned dynamics (continuous
actions), plus an entropy bonus; S = max(1, P95(R) - P5(R)) tracked by an EMA from 0 (Dreamer v3's return
normalisation; S = 1 without it). The critic regresses R (two-hot cross-entropy in v3, a unit Gaussian in v1/v2).

DreamerV3's reference behaviour, from danijar/dreamerv3 at 423291a9 (2023-05-12, the commit whose scores are in
reference/published/dreamerv3_2023.csv): the return scale `Moments(impl='perc_ema')` with low and high starting at
0 (dreamerv3/jaxutils.py:227-260, update 287-290, stats 312-315; configs.yaml:94 decay 0.99, max 1); the actor loss
-(ret - base) / scale - actent * entropy, times the weight (agent.py:278-301); the actor `Normal(tanh(out), std)`
with std = (max - min) sigmoid(std + 2) + min and its analytic entropy (nets.py:484-491); returns bootstrap from the
fast critic (agent.py:359-372, `score` uses self.net) and the critic loss adds slowreg x -log p(slow critic's mean)
(agent.py:339-357, configs.yaml:91-93); the weight cumprod(discount * cont) / discount (agent.py:196-197).
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


def imagination_weights(cont: torch.Tensor, gamma: float) -> torch.Tensor:
    """cont [H, N] (of the step into state t + 1) -> w [H, N], w_t = prod_{i<t} gamma * cont_i (w_0 = 1): how much
    imagined state t counts, the discounted probability that the episode reaches it (DreamerV3 agent.py:196-197)."""
    return torch.cumprod(torch.cat([torch.ones_like(cont[:1]), gamma * cont[:-1]]), 0)


def actor_loss(returns, value, scale, entropy, weight, entropy_coef: float, advantage: bool) -> torch.Tensor:
    """returns, value, entropy, weight [H, N] -> -mean(w ((R - v) / S + eta H)) (v3: `advantage`) or
    -mean(w (R / S + eta H)) (v1/v2: no baseline). The baseline v carries no gradient."""
    target = (returns - value.detach()) / scale if advantage else returns / scale
    return -(weight * (target + entropy_coef * entropy)).mean()


class Actor(nn.Module):
    """features [..., F] -> a Gaussian policy over actions in [-1, 1]^A (std in [min_std, max_std]): `normal`,
    DreamerV3's Normal(tanh(mu), std) with its analytic entropy (samples can leave [-1, 1]: the agent clips what it
    executes), or `tanh_normal`, tanh(Normal(mu, std)) (v1/v2; no closed-form entropy: -log p of the sample)."""

    def __init__(self, features: int, action_dim: int, hidden: int, layers: int, dist: str = "normal",
                 min_std: float = 0.1, max_std: float = 1.0):
        super().__init__()
        if dist not in ("normal", "tanh_normal"):
            raise ValueError(f"actor dist must be 'normal' or 'tanh_normal', got {dist!r}")
        self.net = mlp(features, hidden, 2 * action_dim, layers)
        self.dist, self.min_std, self.max_std = dist, min_std, max_std

    def forward(self, feat) -> D.Distribution:
        mean, std = self.net(feat).chunk(2, -1)
        std = (self.max_std - self.min_std) * torch.sigmoid(std + 2.0) + self.min_std
        if self.dist == "normal":
            return D.Independent(D.Normal(torch.tanh(mean), std, validate_args=False), 1, validate_args=False)
        normal = D.Normal(mean, std, validate_args=False)
        return D.Independent(D.TransformedDistribution(normal, D.TanhTransform(cache_size=1), validate_args=False), 1,
                             validate_args=False)

    def entropy(self, dist: D.Distribution, sample: torch.Tensor) -> torch.Tensor:
        """The policy's entropy [...]: analytic for `normal`, -log p(sample) for `tanh_normal`."""
        return dist.entropy() if self.dist == "normal" else -dist.log_prob(sample)

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
    """S = max(1, EMA of P95 - P5 of the returns) with the EMA starting at 0, Dreamer v3's normaliser for the
    actor's objective (DreamerV3 keeps EMAs of P5 and P95 from 0; the EMA of their difference is the same)."""

    def __init__(self, decay: float = 0.99):
        self.decay, self.range = decay, torch.zeros(())

    def update(self, returns: torch.Tensor) -> torch.Tensor:
        q = torch.quantile(returns.detach().flatten().float(), returns.new_tensor([0.05, 0.95], dtype=torch.float32))
        spread = q[1] - q[0]
        self.range = self.decay * self.range.to(spread) + (1 - self.decay) * spread
        return torch.clamp(self.range, min=1.0)

    def state_dict(self) -> dict:
        return {"range": self.range}

    def load_state_dict(self, state: dict):
        self.range = state["range"]


class ActorCritic(nn.Module):
    """Trains on imagined trajectories from a world model (wmlib.models.world_model.WorldModel)."""

    def __init__(self, features: int, action_dim: int, hidden: int, layers: int, two_hot: bool, num_bins: int,
                 bin_range: float, gamma: float, lam: float, entropy_coef: float, return_norm: bool,
                 slow_tau: float, actor_lr: float, critic_lr: float, grad_clip: float, actor_dist: str = "normal",
                 advantage: bool = True, slowreg: float = 1.0):
        """actor_dist, advantage, slowreg: DreamerV3's behaviour by default (module docstring); slowreg = 0 instead
        bootstraps the returns from the slow critic with no regulariser (a target network, as in Dreamer v2)."""
        super().__init__()
        self.actor = Actor(features, action_dim, hidden, layers, actor_dist)
        self.advantage, self.slowreg = advantage, slowreg
        self.critic = Critic(features, hidden, layers, two_hot, num_bins, bin_range)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.gamma, self.lam, self.entropy_coef = gamma, lam, entropy_coef
        self.slow_tau, self.grad_clip = slow_tau, grad_clip
        self.scale = ReturnScale() if return_norm else None
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=actor_lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=critic_lr, eps=1e-5)

    def imagine(self, world_model, h, z, horizon: int):
        """Roll the actor out in the prior for `horizon` steps from start states h, z [N, ...] ->
        features [H + 1, N, F], actions [H, N, A], entropies [H, N] (differentiable through the dynamics)."""
        rssm = world_model.rssm
        feats, actions, entropies = [torch.cat([h, z], -1)], [], []
        for _ in range(horizon):
            dist = self.actor(feats[-1].detach())
            a = dist.rsample()
            entropies.append(self.actor.entropy(dist, a)), actions.append(a)
            h, prior = rssm.img_step(h, z, a)
            z = rssm.sample(prior)
            feats.append(torch.cat([h, z], -1))
        return torch.stack(feats), torch.stack(actions), torch.stack(entropies)

    def update(self, world_model, h, z, horizon: int) -> dict:
        """One actor and one critic step from posterior start states h, z [N, ...] (detached here)."""
        feat, _, entropy = self.imagine(world_model, h.detach(), z.detach(), horizon)
        reward = world_model.reward(feat[1:])
        cont = world_model.cont(feat[1:])
        value = self.critic(feat) if self.slowreg else self.slow_critic(feat)  # what the returns bootstrap from
        returns = lambda_returns(reward, cont, value, self.gamma, self.lam)           # [H, N]
        weight = imagination_weights(cont, self.gamma).detach()
        scale = self.scale.update(returns) if self.scale is not None else 1.0
        loss = actor_loss(returns, value[:-1], scale, entropy, weight, self.entropy_coef, self.advantage)
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.actor.parameters()))
        nn.utils.clip_grad_norm_(self.actor.parameters(), self.grad_clip)
        self.actor_opt.step()

        critic_loss = self.critic_loss(feat[:-1].detach(), returns.detach(), weight)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), self.grad_clip)
        self.critic_opt.step()
        with torch.no_grad():
            for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters()):
                slow.lerp_(fast, self.slow_tau)
        return {"actor": loss.item(), "critic": critic_loss.item(), "return": returns.mean().item(),
                "entropy": entropy.mean().item(), "return_scale": float(scale)}

    def critic_loss(self, feat, returns, weight) -> torch.Tensor:
        """mean(w (-log p(R) + slowreg x -log p(slow critic's value))) over imagined states feat [H, N, F]."""
        loss = self.critic.loss(feat, returns)
        if self.slowreg:
            with torch.no_grad():
                slow = self.slow_critic(feat)
            loss = loss + self.slowreg * self.critic.loss(feat, slow)
        return (weight * loss).mean()
