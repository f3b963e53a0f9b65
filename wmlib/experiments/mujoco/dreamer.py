"""The Dreamer agent on the control tasks: an RSSM world model learned from replay, an actor-critic learned in
imagination, and one training job per (task, seed, variant) in the same format as the TD-MPC runs.

    agent = Dreamer(obs_shape, action_dim, params.dreamer)      # version v1 | v2 | v3, see VERSIONS
    agent.act(obs, explore=True)                                # filter the posterior, sample the actor
    agent.update(*buffer.sample(B, T))                          # one world-model and one actor-critic step
"""
import time

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ...actor_critic import ActorCritic
from ...io import load_torch, save_json, save_torch
from ...models.world_model import WorldModel, WorldModelConfig
from ...params import DreamerParams, MujocoParams
from .env import ActionRepeat, gym_id, make_env
from .evaluation import run_episodes, summarise
from .replay import EpisodeBuffer
from .train import _write_csv, episode_length, run_dir

# The switches that differ between the papers (defaults of WorldModelConfig are v3's), plus discount and
# return normalisation of the actor-critic.
VERSIONS = {
    "v1": {"latent": "gaussian", "unimix": 0.0, "dyn_scale": 1.0, "rep_scale": 1.0, "free_nats": 3.0,
           "symlog_obs": False, "two_hot": False, "gamma": 0.99, "return_norm": False},
    "v2": {"latent": "categorical", "unimix": 0.0, "dyn_scale": 0.8, "rep_scale": 0.2, "free_nats": 1.0,
           "symlog_obs": False, "two_hot": False, "gamma": 0.99, "return_norm": False},
    "v3": {"latent": "categorical", "unimix": 0.01, "dyn_scale": 0.5, "rep_scale": 0.1, "free_nats": 1.0,
           "symlog_obs": True, "two_hot": True, "gamma": 0.997, "return_norm": True},
}
# Ablations, applied on top of the version: each removes one ingredient.
ABLATIONS = {
    "no_kl": {"dyn_scale": 0.0, "rep_scale": 0.0},              # prior never trained: imagination is untied
    "deterministic": {"latent": "deterministic", "free_nats": 0.0},  # z = a deterministic function of (h, o)
    "no_reconstruction": {"recon_scale": 0.0},                  # learns from reward, continue and KL only
    "gaussian": {"latent": "gaussian", "unimix": 0.0},          # v1-style latent inside the v3 agent
}
# DreamerV3 from states, frames -> return, from the authors' result files (../shared/reference/dreamer-tdmpc.md);
# no Dreamer paper reports gymnasium's HalfCheetah.
PUBLISHED = {"dmc/cartpole-swingup": {50_000: 331.0, 100_000: 513.0, 250_000: 820.0, 500_000: 853.0},
             "dmc/walker-walk": {50_000: 290.0, 100_000: 518.0, 250_000: 871.0, 500_000: 925.0}}


def variant_config(p: DreamerParams, variant: str = "full") -> dict:
    """The version's switches with the variant's ablation applied."""
    if variant != "full" and variant not in ABLATIONS:
        raise ValueError(f"variant must be 'full' or one of {list(ABLATIONS)}, got {variant!r}")
    return {**VERSIONS[p.version], **ABLATIONS.get(variant, {})}


