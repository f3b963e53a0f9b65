"""The World Models agent acting in a real environment: encode with V, act with C, remember with M."""
import numpy as np
import torch

from ..models.vae import frames_to_tensor


class WorldModelAgent:
    """Callable policy: uint8 frame (64, 64, 3) -> env action (numpy). Runs on V's device (C and M are moved there).

    With `mdnrnn`, C sees [z, h], h being M's LSTM hidden output (the full world model); without,
    C sees z only (the paper's "V only" ablation). M is fed the env action, as in its training data.
    """

    def __init__(self, vae, controller, to_env_action, mdnrnn=None, sample_z: bool = True):
        self.device = next(vae.parameters()).device
        self.vae, self.controller, self.to_env_action = vae.eval(), controller.to(self.device).eval(), to_env_action
        self.mdnrnn = mdnrnn.to(self.device).eval() if mdnrnn is not None else None
        self.cell = mdnrnn.cell() if mdnrnn is not None else None
        self.sample_z = sample_z
        self.reset()

    def reset(self):
        """Zero M's LSTM state (1, hidden) x 2, on the agent's device."""
        self.state = None if self.cell is None else (torch.zeros(1, self.cell.hidden_size, device=self.device),) * 2

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        mu, logvar = self.vae.encode(frames_to_tensor(frame[None]).to(self.device))
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.sample_z else mu
        if self.mdnrnn is None:
            return self.to_env_action(self.controller(z)[0].cpu().numpy())
        action = self.to_env_action(self.controller(torch.cat([z, self.state[0]], -1))[0].cpu().numpy())
        self.state = self.cell(torch.cat([z, torch.as_tensor(action, device=self.device)[None]], -1), self.state)
        return action
