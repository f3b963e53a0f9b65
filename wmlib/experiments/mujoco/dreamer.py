"""The Dreamer agent on the control tasks: an RSSM world model learned from replay, an actor-critic learned in
imagination, and one training job per (task, seed, variant) in the same format as the TD-MPC runs.

    agent = Dreamer(obs_shape, action_dim, params.dreamer, device=device)  # version v1 | v2 | v3, see VERSIONS
    agent.act(obs, explore=True)                                # filter the posterior, sample the actor
    agent.update(*buffer.sample(B, T))                          # one world-model and one actor-critic step

    python -m wmlib.experiments.mujoco.job --scale S --learner dreamer --task T --seed N   # one job (a DVC stage)
"""
import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

from ...control.actor_critic import ActorCritic
from ...device import autocast
from ...envs.mujoco_tasks import make_env
from ...io import load_torch
from ...models.world_model import WorldModel, WorldModelConfig
from . import WEIGHTS
from .params import DreamerParams, MujocoParams
from .train import run_dir, train_missing, train_model_based

# The switches that differ between the papers: the world model's (defaults of WorldModelConfig are v3's), then the
# actor-critic's (wmlib.control.actor_critic: discount, return normalisation, actor distribution, baseline, critic
# regulariser; v3's are DreamerV3's reference behaviour, cited there).
AC_SWITCHES = ("gamma", "return_norm", "actor_dist", "advantage", "slowreg")
VERSIONS = {
    "v1": {"latent": "gaussian", "unimix": 0.0, "dyn_scale": 1.0, "rep_scale": 1.0, "free_nats": 3.0,
           "free_avg": True, "symlog_obs": False, "two_hot": False,
           "gamma": 0.99, "return_norm": False, "actor_dist": "tanh_normal", "advantage": False, "slowreg": 0.0},
    "v2": {"latent": "categorical", "unimix": 0.0, "dyn_scale": 0.8, "rep_scale": 0.2, "free_nats": 1.0,
           "free_avg": True, "symlog_obs": False, "two_hot": False,
           "gamma": 0.99, "return_norm": False, "actor_dist": "tanh_normal", "advantage": False, "slowreg": 0.0},
    "v3": {"latent": "categorical", "unimix": 0.01, "dyn_scale": 0.5, "rep_scale": 0.1, "free_nats": 1.0,
           "free_avg": False, "symlog_obs": True, "two_hot": True,
           "gamma": 0.997, "return_norm": True, "actor_dist": "normal", "advantage": True, "slowreg": 1.0},
}
# Ablations, applied on top of the version: each removes one ingredient.
ABLATIONS = {
    "no_kl": {"dyn_scale": 0.0, "rep_scale": 0.0},              # prior never trained: imagination is untied
    "deterministic": {"latent": "deterministic", "free_nats": 0.0},  # z = a deterministic function of (h, o)
    "no_reconstruction": {"recon_scale": 0.0},                  # learns from reward, continue and KL only
    "gaussian": {"latent": "gaussian", "unimix": 0.0},          # v1-style latent inside the v3 agent
    # issue 17: one of DreamerV3's actor-critic rules back to this code's earlier (v1/v2) one
    "no_baseline": {"advantage": False},                        # actor maximises R / S, not (R - v) / S
    "tanh_actor": {"actor_dist": "tanh_normal"},                # tanh(Normal), entropy estimated by -log p
    "slow_target": {"slowreg": 0.0},                            # returns from the slow critic, no regulariser
}


def variant_config(p: DreamerParams, variant: str = "full") -> dict:
    """The version's switches with the variant's ablation applied."""
    if variant != "full" and variant not in ABLATIONS:
        raise ValueError(f"variant must be 'full' or one of {list(ABLATIONS)}, got {variant!r}")
    return {**VERSIONS[p.version], **ABLATIONS.get(variant, {})}