class Dreamer:
    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, p: DreamerParams, variant: str = "full"):
        cfg = variant_config(p, variant)
        self.p, self.action_dim = p.train, action_dim
        self.gamma = cfg.pop("gamma")
        return_norm = cfg.pop("return_norm")
        self.wm = WorldModel(obs_shape, action_dim, WorldModelConfig(**p.model.model_dump(), **cfg))
        wm_cfg, t = self.wm.cfg, p.train
        self.ac = ActorCritic(self.wm.rssm.feature_size, action_dim, p.model.hidden, p.model.layers, wm_cfg.two_hot,
                              wm_cfg.num_bins, wm_cfg.bin_range, self.gamma, t.lam, t.entropy_coef, return_norm,
                              t.slow_tau, t.actor_lr, t.critic_lr, t.grad_clip)
        self.wm_opt = torch.optim.Adam(self.wm.parameters(), lr=t.model_lr, eps=1e-8)
        self.reset()

    def num_parameters(self) -> dict:
        parts = {"world_model": self.wm, "actor": self.ac.actor, "critic": self.ac.critic}
        return {name: sum(x.numel() for x in m.parameters()) for name, m in parts.items()}

    def reset(self):
        """Start a new episode: zero state, zero previous action."""
        self.state = self.wm.rssm.initial(1)
        self.prev_action = torch.zeros(1, self.action_dim)

    @torch.no_grad()
    def act(self, obs, explore: bool = False) -> np.ndarray:
        """Update the posterior with `obs`, then sample the actor (explore) or take its mode."""
        h, z = self.state
        embed = self.wm.embed(torch.as_tensor(np.ascontiguousarray(obs))[None])
        h, _, post = self.wm.rssm.obs_step(h, z, self.prev_action, embed)
        z = self.wm.rssm.sample(post, mode=not explore)
        feat = torch.cat([h, z], -1)
        action = self.ac.actor(feat).sample() if explore else self.ac.actor.mode(feat)
        self.state, self.prev_action = (h, z), action
        return action[0].numpy()

    def update(self, obs, action, reward) -> dict:
        """One world-model step on replayed sequences obs [T + 1, B, ...], action [T, B, A], reward [T, B], then
        one actor-critic step imagining `horizon` steps from `imagine_starts` random posterior states."""
        loss, metrics, (h, z) = self.wm.loss(obs, action, reward)
        self.wm_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.wm.parameters(), self.p.grad_clip)
        self.wm_opt.step()
        self.wm.requires_grad_(False)  # the actor's gradient passes through the model without changing it
        h, z = h.flatten(0, 1), z.flatten(0, 1)
        starts = torch.randperm(len(h))[:self.p.imagine_starts]
        metrics |= self.ac.update(self.wm, h[starts], z[starts], self.p.horizon)
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


# --- pixels ----------------------------------------------------------------------------------------------------

def make_pixel_env(task: str, action_repeat: int = 1, max_frames: int | None = None, size: int = 64) -> gym.Env:
    """The task observed as size x size RGB frames (uint8), rendered once per agent step. Software rendering
    (EGL on surfaceless Mesa, chosen in this package's __init__) manages ~20-45 frames/s on this CPU: pixels
    are for smoke checks and GPU machines."""
    env_id = gym_id(task)
    if env_id.startswith("dm_control/"):
        import shimmy
        gym.register_envs(shimmy)
        env = gym.make(env_id, render_mode="rgb_array", render_kwargs={"width": size, "height": size, "camera_id": 0})
        if max_frames is not None:
            env = gym.wrappers.TimeLimit(env.unwrapped, max_frames)
    else:
        env = gym.make(env_id, render_mode="rgb_array", width=size, height=size,
                       **({"max_episode_steps": max_frames} if max_frames else {}))
    return gym.wrappers.AddRenderObservation(ActionRepeat(env, action_repeat), render_only=True)


class FrameBuffer(EpisodeBuffer):
    """EpisodeBuffer holding uint8 frames [E, length + 1, 64, 64, 3] (a quarter of float32's memory)."""

    def __init__(self, capacity: int, length: int, obs_shape: tuple[int, ...], action_dim: int):
        super().__init__(capacity, length, 0, action_dim)
        self.obs = torch.zeros(self.episodes, length + 1, *obs_shape, dtype=torch.uint8)


def make_task_env(p: MujocoParams, task: str) -> gym.Env:
    make = make_pixel_env if p.dreamer.pixels else make_env
    return make(task, p.tasks[task].action_repeat, p.evaluation.max_frames)


# --- training --------------------------------------------------------------------------------------------------

def dreamer_jobs(p: MujocoParams) -> list[tuple[str, int, str]]:
    """(task, seed, variant) for every budgeted task and seed, plus the ablations; longest first."""
    d = p.dreamer
    jobs = [(t, s, "full") for t in p.budgets for s in p.seeds]
    jobs += [(d.ablation_task, p.seeds[0], v) for v in d.ablations]
    return sorted(jobs, key=lambda j: -p.budgets[j[0]].frames / p.tasks[j[0]].action_repeat)


def make_agent(p: MujocoParams, task: str, variant: str = "full") -> Dreamer:
    env = make_task_env(p, task)
    agent = Dreamer(env.observation_space.shape, env.action_space.shape[0], p.dreamer, variant)
    env.close()
    return agent


def load_agent(p: MujocoParams, data, task: str, seed: int, variant: str = "full") -> Dreamer:
    agent = make_agent(p, task, variant)
    agent.load_state_dict(load_torch(run_dir(data, "dreamer", task, seed, variant) / "checkpoint.pt")["agent"])
    return agent


