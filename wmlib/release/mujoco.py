"""MuJoCo's release weights: every TD-MPC, Dreamer and SAC run of variant `full` with the first seed of
`mujoco.seeds` (`released_seed`), one file each, found by globbing the runs' final weights (agent.pt; so new tasks
or learners' folders need no change here). The other seeds' final weights stay in data/ only: three seeds of every
learner and task would take the release past its 60 MB budget (wmlib.release.budget).
Agent names: `<learner>/<task>/seed<seed>`, e.g. `tdmpc/dmc/cartpole-swingup/seed0`.

    python -m wmlib.release.mujoco --scale default   # the weights_mujoco stage

What each file holds: what acting needs. TD-MPC's latent model (the planner uses all of it), Dreamer's encoder, RSSM
and actor (`DREAMER_ACTING`: not the decoder, reward and continue heads, which only training and the world-model
notebook use), SAC's actor.
The scale's MujocoParams are stored in each file's header, so the agent is rebuilt as it was trained. Each episode
seeds torch with its own seed (TD-MPC's planner samples), so an episode is repeatable from the weights alone.
"""
import argparse
import json
from pathlib import Path

import torch

from ..envs.mujoco_tasks import eval_seeds, make_env
from ..experiments.mujoco import WEIGHTS, dreamer, setup, train
from ..experiments.mujoco.params import MujocoParams
from ..io import load_torch
from . import Network, publish
from .control import ControlPlayer, released_seed

EXPERIMENT = "mujoco"
LEARNERS = ("tdmpc", "dreamer", "sac")
DREAMER_ACTING = ("encoder.", "rssm.")  # the parts of Dreamer's world model that filter observations while acting


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
        missing, unexpected = agent.wm.load_state_dict({k.removeprefix("wm."): v for k, v in tensors.items()
                                                        if k.startswith("wm.")}, strict=False)
        if unexpected or any(k.startswith(DREAMER_ACTING) for k in missing):
            raise ValueError(f"Dreamer weights for {task} do not fit its world model: missing "
                             f"{[k for k in missing if k.startswith(DREAMER_ACTING)]}, unexpected {unexpected}")
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


class Player(ControlPlayer):
    def __init__(self, tensors: dict, meta: dict):
        self.p = MujocoParams.model_validate_json(json.dumps(meta["params"]))
        self.learner, self.task = meta["learner"], meta["task"]
        self.pixels = self.learner == "dreamer" and self.p.dreamer.pixels
        self.policy, self.reset = build_policy(self.learner, tensors, self.p, self.task)


def make_players(tensors: dict, metas: dict, evaluation: dict) -> dict[str, Player]:
    return {agent_name(m["learner"], m["task"], m["seed"]): Player(tensors[s], m) for s, m in metas.items()}


def runs(data, seed: int) -> list[tuple[str, str, int, object]]:
    """(learner, task, seed, final weights' path) of every finished `full` run of `seed` under data/<scale>/mujoco/."""
    found = []
    for learner in LEARNERS:
        full = Path(data) / learner / "full"  # train.run_dir: <learner>/full/<task as a path>/seed<k>/
        for path in sorted(full.glob(f"*/*/seed{seed}/{WEIGHTS}")):
            found.append((learner, path.parent.parent.relative_to(full).as_posix(), seed, path))
    return found


def acting_tensors(learner: str, state: dict) -> dict[str, torch.Tensor]:
    """What acting needs from a run's final weights (agent.pt; or an agent's state_dict, SAC's as {"policy": its
    policy's}): TD-MPC's latent model, Dreamer's encoder, RSSM and actor, SAC's actor."""
    if learner == "sac":
        return {k: v for k, v in state["policy"].items() if k.startswith("actor.")}
    if learner == "tdmpc":
        return state["model"]
    return {**{f"wm.{k}": v for k, v in state["wm"].items() if k.startswith(DREAMER_ACTING)},
            **{k: v for k, v in state["ac"].items() if k.startswith("actor.")}}


def stem(learner: str, task: str, seed: int) -> str:
    return f"{learner}_{task.replace('/', '_')}_seed{seed}"


def meta(learner: str, task: str, seed: int, p: MujocoParams) -> dict:
    """A file's header: which run, and the scale's parameters to rebuild the agent as it was trained."""
    return {"learner": learner, "task": task, "seed": seed, "params": json.loads(p.model_dump_json())}


def networks(data, p: MujocoParams) -> dict[str, Network]:
    """The released runs' (`released_seed`) final weights as float32 release networks."""
    return {stem(learner, task, seed): Network(acting_tensors(learner, load_torch(path)), meta(learner, task, seed, p),
                                               path) for learner, task, seed, path in runs(data, released_seed(p))}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export MuJoCo's release weights (the weights_mujoco stage).")
    ap.add_argument("--scale", required=True)
    args = ap.parse_args(argv)
    run = setup(args.scale)
    nets = networks(run.data, run.params)
    if not nets:
        raise FileNotFoundError(f"{run.data}: no finished TD-MPC, Dreamer or SAC run of seed "
                                f"{released_seed(run.params)} (run their stages first)")
    agents = {agent_name(n.meta["learner"], n.meta["task"], n.meta["seed"]): [stem] for stem, n in nets.items()}
    evaluation = {"seeds": eval_seeds(run.params.evaluation.episodes), "max_frames": run.params.evaluation.max_frames}
    publish(run, EXPERIMENT, nets, agents, evaluation, make_players)


if __name__ == "__main__":
    main()
