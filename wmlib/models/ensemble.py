"""PETS's probabilistic ensemble (Chua et al., 2018): B Gaussian MLPs predicting the state delta and the reward.

One member maps (s, a) to a diagonal Gaussian over y = [s' - s, r]. All B members run in one batched forward
through `EnsembleLinear` (wmlib.models.latent_model): inputs [N, in] (shared) or [B, N, in] (one slice per
member) -> mean, log-variance [B, N, out]. Inputs and targets are standardised with the training set's mean and
std (`Standardise`); the network works in standardised units and `distribution` maps back to raw units.

The log-variance is softly bounded between per-member parameters (PETS appendix A.1; mbrl-lib
mbrl/models/gaussian_mlp.py:152-153):
    logvar = max_logvar - softplus(max_logvar - raw);  logvar = min_logvar + softplus(logvar - min_logvar)
and the loss adds 0.01 (max_logvar - min_logvar) so the bounds tighten around the data (gaussian_mlp.py:304).
The likelihood is torch.distributions.Normal's; the loss averages over batch and output dims and sums over
members (gaussian_mlp.py:299-303). `deterministic=True` is the PETS paper's "DE" ablation: means only, MSE.

`fit` trains every member on its own bootstrap (n indices drawn with replacement from the n training
transitions; mbrl-lib's BootstrapIterator, mbrl/util/replay_buffer.py:146-157, with permute_indices=False) and
stops on a holdout as mbrl-lib's ModelTrainer does (mbrl/models/model_trainer.py:160-211): after each epoch
each member's holdout MSE is compared with its best so far, and training stops once no member improved by more
than 1% (relative) for `patience` epochs. Unlike mbrl-lib, which keeps one snapshot of all members from the
last epoch in which any improved, each member here keeps its own best weights.
"""
import copy
from collections import deque

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal

from ..params import StrictParams
from .latent_model import EnsembleLinear


class EnsembleParams(StrictParams):
    """The ensemble and its training (wmlib.models.ensemble); mbrl-lib's PETS defaults in brackets."""
    members: int = 5             # B [7, of which 5 elites]
    hidden: int = 200            # [200]
    layers: int = 4              # hidden layers [4]
    deterministic: bool = False  # the "DE" ablation: no variance head, MSE loss
    min_logvar: float = -10.0    # initial soft bounds of the log-variance, standardised units [-10, 0.5]
    max_logvar: float = 0.5
    learn_bounds: bool = True    # PETS learns the bounds [mbrl-lib: false]
    lr: float = 1e-3
    weight_decay: float = 5e-5
    batch_size: int = 256
    holdout: float = 0.1         # fraction of transitions held out for early stopping
    max_holdout: int = 5000      # at most this many (PETS's TF code)
    patience: int = 5            # epochs without a >1% improvement of any member before stopping
    max_epochs: int = 50


