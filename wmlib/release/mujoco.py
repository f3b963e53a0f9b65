"""MuJoCo's release weights: every TD-MPC, Dreamer and SAC run (variant `full`, any task and seed), one file
each, found by globbing the runs' final checkpoints (so new tasks, seeds or learners' folders need no change here).
Agent names: `<learner>/<task>/seed<seed>`, e.g. `tdmpc/dmc/cartpole-swingup/seed0`.

    python -m wmlib.release.mujoco --scale default   # the weights_mujoco stage

What each file holds: TD-MPC's latent model (all the planner uses), Dreamer's world model and actor, SAC's actor.
The scale's MujocoParams are stored in each file's header, so the agent is rebuilt as it was trained. Each episode
seeds torch with its own seed (TD-MPC's planner samples), so an episode is repeatable from the weights alone.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..envs.mujoco_tasks import eval_seeds, make_env
from ..evaluation import EvalResult, run_episode
from ..experiments.mujoco import dreamer, setup, train
from ..experiments.mujoco.params import MujocoParams
from ..io import load_torch
from . import Network, publish

EXPERIMENT = "mujoco"
LEARNERS = ("tdmpc", "dreamer", "sac")
CHECKPOINT = {"tdmpc": "checkpoint.pt", "dreamer": "checkpoint.pt", "sac": "model.zip"}


def agent_name(learner: str, task: str, seed: int) -> str:
    return f"{learner}/{task}/seed{seed}"


def build_policy(learner: str, tensors: dict, p: MujocoParams, task: str):
    """(policy obs -> action, reset) of the trained agent, on the CPU, acting without exploration noise."""
    if learner == "tdmpc":
        agent = train.make_agent(p, task)
        agent.model.load_state_dict(tensors)
        return agent.act, agent.reset
    if learner == "dreamer":
        agent = dreamer.make_agent(p, task)
        agent.wm.load_state_dict({k.removeprefix("wm."): v for k, v in tensors.items() if k.startswith("wm.")})
        agent.ac.actor.load_state_dict({k.removeprefix("actor."): v for k, v in tensors.items()
                                        if k.startswith("actor.")})
        return agent.act, agent.reset
    if learner == "sac":
        from stable_baselines3 import SAC
        model = SAC("MlpPolicy", make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames), device="cpu")
        missing, unexpected = model.policy.load_state_dict(tensors, strict=False)
        if unexpected or any(k.startswith("actor.") for k in missing):
            raise ValueError(f"SAC weights for {task} do not fit SB3's MlpPolicy actor: missing "
                             f"{[k for k in missing if k.startswith('actor.')]}, unexpected {unexpected}")
        return (lambda obs: model.predict(obs, deterministic=True)[0]), None
    raise ValueError(f"learner must be one of {LEARNERS}, got {learner!r}")


class Player:
    def __init__(self, tensors: dict, meta: dict):
        self.p = MujocoParams.model_validate_json(json.dumps(meta["params"]))
        self.learner, self.task = meta["learner"], meta["task"]
        self.policy, self.reset = build_policy(self.learner, tensors, self.p, self.task)

    def _env(self, pixels: bool = False):
        pixels = pixels or (self.learner == "dreamer" and self.p.dreamer.pixels)
        return make_env(self.task, self.p.tasks[self.task].action_repeat, self.p.evaluation.max_frames, pixels)

    def evaluate(self, seeds: list[int]) -> EvalResult:
        env, res = self._env(), []
        for seed in seeds:
            torch.manual_seed(seed)
            res.append(run_episode(env, self.policy, seed, reset=self.reset)[:2])
        env.close()
        return EvalResult(f"{self.learner}/{self.task}", list(seeds), [float(r) for r, _ in res],
                          [int(n) for _, n in res])

    def record(self, seed: int, max_steps: int | None = None) -> np.ndarray:
        """Rendered 64x64 frames of one episode: a pixel env stepped in lockstep with the agent's env (same seed,
        same actions), as the state-vector agents never see pixels."""
        env, screen = self._env(), self._env(pixels=True)
        torch.manual_seed(seed)
        obs, _ = env.reset(seed=seed)
        frames, done = [screen.reset(seed=seed)[0]], False
        if self.reset is not None:
            self.reset()
        while not done and (max_steps is None or len(frames) < max_steps):
            action = self.policy(obs)
            obs, _, terminated, truncated, _ = env.step(action)
            frames.append(screen.step(action)[0])
            done = terminated or truncated
        env.close(), screen.close()
        return np.stack(frames)


def make_players(tensors: dict, metas: dict, evaluation: dict) -> dict[str, Player]:
    return {agent_name(m["learner"], m["task"], m["seed"]): Player(tensors[s], m) for s, m in metas.items()}


def runs(data) -> list[tuple[str, str, int, object]]:
    """(learner, task, seed, checkpoint path) of every `full` run's last checkpoint under data/<scale>/mujoco/."""
    found = []
    for learner in LEARNERS:
        full = Path(data) / learner / "full"  # train.run_dir: <learner>/full/<task as a path>/seed<k>/
        for path in sorted(full.glob(f"*/*/seed*/{CHECKPOINT[learner]}")):
            task = path.parent.parent.relative_to(full).as_posix()
            found.append((learner, task, int(path.parent.name.removeprefix("seed")), path))
    return found


def release_tensors(learner: str, path) -> dict[str, torch.Tensor]:
    """What acting needs from a run's final checkpoint."""
    if learner == "sac":
        from stable_baselines3 import SAC
        return {k: v for k, v in SAC.load(path, device="cpu").policy.state_dict().items() if k.startswith("actor.")}
    agent = load_torch(path)["agent"]
    if learner == "tdmpc":
        return agent["model"]
    return {**{f"wm.{k}": v for k, v in agent["wm"].items()},
            **{k: v for k, v in agent["ac"].items() if k.startswith("actor.")}}


def networks(data, p: MujocoParams) -> dict[str, Network]:
    params = json.loads(p.model_dump_json())
    return {f"{learner}_{task.replace('/', '_')}_seed{seed}":
            Network(release_tensors(learner, path), {"learner": learner, "task": task, "seed": seed, "params": params},
                    path)
            for learner, task, seed, path in runs(data)}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export MuJoCo's release weights (the weights_mujoco stage).")
    ap.add_argument("--scale", required=True)
    args = ap.parse_args(argv)
    run = setup(args.scale)
    nets = networks(run.data, run.params)
    if not nets:
        raise FileNotFoundError(f"{run.data}: no finished TD-MPC, Dreamer or SAC run (run their stages first)")
    agents = {agent_name(n.meta["learner"], n.meta["task"], n.meta["seed"]): [stem] for stem, n in nets.items()}
    evaluation = {"seeds": eval_seeds(run.params.evaluation.episodes), "max_frames": run.params.evaluation.max_frames}
    publish(run, EXPERIMENT, nets, agents, evaluation, make_players)


if __name__ == "__main__":
    main()