class Dreamer:
    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, p: DreamerParams, variant: str = "full",
                 device="cpu"):
        cfg = variant_config(p, variant)
        self.p, self.action_dim, self.device = p.train, action_dim, torch.device(device)
        ac = {k: cfg.pop(k) for k in AC_SWITCHES}
        self.gamma = ac["gamma"]
        self.wm = WorldModel(obs_shape, action_dim, WorldModelConfig(**p.model.model_dump(), **cfg))
        wm_cfg, t = self.wm.cfg, p.train
        self.ac = ActorCritic(self.wm.rssm.feature_size, action_dim, p.model.hidden, p.model.layers, wm_cfg.two_hot,
                              wm_cfg.num_bins, wm_cfg.bin_range, self.gamma, t.lam, t.entropy_coef, ac["return_norm"],
                              t.slow_tau, t.actor_lr, t.critic_lr, t.grad_clip, ac["actor_dist"], ac["advantage"],
                              ac["slowreg"])
        self.wm.to(self.device), self.ac.to(self.device)
        self.wm_opt = torch.optim.Adam(self.wm.parameters(), lr=t.model_lr, eps=1e-8)
        self.reset()

    def num_parameters(self) -> dict:
        parts = {"world_model": self.wm, "actor": self.ac.actor, "critic": self.ac.critic}
        return {name: sum(x.numel() for x in m.parameters()) for name, m in parts.items()}

    def reset(self):
        """Start a new episode: zero state, zero previous action."""
        self.state = self.wm.rssm.initial(1)
        self.prev_action = torch.zeros(1, self.action_dim, device=self.device)

    @torch.no_grad()
    def act(self, obs, explore: bool = False) -> np.ndarray:
        """Update the posterior with `obs`, then sample the actor (explore) or take its mode; clipped to [-1, 1] (a
        sample of the v3 actor's Normal can leave it)."""
        h, z = self.state
        embed = self.wm.embed(torch.as_tensor(np.ascontiguousarray(obs), device=self.device)[None])
        h, _, post = self.wm.rssm.obs_step(h, z, self.prev_action, embed)
        z = self.wm.rssm.sample(post, mode=not explore)
        feat = torch.cat([h, z], -1)
        action = (self.ac.actor(feat).sample() if explore else self.ac.actor.mode(feat)).clamp(-1, 1)
        self.state, self.prev_action = (h, z), action
        return action[0].cpu().numpy()

    def explore(self, obs, action=None) -> np.ndarray:
        """Acting while training: a sample of the actor, or `action` (a random seed action) in its place; either
        way the posterior filter advances with the action actually taken."""
        sampled = self.act(obs, explore=True)
        if action is None:
            return sampled
        self.prev_action = torch.as_tensor(action, dtype=torch.float32, device=self.device)[None]
        return action

    def update(self, obs, action, reward, terminated=None) -> dict:
        """One world-model step on replayed sequences obs [T + 1, B, ...], action [T, B, A], reward [T, B],
        terminated [T, B] (1 where the step ends the episode; None: never), then one actor-critic step imagining
        from its posterior states that are not terminal."""
        metrics, (h, z) = self.update_world_model(obs, action, reward, terminated)
        alive = None if terminated is None else torch.cat([torch.ones_like(terminated[:1]), 1 - terminated])
        return metrics | self.update_actor_critic(h, z, alive)

    def update_world_model(self, obs, action, reward, terminated=None) -> tuple[dict, tuple[torch.Tensor, ...]]:
        """One gradient step of the world model (under bf16 autocast if `train.bf16`), its continue head learning
        1 - terminated; returns its metrics and the posterior states h, z [T + 1, B, ...] in float32."""
        with autocast(self.device, self.p.bf16):
            loss, metrics, (h, z) = self.wm.loss(obs, action, reward, None if terminated is None else 1 - terminated)
        self.wm_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.wm.parameters(), self.p.grad_clip)
        self.wm_opt.step()
        return metrics, (h.float(), z.float())

    def update_actor_critic(self, h, z, alive=None) -> dict:
        """One actor and one critic step, imagining `horizon` steps from `imagine_starts` random states of h, z
        [T + 1, B, ...], drawn among those not terminal (`alive` [T + 1, B] 1; None: all; DreamerV3 gives a
        terminal start weight 0). The world model's continue head discounts and masks the imagined returns and
        weights (wmlib.control.actor_critic)."""
        self.wm.requires_grad_(False)  # the actor's gradient passes through the model without changing it
        h, z = h.flatten(0, 1), z.flatten(0, 1)
        live = torch.arange(len(h)) if alive is None else alive.flatten().cpu().nonzero()[:, 0]
        starts = live[torch.randperm(len(live))[:self.p.imagine_starts]].to(h.device)
        metrics = self.ac.update(self.wm, h[starts], z[starts], self.p.horizon)
        self.wm.requires_grad_(True)
        return metrics

    def state_dict(self) -> dict:
        return {"wm": self.wm.state_dict(), "ac": self.ac.state_dict(), "wm_opt": self.wm_opt.state_dict(),
                "actor_opt": self.ac.actor_opt.state_dict(), "critic_opt": self.ac.critic_opt.state_dict(),
                "scale": self.ac.scale.state_dict() if self.ac.scale else None}

    def load_state_dict(self, state: dict):
        self.wm.load_state_dict(state["wm"]), self.ac.load_state_dict(state["ac"])
        self.wm_opt.load_state_dict(state["wm_opt"])
        self.ac.actor_opt.load_state_dict(state["actor_opt"]), self.ac.critic_opt.load_state_dict(state["critic_opt"])
        if self.ac.scale:
            self.ac.scale.load_state_dict(state["scale"])


