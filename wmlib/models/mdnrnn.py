"""M: the MDN-RNN of World Models: an LSTM whose output is a mixture of Gaussians per z dim."""
import math

import torch
from torch import nn
from torch.distributions import Categorical


class MDNRNN(nn.Module):
    """LSTM over [z, action, extra] -> per z-dim mixture of `mixtures` Gaussians (+ optional done logit).

    TensorFlow's LSTM cell, which the paper used, has one bias vector and adds a constant
    forget-gate bias of 1; PyTorch's has two. The second (bias_hh) is frozen at that constant,
    so the trainable parameter count matches the paper: 422,368 for CarRacing (z 32, action 3,
    hidden 256, 5 mixtures) and 1,678,785 for Doom (z 64, action 1, extra 1, hidden 512, done head).
    """

    def __init__(self, z_size=32, action_size=3, hidden=256, mixtures=5, extra_inputs=0, done_head=False):
        super().__init__()
        self.z_size, self.mixtures, self.hidden, self.done_head = z_size, mixtures, hidden, done_head
        self.lstm = nn.LSTM(z_size + action_size + extra_inputs, hidden, batch_first=True)
        forget_bias = torch.zeros(4, hidden)
        forget_bias[1] = 1.0  # PyTorch gate order: input, forget, cell, output
        with torch.no_grad():
            self.lstm.bias_hh_l0.copy_(forget_bias.flatten())
        self.lstm.bias_hh_l0.requires_grad_(False)
        self.head = nn.Linear(hidden, z_size * mixtures * 3 + int(done_head))

    def forward(self, inputs, state=None):
        """inputs (B, T, z + action + extra) -> ((logits, mu, logstd), each (B, T, z, K), done_logit (B, T) or None),
        LSTM state."""
        out, state = self.lstm(inputs, state)
        return self.mixture_params(self.head(out)), state

    def mixture_params(self, y):
        """Split head output (..., z*3K [+1]) into the paper's layout: logits, means, log-stds."""
        k = self.mixtures
        done_logit = y[..., -1] if self.done_head else None
        mix = y[..., : self.z_size * 3 * k].unflatten(-1, (self.z_size, 3 * k))
        logits, mu, logstd = mix.split(k, dim=-1)
        return logits, mu, logstd, done_logit

    def cell(self) -> nn.LSTMCell:
        """An LSTMCell sharing this LSTM's weights: one step at a time, ~3x faster than the LSTM (acting)."""
        cell = nn.LSTMCell(self.lstm.input_size, self.hidden)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(cell, name, getattr(self.lstm, f"{name}_l0"))
        return cell

    def trainable_parameters(self):
        return [p for p in self.parameters() if p.requires_grad]


def mdn_nll(logits, mu, logstd, target):
    """Mean negative log-likelihood (nats per z dim) of target (..., z) under the mixture (..., z, K)."""
    x = target.unsqueeze(-1)
    log_normal = -0.5 * ((x - mu) / logstd.exp()).pow(2) - logstd - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(logits.log_softmax(-1) + log_normal, dim=-1).mean()


def sample_mixture(logits, mu, logstd, tau: float = 1.0):
    """Sample z (..., z) with temperature tau: mixture logits / tau, Gaussian noise scaled by sqrt(tau)."""
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    k = Categorical(logits=logits / tau).sample().unsqueeze(-1)
    mean = mu.gather(-1, k).squeeze(-1)
    std = logstd.gather(-1, k).squeeze(-1).exp()
    return mean + std * math.sqrt(tau) * torch.randn_like(mean)


@torch.inference_mode()
def imagine(model: MDNRNN, z0, actions, tau: float = 1.0):
    """Dream from z0 (z,) feeding actions (T, A): z (T + 1, z), each next z sampled at temperature tau."""
    z, state, out = z0.view(1, 1, -1), None, [z0]
    for a in actions:
        (logits, mu, logstd, _), state = model(torch.cat([z, a.view(1, 1, -1)], -1), state)
        z = sample_mixture(logits, mu, logstd, tau)
        out.append(z.view(-1))
    return torch.stack(out)
