"""Replay of whole episodes, sampled as short sub-trajectories for multi-step model training."""
import math

import torch


class EpisodeBuffer:
    """Fixed-length episodes of `length` agent steps; holds every episode of a run up to `capacity` steps
    (the oldest are overwritten beyond that). Stored as obs [E, length + 1, *obs_shape] (float32 state vectors,
    or uint8 frames: a quarter of the memory), action [E, length, A], reward [E, length], all on `device`, so that
    batches are built where the model trains (indices are drawn on the CPU, so a CPU run's stream never changes)."""

    def __init__(self, capacity: int, length: int, obs_shape: tuple[int, ...], action_dim: int,
                 obs_dtype: torch.dtype = torch.float32, device="cpu"):
        self.length, self.episodes, self.device = length, max(1, math.ceil(capacity / length)), torch.device(device)
        self.obs = torch.zeros(self.episodes, length + 1, *obs_shape, dtype=obs_dtype, device=device)
        self.action = torch.zeros(self.episodes, length, action_dim, device=device)
        self.reward = torch.zeros(self.episodes, length, device=device)
        self.added = 0  # episodes ever added

    def __len__(self) -> int:
        return min(self.added, self.episodes)

    def add(self, obs, action, reward):
        """One episode: obs [length + 1, *obs_shape], action [length, A], reward [length]."""
        if tuple(action.shape) != tuple(self.action.shape[1:]) or tuple(obs.shape) != tuple(self.obs.shape[1:]):
            raise ValueError(f"episode of shape obs {tuple(obs.shape)}, action {tuple(action.shape)}; the buffer "
                             f"holds obs {tuple(self.obs.shape[1:])}, action {tuple(self.action.shape[1:])}")
        i = self.added % self.episodes
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.added += 1

    def sample(self, batch: int, horizon: int, generator=None):
        """`batch` windows of `horizon` steps: obs [horizon + 1, B, *obs_shape], action [horizon, B, A],
        reward [horizon, B]."""
        if not len(self):
            raise ValueError("the replay buffer is empty")
        if horizon > self.length:
            raise ValueError(f"horizon {horizon} is longer than an episode ({self.length} steps)")
        ep = torch.randint(len(self), (batch, 1), generator=generator).to(self.device)
        t = (torch.randint(self.length - horizon + 1, (batch, 1), generator=generator)
             + torch.arange(horizon + 1)).to(self.device)
        return (self.obs[ep, t].transpose(0, 1), self.action[ep, t[:, :-1]].transpose(0, 1),
                self.reward[ep, t[:, :-1]].transpose(0, 1))

    def state_dict(self) -> dict:
        n = len(self)
        return {"obs": self.obs[:n].clone(), "action": self.action[:n].clone(), "reward": self.reward[:n].clone(),
                "added": self.added}

    def load_state_dict(self, state: dict):
        n = len(state["obs"])
        self.obs[:n], self.action[:n], self.reward[:n] = state["obs"], state["action"], state["reward"]
        self.added = state["added"]
