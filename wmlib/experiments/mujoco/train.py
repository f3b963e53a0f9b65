"""Training runs, one job per (task, seed): the model-based loop shared by TD-MPC (and its switch ablations)
and Dreamer (wmlib.experiments.mujoco.dreamer), and Stable-Baselines3 SAC.

    python -m wmlib.experiments.mujoco.job --scale S --learner tdmpc|sac --task T --seed N   # one job (a DVC stage)

Each job checkpoints at every learning-curve point and resumes from there when rerun. When it ends it writes its
final weights (`WEIGHTS`: what acting and the notebooks read, no optimiser or replay buffer; small, so kept in git at
the committed scale) and deletes the checkpoint, so a rerun trains afresh. Under `dvc repro` every
(learner, task, seed) is its own stage (dvc.yaml: mujoco_tdmpc_job, mujoco_sac_job, mujoco_dreamer_job), so a
campaign is committed job by job; the notebooks then train only what is missing (the ablations, or everything
outside DVC), in parallel on the run's WorkerPool (Ray at paper scale). Steps are agent steps; frames = steps x
action repeat.
"""
import io
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ...data.replay import EpisodeBuffer
from ...device import resolve_device
from ...envs.mujoco_tasks import eval_seeds, make_env
from ...evaluation import run_episodes, summarise
from ...io import atomic_path, load_json, load_torch, save_csv, save_json, save_torch
from ...models.latent_model import LatentModel
from . import CHECKPOINT, WEIGHTS
from .params import MujocoParams
from .tdmpc import TDMPC, discount_for

ABLATIONS = {"no_simnorm": {"simnorm": False}, "no_two_hot": {"two_hot": False}}
JOB_VARIANTS = ("full", "wide")  # run by DVC job stages (wmlib.experiments.mujoco.job); wide: `wide_model`'s widths


def run_dir(root: Path, method: str, task: str, seed: int, variant: str = "full") -> Path:
    """<root>/<method>/<variant>/<task>/seed<seed>/ (task as a path: dmc/walker-walk) for a job variant (full,
    wide), for a notebook's ablation <root>/<method>/ablations/<variant>/<task>/seed<seed>/; created if missing."""
    sub = variant if variant in JOB_VARIANTS else f"ablations/{variant}"
    path = Path(root) / method / sub / task / f"seed{seed}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def finished(results: Path, method: str, task: str, seed: int, variant: str = "full") -> dict | None:
    """The job's eval.json if it has run to the end (its last step writes it), else None."""
    path = run_dir(results, method, task, seed, variant) / "eval.json"
    return load_json(path) if path.exists() else None


def episode_length(p: MujocoParams, task: str) -> int:
    """Agent steps per episode."""
    return math.ceil((p.evaluation.max_frames or 1000) / p.tasks[task].action_repeat)


def tdmpc_jobs(p: MujocoParams) -> list[tuple[str, int, str]]:
    """(task, seed, variant) for every budgeted task and seed, the width study's seeds, and the ablations; longest
    first."""
    jobs = [(t, s, "full") for t in p.budgets for s in p.seeds]
    jobs += [(p.width_study.task, s, "wide") for s in p.seeds]
    jobs += [(p.planner_study.task, p.seeds[0], v) for v in p.planner_study.ablations]
    return sorted(jobs, key=lambda j: -p.budgets[j[0]].frames / p.tasks[j[0]].action_repeat)


def make_agent(p: MujocoParams, task: str, variant: str = "full", device="cpu") -> TDMPC:
    env = make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    changes = p.wide_model.model_dump() if variant == "wide" else ABLATIONS.get(variant, {})
    model = LatentModel(obs_dim, action_dim, **{**p.model.model_dump(), **changes},
                        termination=p.tasks[task].terminates)
    return TDMPC(obs_dim, action_dim, p, discount_for(episode_length(p, task)), model=model, device=device)


def load_agent(p: MujocoParams, data: Path, task: str, seed: int, variant: str = "full", device="cpu") -> TDMPC:
    """A finished job's TD-MPC agent, its latent model from the job's final weights (WEIGHTS)."""
    agent = make_agent(p, task, variant, device)
    agent.model.load_state_dict(load_torch(run_dir(data, "tdmpc", task, seed, variant) / WEIGHTS)["model"])
    return agent


