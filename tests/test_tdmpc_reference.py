"""TD-MPC's update and planning call against main's implementation before the CPU speed-ups (commit c788696),
copied here as the reference: same seeds, same losses, parameters and plans to float tolerance.

The reference runs on a deep copy of the agent's model whose Mish layers are the old ones (F.mish with autograd);
its optimisers are the per-tensor-loop Adam, its clipping and target update the per-tensor loops, and the policy
loss lets gradients reach the Q-ensemble's weights (they are discarded by the next update's zero_grad). One rule
changed after c788696 and is in the reference too: the policy's gradients are cleared after its step (TD-MPC2)."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from wmlib.control.planners import plan
from wmlib.experiments.mujoco.params import MujocoParams
from wmlib.experiments.mujoco.tdmpc import TDMPC
from wmlib.models.latent_model import LatentModel, Mish
from wmlib.params import load_params

OBS, ACT = 7, 2


# --- main's implementation (c788696) -------------------------------------------------------------------
class OldMish(nn.Module):
    def forward(self, x):
        if torch.is_grad_enabled():
            return F.mish(x)
        e = torch.exp(x.clamp(max=20.0))  # beyond 20, n / (n + 2) == 1 in float32
        n = e.mul_(e + 2)
        return n.div_(n + 2).mul_(x)


def old_rollout_returns(model, z, actions, discount):
    z = z.expand(actions.shape[1], -1) if z.dim() == 1 else z
    ret, gamma, alive, episodic = 0.0, 1.0, 1.0, getattr(model, "episodic", False)
    for a in actions:
        ret = ret + gamma * alive * model.reward(z, a)
        z = model.next(z, a)
        gamma *= discount
        if episodic:
            alive = alive * (1 - model.terminated(z))
    return ret + gamma * alive * model.value(z)


def old_policy_proposals(model, z, n, horizon):
    z = z.expand(n, -1)
    actions = []
    for _ in range(horizon):
        actions.append(model.pi(z).sample())
        z = model.next(z, actions[-1])
    return torch.stack(actions)


@torch.inference_mode()
def old_plan(model, z, cfg, action_dim, discount, prev_mean=None):  # MPPI / CEM branch, generator=None
    H, A = cfg.horizon, action_dim
    n_prior = cfg.policy_samples if cfg.use_prior else 0
    n_gauss = cfg.samples + cfg.policy_samples - n_prior
    prior = old_policy_proposals(model, z, n_prior, H) if n_prior else z.new_zeros(H, 0, A)
    mean = z.new_zeros(H, A) if prev_mean is None else prev_mean.clone()
    std = z.new_full((H, A), cfg.max_std)
    for _ in range(cfg.iterations):
        noise = torch.randn(H, n_gauss, A, device=z.device)
        actions = torch.cat([prior, (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp(-1, 1)], 1)
        score = old_rollout_returns(model, z, actions, discount)
        elite_score, idx = score.topk(cfg.elites)
        elites = actions[:, idx]
        if cfg.method == "mppi":
            w = torch.softmax(cfg.temperature * (elite_score - elite_score.max()), 0)
        else:
            w = torch.full_like(elite_score, 1 / cfg.elites)
        mean = (w[None, :, None] * elites).sum(1)
        std = (w[None, :, None] * (elites - mean.unsqueeze(1)) ** 2).sum(1).sqrt().clamp(cfg.min_std, cfg.max_std)
    action = elites[0, torch.multinomial(w, 1)[0]] if cfg.action == "elite" else mean[0]
    return action, mean, std


class OldAgent:
    """TDMPC's learning half as on main, on a copy of `agent`'s model with the old Mish."""

    def __init__(self, agent: TDMPC):
        self.p, self.discount, self.device = agent.p, agent.discount, agent.device
        self.model = copy.deepcopy(agent.model)
        for seq in self.model.modules():
            for name, child in seq.named_children():
                if isinstance(child, Mish):
                    setattr(seq, name, OldMish())
        lr = self.p.lr
        self.optim = torch.optim.Adam([
            {"params": list(self.model.encoder_parameters()), "lr": lr * self.p.encoder_lr_scale},
            {"params": self.model.model_parameters()}], lr=lr)
        self.pi_optim = torch.optim.Adam(self.model.pi_parameters(), lr=lr, eps=1e-5)
        self.q_scale = agent.q_scale.clone()

    @torch.no_grad()
    def td_target(self, next_z, reward, terminated=None):
        action = self.model.pi(next_z).sample()
        bootstrap = self.discount * self.model.q(next_z, action, "min", target=True)
        return reward + (bootstrap if terminated is None else (1 - terminated) * bootstrap)

    def model_loss(self, obs, action, reward, terminated=None):
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
        parts = {"consistency": consistency.item(), "reward": reward_loss.item(), "value": value_loss.item()}
        if m.episodic:
            flags = torch.zeros_like(reward) if terminated is None else terminated
            termination = F.binary_cross_entropy_with_logits(m.termination_logits(zs[1:]), flags)
            loss = loss + p.termination_coef * termination
            parts["termination"] = termination.item()
        return loss, parts, zs

    def pi_loss(self, zs):
        dist = self.model.pi(zs)
        action = dist.rsample()
        log_prob = dist.log_prob(action).sum(-1)
        q = self.model.q(zs, action, "avg")
        with torch.no_grad():
            spread = (torch.quantile(q[0], 0.95) - torch.quantile(q[0], 0.05)).clamp(min=1.0)
            self.q_scale.lerp_(spread, self.p.tau)
        rho = self.p.rho ** torch.arange(len(zs), dtype=torch.float32, device=self.device)
        return ((self.p.entropy_coef * log_prob - q / self.q_scale).mean(1) * rho).mean()

    def update(self, obs, action, reward, terminated=None):
        self.model.train()
        loss, parts, zs = self.model_loss(obs, action, reward, terminated)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        parts["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.p.grad_clip).item()
        self.optim.step()
        pi_loss = self.pi_loss(zs.detach())
        self.pi_optim.zero_grad(set_to_none=True)
        pi_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.pi_parameters(), self.p.grad_clip)
        self.pi_optim.step()
        self.pi_optim.zero_grad(set_to_none=True)  # adopted after c788696 (TD-MPC2's rule; tests/test_tdmpc.py)
        with torch.no_grad():
            for t, p in zip(self.model._target_qs.parameters(), self.model._qs.parameters()):
                t.lerp_(p, self.p.tau)
        return {**parts, "pi": pi_loss.item()}


# --- the comparison ------------------------------------------------------------------------------------
def agent_and_batch(termination: bool, num_q: int):
    p = load_params(MujocoParams, "smoke")
    torch.manual_seed(0)
    model = LatentModel(OBS, ACT, **{**p.model.model_dump(), "num_q": num_q}, termination=termination)
    for head in (model._reward, model._qs, model._target_qs):  # zero-initialised outputs: make scores nonzero
        torch.nn.init.normal_(head[-1].weight, std=0.3)
    agent = TDMPC(OBS, ACT, p, discount=0.97, model=model)
    B, H = 64, p.train.horizon
    done = (torch.rand(H, B) < 0.2).float().cummax(0).values if termination else None
    batch = (torch.randn(H + 1, B, OBS), torch.rand(H, B, ACT) * 2 - 1, torch.randn(H, B) * 3, done)
    return p, agent, batch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("termination, num_q", [(False, 2), (True, 2), (True, 5)])
def test_update_matches_mains(termination, num_q, dtype):
    """Four updates from the same seeds. In float64 the losses, parameters, Adam's moments and Q scale agree to 1e-9.
    In float32 only the losses are compared, to 1e-4 (the policy loss is a difference of larger terms, so rounding of
    1e-7 in those shows as 1e-5 in it): Adam divides each gradient element by its own magnitude, so an element whose
    gradient is at float32 rounding level moves by a step of order lr in a direction that rounding decides, under
    any reordering of float sums (another thread count too)."""
    _, agent, batch = agent_and_batch(termination, num_q)
    agent.model.to(dtype)
    agent.q_scale = agent.q_scale.to(dtype)
    batch = tuple(None if x is None else x.to(dtype) for x in batch)
    old = OldAgent(agent)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    for step in range(4):
        torch.manual_seed(10 + step)
        new_parts = agent.update(*batch)
        torch.manual_seed(10 + step)
        old_parts = old.update(*batch)
        assert new_parts.keys() == old_parts.keys()
        for k in old_parts:
            assert new_parts[k] == pytest.approx(old_parts[k], rel=tol), k
    if dtype == torch.float32:
        return
    for (name, new), old_p in zip(agent.model.state_dict().items(), old.model.state_dict().values()):
        assert torch.allclose(new, old_p, rtol=tol, atol=1e-12), name
    assert torch.allclose(agent.q_scale, old.q_scale, rtol=tol)
    for new_opt, old_opt in ((agent.optim, old.optim), (agent.pi_optim, old.pi_optim)):
        for new_s, old_s in zip(new_opt.state_dict()["state"].values(), old_opt.state_dict()["state"].values()):
            for k in ("exp_avg", "exp_avg_sq"):
                assert torch.allclose(new_s[k], old_s[k], rtol=tol, atol=1e-12 * old_s[k].abs().max().item()), k


@pytest.mark.parametrize("method", ["mppi", "cem"])
@pytest.mark.parametrize("termination, num_q", [(False, 2), (True, 5)])
def test_planning_call_matches_mains(termination, num_q, method):
    """Three warm-started calls from the same seeds, in float64: the elites are a top-k of the scores, and in float32
    two sequences whose scores lie within rounding of each other at the elite threshold may swap under any reordering
    of float sums, which moves the CEM mean by 1e-3."""
    p, agent, _ = agent_and_batch(termination, num_q)
    cfg = load_params(MujocoParams, "default").planner.replace(method=method)  # TD-MPC2's 512 + 24 x 6
    agent.model.double()
    old = OldAgent(agent)
    agent.model.eval(), old.model.eval()
    obs = torch.randn(OBS, dtype=torch.float64)
    with torch.no_grad():
        z = agent.model.encode(obs)
        assert torch.allclose(z, old.model.encode(obs), rtol=1e-9, atol=1e-12)
    prev = None
    for step in range(3):  # warm-started as in acting
        torch.manual_seed(step)
        action, mean, std = plan(agent.model, z, cfg, ACT, 0.97, prev)
        torch.manual_seed(step)
        old_action, old_mean, old_std = old_plan(old.model, z, cfg, ACT, 0.97, prev)
        assert torch.allclose(action, old_action, rtol=1e-9, atol=1e-12)
        assert torch.allclose(mean, old_mean, rtol=1e-9, atol=1e-12)
        assert torch.allclose(std, old_std, rtol=1e-9, atol=1e-12)
        assert not torch.equal(std, torch.full_like(std, cfg.max_std))  # the scores were not all tied
        prev = torch.cat([mean[1:], torch.zeros_like(mean[:1])])
