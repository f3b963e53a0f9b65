"""M as an environment: the dream in which World Models trains its Doom controller.

A dream starts from the zero LSTM state and a z sampled from a stored first frame (mu, logvar).
Each step the agent sees [z, c, h] (M's LSTM cell and hidden state), picks a move in {-1, 0, +1}
(left, stay, right), and M samples the next z at temperature tau and says whether the agent died
(done probability > 0.5). Reward: +1 per step survived; episodes are capped at `max_steps`.

`BatchedDream` steps N dreams as one tensor operation (a whole CMA-ES population times its
rollouts); `DreamEnv` is one dream as a gymnasium environment.
"""
import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from .mdnrnn import MDNRNN


def done_loss(logit, target, weight: float = 10.0):
    """Mean binary cross-entropy of the done head, done = 1 targets weighted by `weight` (the paper: 10)."""
    return F.binary_cross_entropy_with_logits(logit, target, pos_weight=torch.tensor(weight))


def sample_next_z(logits, mu, logstd, tau: float, generator=None):
    """z (..., z) from per-dim mixtures (..., z, K) at temperature tau: component ~ softmax(logits / tau)
    (inverse-CDF draw, 3x faster than `Categorical.sample` on large batches), noise scaled by sqrt(tau); random
    numbers from `generator` (default: torch's global one). The same distribution as `mdnrnn.sample_mixture`."""
    cdf = (logits / tau).softmax(-1).cumsum(-1)
    u = torch.rand(cdf.shape[:-1] + (1,), device=logits.device, generator=generator)
    k = (u > cdf).sum(-1, keepdim=True).clamp_(max=logits.shape[-1] - 1)
    mean, std = mu.gather(-1, k).squeeze(-1), logstd.gather(-1, k).squeeze(-1).exp()
    return mean + std * tau ** 0.5 * torch.randn(mean.shape, device=mean.device, generator=generator)


def quantize_action(a):
    """Controller output in [-1, 1] -> move: -1 (left) below -1/3, +1 (right) above 1/3, else 0."""
    return (a > 1 / 3).float() - (a < -1 / 3).float()


class BatchedDream:
    """N dreams stepped together on M's device. obs (N, z + 2 * hidden) = [z, c, h]; actions (N,) what M takes
    as its action input (moves in {-1, 0, +1}, or continuous actions in [-1, 1]). Random numbers come from
    `generator` (on M's device; default: torch's global one)."""

    def __init__(self, mdnrnn: MDNRNN, initial_mu, initial_logvar, tau: float, max_steps: int, generator=None):
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        if not (mdnrnn.done_head and mdnrnn.lstm.input_size == mdnrnn.z_size + 2):
            raise ValueError("the dream needs M with a done head and inputs [z, move, restart flag]")
        self.model, self.cell = mdnrnn.eval(), mdnrnn.cell()
        self.device = next(mdnrnn.parameters()).device
        self.initial_mu = torch.as_tensor(initial_mu, dtype=torch.float32, device=self.device)
        self.initial_std = (0.5 * torch.as_tensor(initial_logvar, dtype=torch.float32, device=self.device)).exp()
        self.tau, self.max_steps, self.generator = tau, max_steps, generator
        self.obs_size = mdnrnn.z_size + 2 * mdnrnn.hidden

    @torch.inference_mode()
    def reset(self, n: int, starts=None) -> torch.Tensor:
        """Start n dreams, each from a random stored first frame (or from the first frames of indices `starts`
        (n,)); returns obs (n, obs_size)."""
        d, g = self.device, self.generator
        i = torch.randint(len(self.initial_mu), (n,), device=d, generator=g) if starts is None else \
            torch.as_tensor(starts, device=d)
        self.z = self.initial_mu[i] + self.initial_std[i] * torch.randn(n, self.model.z_size, device=d, generator=g)
        self.h, self.c = torch.zeros(n, self.model.hidden, device=d), torch.zeros(n, self.model.hidden, device=d)
        self.restart = torch.ones(n, 1, device=d)
        self.steps = torch.zeros(n, dtype=torch.long, device=d)
        return self.obs()

    def obs(self) -> torch.Tensor:
        return torch.cat([self.z, self.c, self.h], -1)

    @torch.inference_mode()
    def step(self, moves):
        """Advance every dream by one step with moves (N,); returns obs (N, obs_size), reward (N,), done (N,) bool
        (M predicts death, or the cap is reached; `self.died` (N,) tells the first)."""
        moves = torch.as_tensor(moves, dtype=torch.float32, device=self.device)
        x = torch.cat([self.z, moves.view(-1, 1), self.restart], -1)
        self.h, self.c = self.cell(x, (self.h, self.c))
        logits, mu, logstd, done_logit = self.model.mixture_params(self.model.head(self.h))
        self.z = sample_next_z(logits, mu, logstd, self.tau, self.generator)
        self.restart = torch.zeros_like(self.restart)
        self.steps += 1
        self.died = done_logit > 0  # sigmoid(logit) > 0.5
        done = self.died | (self.steps >= self.max_steps)
        return self.obs(), torch.ones(len(done), device=self.device), done

    def _keep(self, idx):
        self.z, self.h, self.c, self.restart, self.steps = (t[idx] for t in (self.z, self.h, self.c, self.restart,
                                                                             self.steps))

    @torch.inference_mode()
    def rollout(self, policy, n: int, starts=None) -> np.ndarray:
        """Run n dreams to the end with policy(obs (k, obs_size), alive (k,) indices) -> moves (k,), all on
        the dream's device, from random first frames (or those of `starts` (n,)). Returns frames survived (n,),
        numpy. Finished dreams leave the batch, so cost follows the survivors."""
        obs = self.reset(n, starts)
        alive = torch.arange(n, device=self.device)
        survived = np.zeros(n, np.int64)
        while len(alive):
            obs, _, done = self.step(policy(obs, alive))
            if done.any():  # compact only when a dream ended: `alive` keeps its identity otherwise
                survived[alive[done].cpu().numpy()] = self.steps[done].cpu().numpy()
                left = (~done).nonzero().squeeze(1)
                alive, obs = alive[left], obs[left]
                self._keep(left)
        return survived


