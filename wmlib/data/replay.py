"""Replay of whole episodes, sampled as short sub-trajectories for multi-step model training."""
import math

import torch


class EpisodeBuffer:
    """Episodes of at most `length` agent steps; holds every episode of a run up to `capacity` real steps (the
    oldest are overwritten beyond that). Stored as obs [E, length + 1, *obs_shape] (float32 state vectors, or uint8
    frames: a quarter of the memory), action [E, length, A], reward [E, length], all on `device`, so that batches
    are built where the model trains (indices are drawn on the CPU, so a CPU run's stream never changes).

    An episode that terminated early (Hopper falling) is padded to `length` with an absorbing state: its terminal
    observation repeated, zero actions and rewards, and `terminated` 1 from its last real step on; windows start at
    real steps only, and may run on into the padding, where every target says "over, nothing more to gain". Short
    episodes take a whole slot each: the slots double (up to one per real step) rather than drop data that fits."""

    def __init__(self, capacity: int, length: int, obs_shape: tuple[int, ...], action_dim: int,
                 obs_dtype: torch.dtype = torch.float32, device="cpu"):
        self.length, self.capacity, self.device = length, capacity, torch.device(device)
        self.episodes = max(1, math.ceil(capacity / length))  # slots, grown by `_grow` for short episodes
        self.obs = torch.zeros(self.episodes, length + 1, *obs_shape, dtype=obs_dtype, device=device)
        self.action = torch.zeros(self.episodes, length, action_dim, device=device)
        self.reward = torch.zeros(self.episodes, length, device=device)
        self.terminated = torch.zeros(self.episodes, length, device=device)
        self.steps = torch.zeros(self.episodes, dtype=torch.long)  # real steps per episode (CPU: indices)
        self.added = 0  # episodes ever added

    def _grow(self, slots: int):
        """Room for `slots` episodes, keeping those stored."""
        more = slots - self.episodes
        for name in ("obs", "action", "reward", "terminated", "steps"):
            x = getattr(self, name)
            setattr(self, name, torch.cat([x, x.new_zeros(more, *x.shape[1:])]))
        self.episodes = slots

    def __len__(self) -> int:
        return min(self.added, self.episodes)

    def add(self, obs, action, reward, terminated: bool = False):
        """One episode: obs [T + 1, *obs_shape], action [T, A], reward [T], T = `length` unless it `terminated`
        (then T <= length and the rest is padded with the absorbing state)."""
        T = len(action)
        shapes_ok = (tuple(obs.shape) == (T + 1, *self.obs.shape[2:]) and tuple(action.shape[1:]) == (
            self.action.shape[2],) and len(reward) == T)
        if not shapes_ok or not (T == self.length or (terminated and 1 <= T < self.length)):
            raise ValueError(f"episode of shape obs {tuple(obs.shape)}, action {tuple(action.shape)} (terminated: "
                             f"{terminated}); the buffer holds obs {tuple(self.obs.shape[1:])}, action "
                             f"{tuple(self.action.shape[1:])}, fewer steps only for an episode that terminated")
        if self.added == self.episodes and int(self.steps.sum()) + T <= self.capacity:  # full, never wrapped
            self._grow(min(2 * self.episodes, self.capacity))
        i = self.added % self.episodes
        self.obs[i, :T + 1], self.obs[i, T + 1:] = obs, obs[-1]
        self.action[i].zero_(), self.reward[i].zero_(), self.terminated[i].zero_()
        self.action[i, :T], self.reward[i, :T] = action, reward
        if terminated:
            self.terminated[i, T - 1:] = 1
        self.steps[i] = T
        self.added += 1

    def sample(self, batch: int, horizon: int, generator=None):
        """`batch` windows of `horizon` steps from episodes drawn uniformly, each starting at a uniform real step
        (at most length - horizon): obs [horizon + 1, B, *obs_shape], action [horizon, B, A], reward [horizon, B],
        terminated [horizon, B] (1 where the step ends the episode or lies beyond its end)."""
        if not len(self):
            raise ValueError("the replay buffer is empty")
        if horizon > self.length:
            raise ValueError(f"horizon {horizon} is longer than an episode ({self.length} steps)")
        ep = torch.randint(len(self), (batch, 1), generator=generator)
        starts = self.steps[ep].clamp(max=self.length - horizon + 1)  # how many windows start at a real step
        t = (torch.rand(batch, 1, generator=generator) * starts).long() + torch.arange(horizon + 1)
        ep, t = ep.to(self.device), t.to(self.device)
        return (self.obs[ep, t].transpose(0, 1), self.action[ep, t[:, :-1]].transpose(0, 1),
                self.reward[ep, t[:, :-1]].transpose(0, 1), self.terminated[ep, t[:, :-1]].transpose(0, 1))

    def state_dict(self) -> dict:
        n = len(self)
        return {"obs": self.obs[:n].clone(), "action": self.action[:n].clone(), "reward": self.reward[:n].clone(),
                "terminated": self.terminated[:n].clone(), "steps": self.steps[:n].clone(), "added": self.added,
                "slots": self.episodes}

    def load_state_dict(self, state: dict):
        n = len(state["obs"])
        if state.get("slots", n) > self.episodes:
            self._grow(state.get("slots", n))
        self.obs[:n], self.action[:n], self.reward[:n] = state["obs"], state["action"], state["reward"]
        if "terminated" in state:
            self.terminated[:n], self.steps[:n] = state["terminated"], state["steps"]
        else:  # written before terminating tasks: every episode full
            self.terminated[:n], self.steps[:n] = 0, self.length
        self.added = state["added"]