def train_model_based(shared, job, method: str, make_agent, act, updates_due, seq_len: int, train_params,
                      extras, weights, pixels: bool = False) -> dict:
    """The loop TD-MPC and Dreamer share, for one (task, seed, variant) job: random seed steps, then acting with
    `act(agent, obs, random_action)` (random_action is None once seeding is over) and updating until
    `updates_due(step, seed_steps, total)` updates are done (`make_agent(device)` builds the agent on the device
    that params `device` resolves to in this worker); episodes are stored whole, in a buffer on that device;
    evaluation episodes every `eval_every` frames and at the end. Checkpoints to data/.../checkpoint.pt and resumes
    from there; at the end writes curve.csv and eval.json (the common fields, then `extras(agent, state)`) under
    results, `weights(agent)` to data/.../agent.pt, and deletes the checkpoint."""
    p, data, results = shared
    task, seed, variant = job
    ar, budget, tp = p.tasks[task].action_repeat, p.budgets[task], train_params
    torch.manual_seed(seed)
    device = resolve_device(p.device)
    env, eval_env = (make_env(task, ar, p.evaluation.max_frames, pixels) for _ in range(2))
    env.action_space.seed(seed)
    agent, length = make_agent(device), episode_length(p, task)
    total, seed_steps = budget.frames // ar, max(tp.min_seed_steps, tp.seed_episodes * length)
    buffer = EpisodeBuffer(total + length, length, env.observation_space.shape, env.action_space.shape[0],
                           torch.uint8 if pixels else torch.float32, device)
    ckpt = run_dir(data, method, task, seed, variant) / CHECKPOINT
    out = run_dir(results, method, task, seed, variant)
    state = {"step": 0, "episode": 0, "updates": 0, "curve": [], "core_seconds": 0.0}
    if ckpt.exists():
        saved = load_torch(ckpt)
        if "action_rng" not in saved:
            raise ValueError(f"{ckpt}: written by an older wmlib without the random actions' RNG state, so it "
                             "cannot resume exactly; delete it to start this run over")
        agent.load_state_dict(saved["agent"])
        buffer.load_state_dict(saved["buffer"])
        state = saved["state"]
        torch.set_rng_state(saved["rng"])
        env.action_space.np_random.bit_generator.state = saved["action_rng"]  # the seed steps' random actions
        if device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
    t0, losses = time.process_time(), []
    bar = tqdm(total=budget.frames, initial=state["step"] * ar, unit="frame", mininterval=30,
               desc=f"{method} {task} {variant} seed {seed}")
    while state["step"] < total:
        obs, _ = env.reset(seed=seed * 100_000 + state["episode"])
        agent.reset()
        ep_obs, ep_action, ep_reward, done = [obs], [], [], False
        while not done:
            action = act(agent, obs, env.action_space.sample() if state["step"] < seed_steps else None)
            obs, reward, terminated, truncated, _ = env.step(action)
            if terminated and not p.tasks[task].terminates:
                raise RuntimeError(f"{task}: the episode terminated; set `terminates: true` for it in mujoco.tasks, "
                                   "so that the agents learn termination")
            ep_obs.append(obs), ep_action.append(action), ep_reward.append(reward)
            state["step"] += 1
            bar.update(ar)
            while len(buffer) and state["updates"] < updates_due(state["step"], seed_steps, total):
                losses.append(agent.update(*buffer.sample(tp.batch_size, min(seq_len, length))))
                state["updates"] += 1
            done = terminated or truncated
        buffer.add(torch.as_tensor(np.array(ep_obs)), torch.as_tensor(np.array(ep_action), dtype=torch.float32),
                   torch.as_tensor(ep_reward, dtype=torch.float32), terminated)
        state["episode"] += 1
        frames = state["step"] * ar
        last = state["step"] >= total
        if frames // budget.eval_every > (frames - len(ep_action) * ar) // budget.eval_every or last:
            # the last curve point is the final evaluation: `episodes` episodes instead of `curve_episodes`
            n = p.evaluation.episodes if last else p.evaluation.curve_episodes
            returns = run_episodes(eval_env, agent.act, eval_seeds(n), reset=agent.reset).returns  # no exploration
            state["final_returns"] = returns
            loss_means = pd.DataFrame(losses).mean().to_dict() if losses else {}
            state["curve"].append({"frames": frames, "episodes": state["episode"], "updates": state["updates"],
                                   "mean": float(np.mean(returns)), "std": float(np.std(returns)), **loss_means})
            losses = []
            state["core_seconds"] += time.process_time() - t0
            t0 = time.process_time()
            rng = {"rng": torch.get_rng_state(), "action_rng": env.action_space.np_random.bit_generator.state}
            if device.type == "cuda":
                rng["cuda_rng"] = torch.cuda.get_rng_state(device)
            save_torch({"agent": agent.state_dict(), "buffer": buffer.state_dict(), "state": state, **rng}, ckpt)
            bar.set_postfix(ret=f"{np.mean(returns):.0f}")
    bar.close()
    env.close(), eval_env.close()
    result = {"method": method, "task": task, "seed": seed, "variant": variant, "frames": state["step"] * ar,
              "episodes": state["episode"], "core_hours": state["core_seconds"] / 3600,
              **summarise(state["final_returns"]), **extras(agent, state)}
    save_torch(weights(agent), ckpt.with_name(WEIGHTS))  # before eval.json, which marks the job finished
    save_csv(pd.DataFrame(state["curve"]), out / "curve.csv")
    save_json(result, out / "eval.json")
    ckpt.unlink()
    return result