def linear_policy(weights, device="cpu", quantize: bool = True):
    """The World Models controller for many candidates at once: weights (N, obs_size), one row per dream, put on
    `device` (the dream's); move = quantize(tanh(w . [z, c, h])) (no bias), or the continuous tanh(w . [z, c, h])
    with quantize=False (for M trained on continuous actions)."""
    w, rows = torch.as_tensor(weights, dtype=torch.float32, device=device), {}

    def policy(obs, alive):
        if rows.get("alive") is not alive:  # gather the survivors' rows once per change of `alive`
            rows.update(alive=alive, w=w[alive])
        a = torch.tanh((rows["w"] * obs).sum(-1))
        return quantize_action(a) if quantize else a
    return policy


class DreamEnv(gym.Env):
    """One dream as a gymnasium environment: obs [z, c, h] float32; Discrete(3) as in TakeCover
    (0 stay, 1 right, 2 left); reward +1 per step; terminated when M predicts death (also on the capped step),
    else truncated at max_steps. Its random numbers come from its own generator, seeded by `reset(seed=...)`
    (torch's global generator is left alone)."""

    MOVES = (0.0, 1.0, -1.0)  # TakeCover action index -> move

    def __init__(self, mdnrnn: MDNRNN, initial_mu, initial_logvar, tau: float = 1.15, max_steps: int = 2100):
        device = next(mdnrnn.parameters()).device
        self.generator = torch.Generator(device=device)
        self.dream = BatchedDream(mdnrnn, initial_mu, initial_logvar, tau, max_steps, self.generator)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.dream.obs_size,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self._seeded = False

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)  # seeds self.np_random (from the OS's entropy when seed is None, once)
        if seed is not None or not self._seeded:
            self.generator.manual_seed(int(self.np_random.integers(2**63)))
            self._seeded = True
        return self.dream.reset(1)[0].cpu().numpy(), {}

    def step(self, action):
        obs, reward, done = self.dream.step([self.MOVES[int(action)]])
        terminated = bool(self.dream.died[0])
        return obs[0].cpu().numpy(), float(reward[0]), terminated, bool(done[0]) and not terminated, {}
