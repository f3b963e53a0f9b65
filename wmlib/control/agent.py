"""The World Models agent acting in a real environment: encode with V, act with C, remember with M."""
import numpy as np
import torch

from ..models.vae import frames_to_tensor


class WorldModelAgent:
    """Callable policy: uint8 frame (64, 64, 3) -> env action.

    use_h=True: C sees [z, h] with h the LSTM's hidden output (the full world model).
    use_h=False: C sees z only (the paper's "V only" ablation) and M is not needed.
    M is fed the env action, as in the rollouts it was trained on.
    """

    def __init__(self, vae, controller, to_env_action, mdnrnn=None, sample_z: bool = True):
        self.vae, self.controller, self.to_env_action = vae.eval(), controller.eval(), to_env_action
        self.mdnrnn = mdnrnn.eval() if mdnrnn is not None else None
        self.sample_z = sample_z
        self.reset()

    def reset(self):
        self.state = None
        self.h = torch.zeros(1, self.mdnrnn.hidden) if self.mdnrnn is not None else None

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        mu, logvar = self.vae.encode(frames_to_tensor(frame[None]))
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.sample_z else mu
        if self.mdnrnn is None:
            return self.to_env_action(self.controller(z)[0].numpy())
        action = self.to_env_action(self.controller(torch.cat([z, self.h], -1))[0].numpy())
        step_in = torch.cat([z, torch.as_tensor(action)[None]], -1)[:, None]
        _, self.state = self.mdnrnn.lstm(step_in, self.state)
        self.h = self.state[0][0]
        return action


def run_episode(env, policy, seed: int, early_stop: int = 0, record: bool = False):
    """One episode; returns (return, steps, frames or None).

    early_stop > 0 ends the episode after that many consecutive steps without positive reward
    (a training-time shortcut for hopeless candidates; evaluation always runs to the end).
    """
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    total, steps, since_reward, frames = 0.0, 0, 0, [] if record else None
    done = False
    while not done:
        if record:
            frames.append(obs)
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total, steps = total + float(reward), steps + 1
        since_reward = 0 if reward > 0 else since_reward + 1
        done = terminated or truncated or (early_stop > 0 and since_reward >= early_stop)
    return total, steps, (np.stack(frames) if record else None)
