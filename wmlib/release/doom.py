"""VizDoom TakeCover's release weights: V, M and the controller trained in the dream at each tau (agents `tau=<tau>`),
played in the real game.

    python -m wmlib.release.doom --scale default   # the weights_doom stage

The agent samples z from V's encoding; here torch's generator is seeded with each episode's seed, so an episode is
repeatable from the weights alone (the evaluation stage's workers drew from their own streams: same distribution,
not the same numbers).
"""
import argparse

import numpy as np
import torch

from ..envs.takecover import make_takecover
from ..evaluation import EvalResult, run_episode
from ..experiments.doom import setup
from ..experiments.doom.controller import DoomAgent
from . import Network, controller_network, publish, world_model_evaluation, world_model_networks

EXPERIMENT = "doom"


def tau_stem(tau: float) -> str:
    return f"controller_tau{float(tau)}"


class Player:
    def __init__(self, tensors: dict, metas: dict, evaluation: dict, stem: str):
        shared = {"vae": {**metas["vae"], "model": tensors["vae"]},
                  "mdnrnn": {**metas["mdnrnn"], "model": tensors["mdnrnn"]}}
        self.agent = DoomAgent(shared, tensors[stem]["params"].numpy())
        self.max_steps = evaluation["max_steps"]

    def _episodes(self, seeds, record: bool, max_steps: int):
        env = make_takecover(max_steps)
        try:
            for seed in seeds:
                torch.manual_seed(seed)
                env.action_space.seed(seed)
                yield run_episode(env, self.agent, seed, record=record)
        finally:
            env.close()

    def evaluate(self, seeds: list[int]) -> EvalResult:
        res = [r[:2] for r in self._episodes(seeds, False, self.max_steps)]
        return EvalResult(EXPERIMENT, list(seeds), [float(r) for r, _ in res], [int(n) for _, n in res])

    def record(self, seed: int, max_steps: int | None = None) -> np.ndarray:
        """Frames (T, 64, 64, 3) that the agent saw in one episode."""
        return next(self._episodes([seed], True, max_steps or self.max_steps))[2]


def make_players(tensors: dict, metas: dict, evaluation: dict) -> dict[str, Player]:
    return {f"tau={metas[s]['tau']:g}": Player(tensors, metas, evaluation, s) for s in tensors
            if s.startswith("controller_")}


def networks(data, taus) -> dict[str, Network]:
    """data/<scale>/doom's final checkpoints as release networks; V and M may go to fp16, C stays fp32."""
    return {**world_model_networks(data), **{tau_stem(tau): controller_network(
        data / "taus" / str(float(tau)) / "controller.pt", {"tau": float(tau)}) for tau in taus}}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export TakeCover's release weights (the weights_doom stage).")
    ap.add_argument("--scale", required=True)
    args = ap.parse_args(argv)
    run = setup(args.scale)
    agents = {f"tau={tau:g}": ["vae", "mdnrnn", tau_stem(tau)] for tau in run.params.taus}
    publish(run, EXPERIMENT, networks(run.data, run.params.taus), agents, world_model_evaluation(run.params),
            make_players)


if __name__ == "__main__":
    main()
