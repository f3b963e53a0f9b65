"""The World Models agent acting in real environments: encode with V, act with C, remember with M, for a batch of
episodes at once."""
import numpy as np
import torch

from ..models.vae import frames_to_tensor


class WorldModelAgent:
    """B episodes at once, each with its own C: uint8 frames (B, 64, 64, 3) -> env actions (B, A) (numpy).

    V encodes all B frames in one call, C (one weight matrix per episode, the flat layout of LinearController) and
    M's LSTM cell step all episodes in one call each, on V's device. z's noise comes from one generator per episode,
    seeded with the episode's seed, so an episode's actions do not depend on the episodes beside it (up to the last
    bits in which a batched matmul rounds differently from a single one). With `mdnrnn`, C sees [z, h], h being M's
    LSTM hidden output (the full world model); without, z only (the paper's "V only" ablation). M is fed the env
    action, as in its training data.
    """

    def __init__(self, vae, to_env_action, action_size: int, mdnrnn=None, sample_z: bool = True):
        self.device = next(vae.parameters()).device
        self.vae, self.to_env_action, self.action_size = vae.eval(), to_env_action, action_size
        self.mdnrnn = mdnrnn.to(self.device).eval() if mdnrnn is not None else None
        self.cell = mdnrnn.cell() if mdnrnn is not None else None
        self.sample_z = sample_z
        self.in_size = vae.z_size + (self.cell.hidden_size if self.cell is not None else 0)

    @property
    def n_params(self) -> int:
        """C's parameters per episode: in_size x A weights + A biases."""
        return (self.in_size + 1) * self.action_size

    def reset(self, params: np.ndarray, seeds: list[int]):
        """Start len(seeds) episodes: C's flat parameters (B, n_params) (or (n_params,) for all), zero LSTM states."""
        params = np.asarray(params, np.float32)
        if params.shape[-1] != self.n_params:
            raise ValueError(f"expected {self.n_params} controller parameters, got {params.shape[-1]}")
        params = np.broadcast_to(params, (len(seeds), self.n_params))
        flat = torch.as_tensor(params.copy(), device=self.device)
        n_weights = self.in_size * self.action_size
        self.weight = flat[:, :n_weights].reshape(-1, self.action_size, self.in_size)
        self.bias = flat[:, n_weights:]
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        hidden = self.cell.hidden_size if self.cell is not None else 0
        self.h, self.c = (torch.zeros(len(seeds), hidden, device=self.device) for _ in range(2))

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray, rows=None) -> np.ndarray:
        """frames (len(rows), 64, 64, 3) of the episodes `rows` (default: all, in order) -> their actions."""
        rows = torch.arange(len(self.generators)) if rows is None else torch.as_tensor(rows)
        mu, logvar = self.vae.encode(frames_to_tensor(frames).to(self.device))
        if self.sample_z:
            noise = torch.stack([torch.randn(mu.shape[1], generator=self.generators[i]) for i in rows.tolist()])
            mu = mu + noise.to(self.device) * (0.5 * logvar).exp()
        x = torch.cat([mu, self.h[rows]], -1) if self.cell is not None else mu
        out = torch.tanh(torch.bmm(self.weight[rows], x[:, :, None])[:, :, 0] + self.bias[rows])
        actions = np.stack([self.to_env_action(a) for a in out.cpu().numpy()])
        if self.cell is not None:
            a = torch.as_tensor(actions, device=self.device)
            self.h[rows], self.c[rows] = self.cell(torch.cat([mu, a], -1), (self.h[rows], self.c[rows]))
        return actions
