"""Discrete regression (TD-MPC2, DreamerV3): a scalar is predicted as a distribution over bins in symlog space.

A target x becomes a "two-hot" vector: probability mass on the two bins that bracket symlog(x), split by
distance, so that the expected bin value recovers symlog(x) exactly. The loss is a cross-entropy, which is
insensitive to the scale of rewards and values.
"""
import torch
import torch.nn.functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def bins(num_bins: int, vmin: float, vmax: float) -> torch.Tensor:
    """[num_bins] evenly spaced bin centres in symlog space."""
    if num_bins < 2:
        raise ValueError(f"num_bins must be >= 2 for discrete regression, got {num_bins}")
    return torch.linspace(vmin, vmax, num_bins)


def two_hot(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[...] scalars -> [..., num_bins] two-hot targets over `centres` (symlog space; clipped to the range)."""
    y = symlog(x).clamp(centres[0], centres[-1])
    width = centres[1] - centres[0]
    pos = (y - centres[0]) / width
    lo = pos.floor().clamp(max=len(centres) - 2)
    upper = pos - lo                     # weight of the upper bin, in [0, 1]
    target = torch.zeros(*x.shape, len(centres), dtype=x.dtype, device=x.device)
    target.scatter_(-1, lo.long().unsqueeze(-1), (1 - upper).unsqueeze(-1))
    target.scatter_add_(-1, lo.long().unsqueeze(-1) + 1, upper.unsqueeze(-1))
    return target


def two_hot_decode(logits: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[..., num_bins] logits -> [...] scalars: symexp of the expected bin centre."""
    return symexp((logits.softmax(-1) * centres).sum(-1))


def two_hot_loss(logits: torch.Tensor, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[...] cross-entropy of `logits` against the two-hot target of `x`."""
    return -(two_hot(x, centres) * F.log_softmax(logits, -1)).sum(-1)