def train_tdmpc(shared, job) -> dict:
    """One TD-MPC run: plan-act-update every step after the seed steps. As in TD-MPC2, the seed data is first
    trained on with as many updates as seed steps, then one update per agent step."""
    p = shared[0]
    task, _, variant = job
    return train_model_based(
        shared, job, "tdmpc", lambda device: make_agent(p, task, variant, device),
        act=lambda agent, obs, random_action: agent.act(obs, explore=True) if random_action is None else random_action,
        updates_due=lambda step, seed_steps, total: step if step >= seed_steps else 0,
        seq_len=p.train.horizon, train_params=p.train,
        extras=lambda agent, state: {"parameters": agent.model.num_parameters()},
        weights=lambda agent: {"model": agent.model.state_dict()})


def train_sac(shared, job) -> dict:
    """Stable-Baselines3 SAC with its default hyperparameters on the same env, budget and evaluation, on params
    `device` (SB3 moves its networks and replay batches there). Checkpoints as SB3's model.zip, replay.pkl and
    state.json; the final weights (WEIGHTS) are its policy's actor (the critics only train)."""
    from stable_baselines3 import SAC

    p, data, results = shared
    task, seed = job
    ar, budget, device = p.tasks[task].action_repeat, p.budgets[task], str(resolve_device(p.device))
    env = make_env(task, ar, p.evaluation.max_frames)
    eval_env = make_env(task, ar, p.evaluation.max_frames)
    total = budget.frames // ar
    ckpt_dir, out = run_dir(data, "sac", task, seed), run_dir(results, "sac", task, seed)
    if (ckpt_dir / "state.json").exists():
        model = SAC.load(ckpt_dir / "model.zip", env=env, device=device)
        model.load_replay_buffer(ckpt_dir / "replay.pkl")
        state = load_json(ckpt_dir / "state.json")
    else:
        model = SAC("MlpPolicy", env, seed=seed, device=device, verbose=0)
        state = {"curve": [], "core_seconds": 0.0}
    policy = lambda o: model.predict(o, deterministic=True)[0]  # noqa: E731
    bar = tqdm(total=budget.frames, initial=model.num_timesteps * ar, unit="frame", mininterval=30,
               desc=f"SAC {task} seed {seed}")
    while model.num_timesteps < total:
        t0 = time.process_time()
        next_eval = min(total, (model.num_timesteps * ar // budget.eval_every + 1) * budget.eval_every // ar)
        before = model.num_timesteps
        model.learn(next_eval - model.num_timesteps, reset_num_timesteps=False)
        bar.update((model.num_timesteps - before) * ar)
        n = p.evaluation.episodes if model.num_timesteps >= total else p.evaluation.curve_episodes
        returns = run_episodes(eval_env, policy, eval_seeds(n)).returns  # the last curve point is the final evaluation
        state["final_returns"] = returns
        state["curve"].append({"frames": model.num_timesteps * ar, "mean": float(np.mean(returns)),
                               "std": float(np.std(returns))})
        state["core_seconds"] += time.process_time() - t0
        for name, save in (("model.zip", model.save), ("replay.pkl", model.save_replay_buffer)):
            buf = io.BytesIO()
            save(buf)
            with atomic_path(ckpt_dir / name) as tmp:
                tmp.write_bytes(buf.getvalue())
        save_json(state, ckpt_dir / "state.json")
    bar.close()
    final = summarise(state["final_returns"])
    result = {"method": "sac", "task": task, "seed": seed, "variant": "full", "frames": model.num_timesteps * ar,
              "episodes": int(model._episode_num), "core_hours": state["core_seconds"] / 3600, **final}
    save_torch({"policy": {k: v for k, v in model.policy.state_dict().items() if k.startswith("actor.")}},
               ckpt_dir / WEIGHTS)  # before eval.json, which marks the job finished
    save_csv(pd.DataFrame(state["curve"]), out / "curve.csv")
    save_json(result, out / "eval.json")
    for name in ("state.json", "model.zip", "replay.pkl"):  # state.json first: without it a rerun starts over
        (ckpt_dir / name).unlink()
    return result


def train_missing(run, method: str, fn, jobs: list[tuple]) -> list[dict]:
    """The results of every job (task, seed[, variant]) of `method`: those already finished (the DVC job stages)
    read back, the others trained by `fn(shared, job)` on the run's worker pool; in the order of `jobs`."""
    done = {job: finished(run.results, method, *job) for job in jobs}
    todo = [job for job, result in done.items() if result is None]
    if todo:
        with run.pool(trains=True) as pool:
            done |= dict(zip(todo, pool.map(fn, todo, shared=(run.params, run.data, run.results),
                                            desc=f"{method} runs")))
    return [done[job] for job in jobs]


def train_all(run, method: str) -> list[dict]:
    """Every job of `method` ('tdmpc' or 'sac'), training only those not finished yet (train_missing)."""
    p = run.params
    if method == "tdmpc":
        return train_missing(run, method, train_tdmpc, tdmpc_jobs(p))
    if method == "sac":
        return train_missing(run, method, train_sac, [(t, s) for t in p.budgets for s in p.seeds])
    raise ValueError(f"method must be 'tdmpc' or 'sac', got {method!r}")

