"""PETS's release weights: the probabilistic ensemble of each task's `full` run with the first seed of `pets.seeds`
(wmlib.release.control.released_seed; the other seeds' final weights stay in data/ only), one file each.
Agent names: `<task>/seed<seed>`, e.g. `dmc/cartpole-swingup/seed0`.

    python -m wmlib.release.pets --scale default   # the weights_pets stage

A file holds the ensemble's state (weights, log-variance bounds, input and target standardisers); the planner
(CEM with trajectory sampling, wmlib.control.pets) is rebuilt from the scale's PETSParams stored in the file's
header. Each episode seeds the planner's generator with the episode's seed, so an episode is repeatable from the
weights alone; the training job's final evaluation drew from the generator where training had left it: same
distribution, other numbers.
"""
import argparse
import json
from pathlib import Path

import torch

from ..envs.mujoco_tasks import eval_seeds
from ..experiments.mujoco import WEIGHTS
from ..experiments.pets import setup
from ..experiments.pets.params import PETSParams
from ..experiments.pets.train import make_agent
from ..io import load_torch
from . import Network, publish
from .control import ControlPlayer, released_seed

EXPERIMENT = "pets"


def agent_name(task: str, seed: int) -> str:
    return f"{task}/seed{seed}"


class Player(ControlPlayer):
    """The CEM planner through the released ensemble, on the CPU; evaluate and record as ControlPlayer's."""

    def __init__(self, tensors: dict, meta: dict):
        self.p = PETSParams.model_validate_json(json.dumps(meta["params"]))
        self.learner, self.task = EXPERIMENT, meta["task"]
        env = self._env()
        self.agent, ensemble = make_agent(self.p, env.observation_space.shape[0], env.action_space.shape[0], "full",
                                          meta["seed"])
        env.close()
        ensemble.load_state_dict(tensors)
        self.policy, self.reset = self.agent.act, self.agent.reset

    def seed_episode(self, seed: int):
        """Seed the planner's generator (its samples and the particles' noise) and torch's global one."""
        torch.manual_seed(seed)
        self.agent.generator.manual_seed(seed)


def make_players(tensors: dict, metas: dict, evaluation: dict) -> dict[str, Player]:
    return {agent_name(m["task"], m["seed"]): Player(tensors[s], m) for s, m in metas.items()}


def meta(task: str, seed: int, p: PETSParams) -> dict:
    """A file's header: which run, and the scale's parameters to rebuild the planner as it was trained."""
    return {"task": task, "seed": seed, "params": json.loads(p.model_dump_json())}


def networks(data, p: PETSParams) -> dict[str, Network]:
    """The ensemble of every finished `full` run of the released seed under data/<scale>/pets/ (its final weights,
    in the layout of wmlib.experiments.pets.train.run_dir) as a float32 release network."""
    full, seed, nets = Path(data) / "full", released_seed(p), {}
    for path in sorted(full.glob(f"*/*/seed{seed}/{WEIGHTS}")):  # <task as a path>/seed<k>/
        task = path.parent.parent.relative_to(full).as_posix()
        nets[f"{task.replace('/', '_')}_seed{seed}"] = Network(load_torch(path)["ensemble"], meta(task, seed, p), path)
    return nets


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export PETS's release weights (the weights_pets stage).")
    ap.add_argument("--scale", required=True)
    args = ap.parse_args(argv)
    run = setup(args.scale)
    nets = networks(run.data, run.params)
    if not nets:
        raise FileNotFoundError(f"{run.data}: no finished PETS run of seed {released_seed(run.params)} (run the "
                                "pets_job stages first)")
    agents = {agent_name(n.meta["task"], n.meta["seed"]): [stem] for stem, n in nets.items()}
    evaluation = {"seeds": eval_seeds(run.params.evaluation.episodes), "max_frames": run.params.evaluation.max_frames}
    publish(run, EXPERIMENT, nets, agents, evaluation, make_players)


if __name__ == "__main__":
    main()
