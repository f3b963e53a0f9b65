"""Dreamer's world model: an observation encoder, the RSSM, and decoder, reward and continue heads on the
features [h, z]. One code path for Dreamer v1-v3, switched by `WorldModelConfig`.

    loss = recon_scale * -log p(o | h, z) - log p(r | h, z) - log p(c | h, z) + KL balancing (wmlib.models.rssm)

Observations are vectors [obs_dim] (symlog-squashed in v3) or 64x64 RGB frames [3, 64, 64] as uint8.
Rewards are predicted as a two-hot distribution over bins in symlog space (v3) or by a unit Gaussian (v1/v2).
"""
from dataclasses import dataclass

import torch
import torch.distributions as D
import torch.nn as nn

from .rssm import RSSM, kl_loss, mlp
from .twohot import bins, symlog, two_hot_decode, two_hot_loss


@dataclass(frozen=True)
class WorldModelConfig:
    deter: int = 128             # GRU state size
    hidden: int = 128            # MLP width
    stoch: int = 16              # latent variables
    classes: int = 16            # classes per categorical variable
    layers: int = 2              # hidden layers of the encoder, decoder and heads
    cnn_depth: int = 32          # channels of the first conv layer (pixels); x2 per layer
    latent: str = "categorical"  # categorical | gaussian | deterministic (wmlib.models.rssm)
    unimix: float = 0.01
    dyn_scale: float = 0.5       # KL(sg(q) || p): trains the prior
    rep_scale: float = 0.1       # KL(q || sg(p)): trains the posterior
    free_nats: float = 1.0
    free_avg: bool = False       # v1/v2: free nats clip the KL averaged over batch and time; v3: each element's
    recon_scale: float = 1.0
    symlog_obs: bool = True      # v3: reconstruct symlog(o) for vector observations
    two_hot: bool = True         # v3: two-hot reward (and value) heads
    num_bins: int = 255
    bin_range: float = 20.0      # bins span [-bin_range, bin_range] in symlog space


class ConvEncoder(nn.Module):
    """[..., 3, 64, 64] frames in [-0.5, 0.5] -> [..., 8 * depth * 4] (4 conv layers, kernel 4, stride 2)."""

    def __init__(self, depth: int):
        super().__init__()
        chans = [3, depth, 2 * depth, 4 * depth, 8 * depth]
        self.net = nn.Sequential(*[m for i in range(4) for m in (nn.Conv2d(chans[i], chans[i + 1], 4, 2), nn.SiLU())],
                                 nn.Flatten())
        self.out_dim = 8 * depth * 2 * 2

    def forward(self, x):
        return self.net(x.flatten(0, -4)).unflatten(0, x.shape[:-3])


class ConvDecoder(nn.Module):
    """[..., features] -> [..., 3, 64, 64] mean frame (transposed convs mirroring ConvEncoder, kernels 5-5-6-6)."""

    def __init__(self, features: int, depth: int):
        super().__init__()
        self.linear = nn.Linear(features, 32 * depth)
        chans, kernels = [32 * depth, 4 * depth, 2 * depth, depth, 3], [5, 5, 6, 6]
        mods = []
        for i, k in enumerate(kernels):
            mods += [nn.ConvTranspose2d(chans[i], chans[i + 1], k, 2)] + ([nn.SiLU()] if i < 3 else [])
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        y = self.linear(x.flatten(0, -2))[:, :, None, None]
        return self.net(y).unflatten(0, x.shape[:-1])


def preprocess_frames(obs: torch.Tensor) -> torch.Tensor:
    """uint8 frames [..., 64, 64, 3] -> float [..., 3, 64, 64] in [-0.5, 0.5]."""
    return obs.movedim(-1, -3).float() / 255 - 0.5


class WorldModel(nn.Module):
    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, cfg: WorldModelConfig = WorldModelConfig()):
        super().__init__()
        self.cfg, self.pixels = cfg, len(obs_shape) == 3
        if self.pixels:
            if tuple(obs_shape) != (64, 64, 3):
                raise ValueError(f"pixel observations must be 64x64x3 frames, got {tuple(obs_shape)}")
            self.encoder = ConvEncoder(cfg.cnn_depth)
            embed = self.encoder.out_dim
        elif len(obs_shape) == 1:
            self.encoder, embed = mlp(obs_shape[0], cfg.hidden, 0, cfg.layers), cfg.hidden
        else:
            raise ValueError(f"observations must be vectors or 64x64x3 frames, got shape {tuple(obs_shape)}")
        self.rssm = RSSM(action_dim, embed, cfg.deter, cfg.hidden, cfg.stoch, cfg.classes, cfg.latent, cfg.unimix)
        feat = self.rssm.feature_size
        self.decoder = (ConvDecoder(feat, cfg.cnn_depth) if self.pixels
                        else mlp(feat, cfg.hidden, obs_shape[0], cfg.layers))
        self.reward_head = mlp(feat, cfg.hidden, cfg.num_bins if cfg.two_hot else 1, cfg.layers)
        self.continue_head = mlp(feat, cfg.hidden, 1, cfg.layers)
        self.register_buffer("bins", bins(cfg.num_bins, -cfg.bin_range, cfg.bin_range))
        # v3: a zero-initialised reward output layer, so that early predictions are 0
        nn.init.zeros_(self.reward_head[-1].weight), nn.init.zeros_(self.reward_head[-1].bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def target(self, obs: torch.Tensor) -> torch.Tensor:
        """What the decoder reconstructs: frames in [-0.5, 0.5], or (symlog) state vectors."""
        if self.pixels:
            return preprocess_frames(obs)
        return symlog(obs) if self.cfg.symlog_obs else obs

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.target(obs))

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        """Predicted observation in the space of `target`."""
        return self.decoder(feat)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        out = self.reward_head(feat)
        return two_hot_decode(out, self.bins) if self.cfg.two_hot else out.squeeze(-1)

    def cont(self, feat: torch.Tensor) -> torch.Tensor:
        """Probability that the episode continues after this state."""
        return torch.sigmoid(self.continue_head(feat).squeeze(-1))

    def loss(self, obs, action, reward, cont=None):
        """obs [T + 1, B, ...], action [T, B, A], reward [T, B] (reward[t] follows action[t]), cont [T, B] (1 unless
        the episode terminated; all ones by default) -> loss, metrics, posterior state (h, z) [T + 1, B, ...]."""
        cfg = self.cfg
        prev_action = torch.cat([torch.zeros_like(action[:1]), action])
        h, z, prior, post = self.rssm.observe(self.embed(obs), prev_action)
        feat = torch.cat([h, z], -1)
        target = self.target(obs)
        event_dims = 3 if self.pixels else 1
        recon = -D.Independent(D.Normal(self.decode(feat), 1.0), event_dims).log_prob(target).mean()
        out = self.reward_head(feat[1:])
        if cfg.two_hot:
            reward_loss = two_hot_loss(out, reward, self.bins).mean()
        else:
            reward_loss = -D.Normal(out.squeeze(-1), 1.0).log_prob(reward).mean()
        cont = torch.ones_like(reward) if cont is None else cont
        cont_loss = -D.Bernoulli(logits=self.continue_head(feat[1:]).squeeze(-1)).log_prob(cont).mean()
        kl, kl_value = kl_loss(self.rssm, post, prior, cfg.dyn_scale, cfg.rep_scale, cfg.free_nats, cfg.free_avg)
        loss = cfg.recon_scale * recon + reward_loss + cont_loss + kl
        metrics = {"recon": recon.item(), "reward": reward_loss.item(), "cont": cont_loss.item(), "kl": kl_value.item()}
        return loss, metrics, (h, z)