class Standardise(nn.Module):
    """x -> (x - mean) / std with the statistics of the data it was `fit` to (std floored at 1e-6)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x):
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(self.std))

    def forward(self, x):
        return (x - self.mean) / self.std

    def inverse(self, y):
        return y * self.std + self.mean


def bootstrap_indices(n: int, members: int, generator=None) -> torch.Tensor:
    """[members, n] indices into n transitions, each row drawn uniformly with replacement (one bootstrap each)."""
    return torch.randint(n, (members, n), generator=generator)


def soft_bound(raw, min_logvar, max_logvar):
    """The PETS soft clamp of a raw log-variance between min_logvar and max_logvar (both differentiable)."""
    logvar = max_logvar - F.softplus(max_logvar - raw)
    return min_logvar + F.softplus(logvar - min_logvar)


class GaussianEnsemble(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, members: int = 5, hidden: int = 200, layers: int = 4,
                 deterministic: bool = False, min_logvar: float = -10.0, max_logvar: float = 0.5,
                 learn_bounds: bool = True):
        super().__init__()
        if layers < 0 or members < 1:
            raise ValueError(f"need members >= 1 and layers >= 0, got members={members}, layers={layers}")
        self.obs_dim, self.action_dim, self.members = obs_dim, action_dim, members
        self.out_dim, self.deterministic = obs_dim + 1, deterministic
        dims = [obs_dim + action_dim] + [hidden] * layers
        body = []
        for i in range(layers):  # SiLU, as mbrl-lib's gaussian_mlp_ensemble.yaml
            body += [EnsembleLinear(members, dims[i], dims[i + 1]), nn.SiLU()]
        self.body = nn.Sequential(*body)
        self.head = EnsembleLinear(members, dims[-1], self.out_dim * (1 if deterministic else 2))
        self.linears = [*body[::2], self.head]  # a plain list (no new state_dict keys) for forward's loop
        bound = lambda v: nn.Parameter(torch.full((members, 1, self.out_dim), v), requires_grad=learn_bounds)  # noqa: E731
        self.min_logvar, self.max_logvar = bound(min_logvar), bound(max_logvar)
        self.in_norm, self.out_norm = Standardise(obs_dim + action_dim), Standardise(self.out_dim)

    def forward(self, x):
        """Standardised inputs [N, in] or [B, N, in] -> (mean, logvar) [B, N, out] in standardised target units;
        logvar is None for a deterministic ensemble."""
        h = x.expand(self.members, *x.shape) if x.dim() == 2 else x
        for layer in self.linears[:-1]:  # EnsembleLinear + SiLU without a module call per layer (planning's hot loop)
            h = F.silu(torch.baddbmm(layer.bias, h, layer.weight))
        out = torch.baddbmm(self.head.bias, h, self.head.weight)
        if self.deterministic:
            return out, None
        mean, raw = out.chunk(2, -1)
        return mean, soft_bound(raw, self.min_logvar, self.max_logvar)

    def inputs(self, obs, action):
        """obs [..., obs_dim], action [..., A] -> standardised model inputs [..., in]."""
        return self.in_norm(torch.cat([obs, action], -1))

    def targets(self, obs, action, next_obs, reward):
        """Raw transitions -> standardised targets [N, obs_dim + 1]: the state delta and the reward."""
        return self.out_norm(torch.cat([next_obs - obs, reward.unsqueeze(-1)], -1))

    def distribution(self, obs, action) -> Normal:
        """Every member's predictive Gaussian over [s' - s, r] in raw units: batch shape [B, N, out].
        A deterministic ensemble gets a scale of 1e-6 (a point mass)."""
        mean, logvar = self(self.inputs(obs, action))
        std = torch.full_like(mean, 1e-6) if logvar is None else (0.5 * logvar).exp()
        return Normal(self.out_norm.inverse(mean), std * self.out_norm.std)

    def loss(self, x, y):
        """Standardised inputs and targets [B, N, ·] -> the summed-over-members loss and each member's mean NLL
        (or MSE) [B]: -log N(y; mean, exp(logvar)) averaged over batch and dims, plus the bounds term."""
        mean, logvar = self(x)
        if logvar is None:
            per_member = F.mse_loss(mean, y.expand_as(mean), reduction="none").mean((1, 2))
            return per_member.sum(), per_member
        per_member = -Normal(mean, (0.5 * logvar).exp()).log_prob(y).mean((1, 2))
        return per_member.sum() + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum()), per_member

    @torch.no_grad()
    def holdout_mse(self, x, y) -> torch.Tensor:
        """Each member's mean squared error of its mean on standardised data [N, ·] -> [B]."""
        return ((self(x)[0] - y) ** 2).mean((1, 2))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _member_state(model, member: int) -> dict:
    return {k: v[member].clone() for k, v in model.state_dict().items() if not k.endswith(("norm.mean", "norm.std"))}


def fit(model: GaussianEnsemble, obs, action, next_obs, reward, cfg: EnsembleParams, generator=None,
        optimizer=None) -> dict:
    """Train on transitions (obs [n, D], action [n, A], next_obs [n, D], reward [n]) with bootstraps and holdout
    early stopping (module docstring). Refits the standardisers on the training part; `optimizer` (Adam by
    default) may be kept between calls. Returns {epochs, train_loss, holdout_mse [B]}."""
    n = len(obs)
    perm = torch.randperm(n, generator=generator)
    n_hold = min(int(n * cfg.holdout), cfg.max_holdout) if n > 1 else 0
    hold, train = perm[:n_hold], perm[n_hold:]
    device = next(model.parameters()).device
    obs, action, next_obs, reward = (t.to(device) for t in (obs, action, next_obs, reward))
    model.in_norm.fit(torch.cat([obs[train], action[train]], -1))
    model.out_norm.fit(torch.cat([next_obs[train] - obs[train], reward[train].unsqueeze(-1)], -1))
    x, y = model.inputs(obs, action), model.targets(obs, action, next_obs, reward)
    xh, yh = (x[hold], y[hold]) if n_hold else (x[train], y[train])  # no holdout: score on the training set
    boot = train[bootstrap_indices(len(train), model.members, generator)]  # [B, n_train]
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best = model.holdout_mse(xh, yh)
    best_state = [_member_state(model, b) for b in range(model.members)]
    since, epoch, losses = 0, 0, deque(maxlen=10)  # the last batches' losses, read once at the end (no sync)
    for epoch in range(1, cfg.max_epochs + 1):
        order = boot.gather(1, torch.argsort(torch.rand(boot.shape, generator=generator), 1)).to(device)
        for i in range(0, order.shape[1], cfg.batch_size):
            idx = order[:, i:i + cfg.batch_size]                  # [B, batch]: each member its own batch
            loss, _ = model.loss(x[idx], y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
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
    return {"epochs": epoch, "train_loss": float(sum(loss.item() for loss in losses) / max(len(losses), 1)),
            "holdout_mse": best.tolist()}


def make_ensemble(obs_dim: int, action_dim: int, cfg: EnsembleParams) -> GaussianEnsemble:
    return GaussianEnsemble(obs_dim, action_dim, cfg.members, cfg.hidden, cfg.layers, cfg.deterministic,
                            cfg.min_logvar, cfg.max_logvar, cfg.learn_bounds)