def make_task_env(p: MujocoParams, task: str) -> gym.Env:
    """The task as this scale's Dreamer observes it: state vectors, or 64x64 frames if `dreamer.pixels`."""
    return make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames, p.dreamer.pixels)


# --- training --------------------------------------------------------------------------------------------------

def dreamer_jobs(p: MujocoParams) -> list[tuple[str, int, str]]:
    """(task, seed, variant) for every budgeted task and seed, plus the ablations; longest first."""
    d = p.dreamer
    jobs = [(t, s, "full") for t in p.budgets for s in p.seeds]
    jobs += [(d.ablation_task, p.seeds[0], v) for v in d.ablations]
    return sorted(jobs, key=lambda j: -p.budgets[j[0]].frames / p.tasks[j[0]].action_repeat)


def make_agent(p: MujocoParams, task: str, variant: str = "full", device="cpu") -> Dreamer:
    env = make_task_env(p, task)
    agent = Dreamer(env.observation_space.shape, env.action_space.shape[0], p.dreamer, variant, device)
    env.close()
    return agent


def load_agent(p: MujocoParams, data, task: str, seed: int, variant: str = "full", device="cpu") -> Dreamer:
    """A finished job's Dreamer: its world model and actor-critic from the job's final weights (WEIGHTS)."""
    agent = make_agent(p, task, variant, device)
    saved = load_torch(run_dir(data, "dreamer", task, seed, variant) / WEIGHTS)
    agent.wm.load_state_dict(saved["wm"]), agent.ac.load_state_dict(saved["ac"])
    return agent


def train_dreamer(shared, job) -> dict:
    """One Dreamer run (wmlib.experiments.mujoco.train.train_model_based): random seed episodes, then acting with
    the actor and making `updates` updates spread evenly over the remaining agent steps."""
    p = shared[0]
    task, _, variant = job
    tp = p.dreamer.train
    return train_model_based(
        shared, job, "dreamer", lambda device: make_agent(p, task, variant, device),
        act=lambda agent, obs, random_action: agent.explore(obs, random_action),
        updates_due=lambda step, seed_steps, total:
            tp.updates * max(0, step - seed_steps) // max(1, total - seed_steps),
        seq_len=tp.seq_len, train_params=tp, pixels=p.dreamer.pixels,
        extras=lambda agent, state: {"updates": state["updates"], "parameters": sum(agent.num_parameters().values())},
        weights=lambda agent: {"wm": agent.wm.state_dict(), "ac": agent.ac.state_dict()})


def train_all(run) -> list[dict]:
    """Every Dreamer job of the scale, training only those not finished yet (train.train_missing)."""
    return train_missing(run, "dreamer", train_dreamer, dreamer_jobs(run.params))

