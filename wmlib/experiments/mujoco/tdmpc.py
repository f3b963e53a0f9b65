"""The TD-MPC2-style agent: a latent model learned from replay, MPPI planning at every real step.

    agent = TDMPC(obs_dim, action_dim, params, discount)
    agent.act(obs, explore=True)          # plan with the model; explore adds the planner's std as noise
    agent.update(*buffer.sample(B, H))    # one gradient step of model, Q-ensemble and policy prior

On a task whose episodes terminate (`terminates` in mujoco.tasks) the model has TD-MPC2's termination head: trained
by binary cross-entropy on the replayed `terminated` flags, it masks the planner's rewards and terminal values after a
predicted termination (wmlib.control.planners), and the flags mask the TD target's bootstrap.
"""
import ctypes
import functools
import sys

import torch
import torch.nn.functional as F

from ...control.planners import PlannerParams, plan, shift
from ...models.latent_model import LatentModel
from .params import MujocoParams


def discount_for(episode_steps: int) -> float:
    """TD-MPC2's heuristic: horizon ~ episode length / 5 agent steps, clipped to [0.95, 0.995]."""
    frac = episode_steps / 5
    return min(max((frac - 1) / frac, 0.95), 0.995)


@functools.cache
def keep_freed_memory():
    """glibc's malloc: keep freed memory for reuse (heap not trimmed, mmap only above 32 MiB). Otherwise the update's
    temporaries of ~1 MB go back to the OS when freed and page-fault back in: ~2,000 faults per update at the default
    size, 8,000 at width 512. Process-wide, changes no result; does nothing without glibc."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if sys.platform == "linux" else None
    if mallopt is not None:
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        mallopt(M_MMAP_THRESHOLD, 32 << 20)
        mallopt(M_TRIM_THRESHOLD, 1 << 30)


class TDMPC:
    def __init__(self, obs_dim: int, action_dim: int, params: MujocoParams, discount: float, model=None,
                 device="cpu"):
        self.p, self.action_dim, self.discount, self.device = params.train, action_dim, discount, torch.device(device)
        model = LatentModel(obs_dim, action_dim, **params.model.model_dump()) if model is None else model
        self.model = model.to(self.device)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.planner = params.planner
        lr = self.p.lr
        # foreach: the same arithmetic as the per-tensor loop (the CPU's default) in a few batched ops
        self.optim = torch.optim.Adam([
            {"params": list(self.model.encoder_parameters()), "lr": lr * self.p.encoder_lr_scale},
            {"params": self.model.model_parameters()}], lr=lr, foreach=True)
        self.pi_optim = torch.optim.Adam(self.model.pi_parameters(), lr=lr, eps=1e-5, foreach=True)
        self.q_scale = torch.ones((), device=self.device)  # running (P95 - P5) of Q: normalises the policy loss
        self.prev_mean = None

    # --- acting -----------------------------------------------------------------------------------
    def reset(self):
        """Call at the start of an episode: the next plan starts cold."""
        self.prev_mean = None

    @torch.no_grad()
    def act(self, obs, explore: bool = False, planner: PlannerParams | None = None):
        """obs [obs_dim] (numpy or tensor) -> action [A] as numpy, in [-1, 1]."""
        self.model.eval()
        z = self.model.encode(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        action, mean, std = plan(self.model, z, planner or self.planner, self.action_dim, self.discount, self.prev_mean)
        self.prev_mean = shift(mean)
        if explore:
            action = (action + std[0] * torch.randn(self.action_dim, device=self.device)).clamp(-1, 1)
        return action.cpu().numpy()

    # --- learning ---------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, next_z, reward, terminated=None):
        """reward [H, B] + discount * (1 - terminated) * min of 2 random target Qs at (next_z, a ~ pi(next_z))."""
        action = self.model.pi(next_z).sample()
        bootstrap = self.discount * self.model.q(next_z, action, "min", target=True)
        return reward + (bootstrap if terminated is None else (1 - terminated) * bootstrap)

    def model_loss(self, obs, action, reward, terminated=None) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """obs [H+1, B, obs_dim], action [H, B, A], reward [H, B], terminated [H, B] (1 if the step ends the
        episode; None: never) -> (loss, parts (name -> detached scalar tensor), latents [H+1, B, latent])."""
        H, p, m = len(action), self.p, self.model
        with torch.no_grad():
            next_z = m.encode(obs[1:])
            td = self.td_target(next_z, reward, terminated)
        rho = p.rho ** torch.arange(H, dtype=torch.float32, device=self.device)
        zs = [m.encode(obs[0])]
        consistency = 0.0
        for t in range(H):
            zs.append(m.next(zs[-1], action[t]))
            consistency = consistency + rho[t] * F.mse_loss(zs[-1], next_z[t])
        zs = torch.stack(zs)
        reward_loss = (rho[:, None] * m.regression_loss(m.reward_logits(zs[:-1], action), reward)).mean(1).sum()
        value_loss = (rho[:, None] * m.regression_loss(m.q_logits(zs[:-1], action), td)).mean(-1).sum()
        consistency, reward_loss, value_loss = consistency / H, reward_loss / H, value_loss / (H * m.num_q)
        loss = p.consistency_coef * consistency + p.reward_coef * reward_loss + p.value_coef * value_loss
        parts = {"consistency": consistency.detach(), "reward": reward_loss.detach(), "value": value_loss.detach()}
        if m.episodic:  # TD-MPC2: unweighted BCE of the termination head on the predicted next latents
            flags = torch.zeros_like(reward) if terminated is None else terminated
            termination = F.binary_cross_entropy_with_logits(m.termination_logits(zs[1:]), flags)
            loss = loss + p.termination_coef * termination
            parts["termination"] = termination.detach()
        return loss, parts, zs

    def pi_loss(self, zs):
        """Maximise scaled Q of the prior's actions along the latents zs [H+1, B, latent], plus entropy."""
        dist = self.model.pi(zs)
        action = dist.rsample()
        log_prob = dist.log_prob(action).sum(-1)
        self.model.track_q_grad(False)  # the loss trains the prior only: no Q-ensemble weight gradients
        q = self.model.q(zs, action, "avg")
        self.model.track_q_grad(True)
        with torch.no_grad():
            spread = (torch.quantile(q[0], 0.95) - torch.quantile(q[0], 0.05)).clamp(min=1.0)
            self.q_scale.lerp_(spread, self.p.tau)
        rho = self.p.rho ** torch.arange(len(zs), dtype=torch.float32, device=self.device)
        return ((self.p.entropy_coef * log_prob - q / self.q_scale).mean(1) * rho).mean()

    def update(self, obs, action, reward, terminated=None) -> dict:
        """One gradient step on a batch of sub-trajectories (shapes as in `model_loss`) -> the losses as floats
        (one host sync)."""
        self.model.train()
        loss, parts, zs = self.model_loss(obs, action, reward, terminated)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        parts["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.p.grad_clip, foreach=True)
        self.optim.step()
        pi_loss = self.pi_loss(zs.detach())
        self.pi_optim.zero_grad(set_to_none=True)
        pi_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.pi_parameters(), self.p.grad_clip, foreach=True)
        self.pi_optim.step()
        self.pi_optim.zero_grad(set_to_none=True)  # as tdmpc2.py:230: the next clip norm sees its own loss only
        self.model.update_target(self.p.tau)
        parts["pi"] = pi_loss.detach()
        return dict(zip(parts, torch.stack(list(parts.values())).tolist()))

    # --- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optim": self.optim.state_dict(),
                "pi_optim": self.pi_optim.state_dict(), "q_scale": self.q_scale, "planner": self.planner.model_dump()}

    def load_state_dict(self, state: dict):
        self.model.load_state_dict(state["model"])
        self.optim.load_state_dict(state["optim"])
        self.pi_optim.load_state_dict(state["pi_optim"])
        for group in self.optim.param_groups + self.pi_optim.param_groups:
            group["foreach"] = True  # checkpoints from before foreach saved None (the same arithmetic)
        self.q_scale = state["q_scale"].to(self.device)