def train_dreamer(shared, job) -> dict:
    """One Dreamer run: random seed episodes, then act with the actor, making `updates` updates evenly spread;
    evaluation episodes every `eval_every` frames and at the end. Resumes from data/.../checkpoint.pt."""
    p, data, results = shared
    task, seed, variant = job
    ar, budget, tp = p.tasks[task].action_repeat, p.budgets[task], p.dreamer.train
    torch.manual_seed(seed)
    env, eval_env = make_task_env(p, task), make_task_env(p, task)
    env.action_space.seed(seed)
    agent, length = make_agent(p, task, variant), episode_length(p, task)
    total, seed_steps = budget.frames // ar, max(tp.min_seed_steps, tp.seed_episodes * length)
    shape, adim = env.observation_space.shape, env.action_space.shape[0]
    buffer = (FrameBuffer(total + length, length, shape, adim) if p.dreamer.pixels
              else EpisodeBuffer(total + length, length, shape[0], adim))
    ckpt, out = run_dir(data, "dreamer", task, seed, variant) / "checkpoint.pt", run_dir(results, "dreamer", task, seed, variant)
    state = {"step": 0, "episode": 0, "updates": 0, "curve": [], "core_seconds": 0.0}
    if ckpt.exists():
        saved = load_torch(ckpt)
        agent.load_state_dict(saved["agent"]), buffer.load_state_dict(saved["buffer"])
        state = saved["state"]
        torch.set_rng_state(saved["rng"])
    t0, losses = time.process_time(), []
    bar = tqdm(total=budget.frames, initial=state["step"] * ar, unit="frame", mininterval=30,
               desc=f"Dreamer {task} {variant} seed {seed}")
    while state["step"] < total:
        obs, _ = env.reset(seed=seed * 100_000 + state["episode"])
        agent.reset()
        ep_obs, ep_action, ep_reward, done = [obs], [], [], False
        while not done:
            explore = agent.act(obs, explore=True)  # keeps the filter state current even while acting randomly
            action = env.action_space.sample() if state["step"] < seed_steps else explore
            agent.prev_action = torch.as_tensor(action, dtype=torch.float32)[None]
            obs, reward, terminated, truncated, _ = env.step(action)
            if terminated:
                raise RuntimeError(f"{task}: the episode terminated; these runs cover tasks that end by time limit")
            ep_obs.append(obs), ep_action.append(action), ep_reward.append(reward)
            state["step"] += 1
            bar.update(ar)
            due = tp.updates * max(0, state["step"] - seed_steps) // max(1, total - seed_steps)
            while len(buffer) and state["updates"] < due:
                losses.append(agent.update(*buffer.sample(tp.batch_size, min(tp.seq_len, length))))
                state["updates"] += 1
            done = truncated
        buffer.add(torch.as_tensor(np.array(ep_obs)), torch.as_tensor(np.array(ep_action), dtype=torch.float32),
                   torch.as_tensor(ep_reward, dtype=torch.float32))
        state["episode"] += 1
        frames = state["step"] * ar
        last = state["step"] >= total
        if frames // budget.eval_every > (frames - length * ar) // budget.eval_every or last:
            n = p.evaluation.episodes if last else p.evaluation.curve_episodes  # last point = final evaluation
            returns = run_episodes(eval_env, agent.act, n, reset=agent.reset)
            state["final_returns"] = returns
            loss_means = pd.DataFrame(losses).mean().to_dict() if losses else {}
            state["curve"].append({"frames": frames, "episodes": state["episode"], "updates": state["updates"],
                                   "mean": float(np.mean(returns)), "std": float(np.std(returns)), **loss_means})
            losses = []
            state["core_seconds"] += time.process_time() - t0
            t0 = time.process_time()
            save_torch({"agent": agent.state_dict(), "buffer": buffer.state_dict(), "state": state,
                        "rng": torch.get_rng_state()}, ckpt)
            bar.set_postfix(ret=f"{np.mean(returns):.0f}")
    bar.close()
    env.close(), eval_env.close()
    result = {"method": "dreamer", "task": task, "seed": seed, "variant": variant, "frames": state["step"] * ar,
              "episodes": state["episode"], "updates": state["updates"], "core_hours": state["core_seconds"] / 3600,
              **summarise(state["final_returns"]), "parameters": sum(agent.num_parameters().values())}
    _write_csv(pd.DataFrame(state["curve"]), out / "curve.csv")
    save_json(result, out / "eval.json")
    return result


def train_all(run) -> list[dict]:
    """Every Dreamer job of the scale on the run's worker pool."""
    with run.pool() as pool:
        return pool.map(train_dreamer, dreamer_jobs(run.params), shared=(run.params, run.data, run.results),
                        desc="dreamer runs")
