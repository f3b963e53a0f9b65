"""The recurrent state-space model (RSSM) of PlaNet and Dreamer: a deterministic GRU state h and a stochastic
latent z, with a prior p(z | h) for imagination and a posterior q(z | h, embed(o)) for learning.

    h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])      prior p(z_t | h_t)      posterior q(z_t | h_t, e_t)

The latent comes in three kinds (`latent`):
    categorical     Dreamer v2/v3: `stoch` one-hot variables of `classes` classes, straight-through gradients,
                    optionally mixed with `unimix` of the uniform distribution (v3: 1%)
    gaussian        Dreamer v1: `stoch` Gaussian dimensions, std = softplus(.) + min_std
    deterministic   the "no stochastic latent" ablation: z is the mean of a unit-variance Gaussian, never
                    sampled, so the KL reduces to half the squared distance between prior and posterior means
A state is the pair (h [..., deter], z [..., stoch_size]); distribution parameters ("stats") are flat tensors.
"""
import torch
import torch.distributions as D
import torch.nn as nn
import torch.nn.functional as F

LATENTS = ("categorical", "gaussian", "deterministic")


def mlp(inp: int, hidden: int, out: int, layers: int) -> nn.Sequential:
    """`layers` hidden layers of Linear -> LayerNorm -> SiLU, then a Linear to `out` (no output layer if out=0)."""
    mods, width = [], inp
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        width = hidden
    if out:
        mods.append(nn.Linear(width, out))
    return nn.Sequential(*mods)


class RSSM(nn.Module):
    def __init__(self, action_dim: int, embed_dim: int, deter: int = 128, hidden: int = 128, stoch: int = 16,
                 classes: int = 16, latent: str = "categorical", unimix: float = 0.01, min_std: float = 0.1):
        super().__init__()
        if latent not in LATENTS:
            raise ValueError(f"latent must be one of {LATENTS}, got {latent!r}")
        self.latent, self.stoch, self.classes, self.unimix, self.min_std = latent, stoch, classes, unimix, min_std
        self.deter = deter
        self.stoch_size = stoch * classes if latent == "categorical" else stoch
        stats = self.stoch_size if latent == "categorical" else 2 * stoch
        self.img_in = mlp(self.stoch_size + action_dim, hidden, 0, 1)
        self.gru = nn.GRUCell(hidden, deter)
        self.prior_net = mlp(deter, hidden, stats, 1)
        self.post_net = mlp(deter + embed_dim, hidden, stats, 1)

    @property
    def feature_size(self) -> int:
        return self.deter + self.stoch_size

    def initial(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The all-zero state of `batch` sequences: h [B, deter], z [B, stoch_size]."""
        w = self.gru.weight_hh
        return w.new_zeros(batch, self.deter), w.new_zeros(batch, self.stoch_size)

    def dist(self, stats: torch.Tensor) -> D.Distribution:
        """The latent distribution of flat `stats` [..., S]; its samples are flat z [..., stoch_size]."""
        if self.latent == "categorical":
            logits = stats.unflatten(-1, (self.stoch, self.classes))
            probs = logits.softmax(-1)
            if self.unimix:
                probs = (1 - self.unimix) * probs + self.unimix / self.classes
            sample = D.OneHotCategoricalStraightThrough(probs=probs, validate_args=False)
            return D.Independent(sample, 1, validate_args=False)
        mean, std = stats.chunk(2, -1)
        if self.latent == "deterministic":
            return D.Independent(D.Normal(mean, torch.ones_like(mean), validate_args=False), 1, validate_args=False)
        normal = D.Normal(mean, F.softplus(std) + self.min_std, validate_args=False)
        return D.Independent(normal, 1, validate_args=False)

    def sample(self, stats: torch.Tensor, mode: bool = False) -> torch.Tensor:
        """z [..., stoch_size]: a reparameterised (straight-through) sample, or the mode / mean."""
        if self.latent == "deterministic":
            return stats.chunk(2, -1)[0]
        dist = self.dist(stats)
        if self.latent == "categorical":
            if mode:
                probs = dist.base_dist.probs
                return F.one_hot(probs.argmax(-1), self.classes).to(probs).flatten(-2)
            return dist.rsample().flatten(-2)
        return dist.mean if mode else dist.rsample()

    def img_step(self, h, z, action):
        """One imagined step: (h, z, a) -> (h', prior stats)."""
        h = self.gru(self.img_in(torch.cat([z, action], -1)), h)
        return h, self.prior_net(h)

    def obs_step(self, h, z, action, embed):
        """One observed step: (h, z, a, e) -> (h', prior stats, posterior stats)."""
        h, prior = self.img_step(h, z, action)
        return h, prior, self.post_net(torch.cat([h, embed], -1))

    def observe(self, embed, prev_action, h=None, z=None):
        """Filter a sequence: embed [T, B, E], prev_action [T, B, A] (the action before each observation; zeros
        at the start) -> h [T, B, deter], z [T, B, stoch_size], prior and posterior stats [T, B, S]."""
        if h is None:
            h, z = self.initial(embed.shape[1])
        hs, zs, priors, posts = [], [], [], []
        for e, a in zip(embed, prev_action):
            h, prior, post = self.obs_step(h, z, a, e)
            z = self.sample(post)
            hs.append(h), zs.append(z), priors.append(prior), posts.append(post)
        return torch.stack(hs), torch.stack(zs), torch.stack(priors), torch.stack(posts)

    def imagine(self, h, z, actions):
        """Open-loop prediction from (h, z) [B, ...] under given actions [H, B, A]: h, z [H, B, ...] (prior samples)."""
        hs, zs = [], []
        for a in actions:
            h, prior = self.img_step(h, z, a)
            z = self.sample(prior)
            hs.append(h), zs.append(z)
        return torch.stack(hs), torch.stack(zs)


def kl_loss(rssm: RSSM, post: torch.Tensor, prior: torch.Tensor, dyn_scale: float, rep_scale: float,
            free_nats: float, free_avg: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """KL balancing (Dreamer v2/v3): dyn_scale * max(free, KL(sg(q) || p)) + rep_scale * max(free, KL(q || sg(p))).
    The free nats clip each element's KL before averaging over the leading dims (v3: danijar/dreamerv3 423291a9,
    nets.py:162-186), or, with `free_avg`, the average (v1: danijar/dreamer dreamer.py, `tf.maximum(
    tf.reduce_mean(div), free_nats)`; v2: `free_avg: True` in danijar/dreamerv2's configs.yaml). The dynamics term
    trains the prior, the representation term the posterior; dyn_scale = rep_scale = beta is the unbalanced
    KL(q || p) of Dreamer v1 with weight beta. Returns (loss, the KL value before clipping)."""
    dyn = D.kl_divergence(rssm.dist(post.detach()), rssm.dist(prior))
    rep = D.kl_divergence(rssm.dist(post), rssm.dist(prior.detach()))
    if free_avg:
        loss = dyn_scale * dyn.mean().clamp(min=free_nats) + rep_scale * rep.mean().clamp(min=free_nats)
    else:
        loss = dyn_scale * dyn.clamp(min=free_nats).mean() + rep_scale * rep.clamp(min=free_nats).mean()
    return loss, dyn.mean().detach()
