"""CarRacing's release weights: V, M and both controllers (agents `full`: V+M+C on [z, h]; `z_only`: V+C on z).

    python -m wmlib.release.carracing --scale default   # the weights_carracing stage

A Player steps its episodes in batches of the evaluation stage's size, with V, M and C built exactly as there
(wmlib.experiments.carracing.controller.build_agent), so the first `batch` evaluation seeds give the stored returns.
"""
import argparse
import math

import numpy as np

from ..envs.carracing import make_carracing
from ..evaluation import EvalResult, run_batch, run_episode
from ..experiments.carracing import setup
from ..experiments.carracing.controller import build_agent
from . import Network, controller_network, publish, world_model_evaluation, world_model_networks

EXPERIMENT = "carracing"
VARIANTS = ("full", "z_only")


class Player:
    def __init__(self, tensors: dict, metas: dict, evaluation: dict, variant: str):
        shared = {"variant": variant, "vae": {**metas["vae"], "model": tensors["vae"]}}
        if variant == "full":
            shared["mdnrnn"] = {**metas["mdnrnn"], "model": tensors["mdnrnn"]}
        self.agent, self.params = build_agent(shared), tensors[f"controller_{variant}"]["params"].numpy()
        self.max_steps, self.batch = evaluation["max_steps"], evaluation["batch"]

    def evaluate(self, seeds: list[int]) -> EvalResult:
        """One episode per seed, `batch` at a time as the evaluation stage stepped them."""
        envs = [make_carracing(self.max_steps) for _ in range(min(self.batch, len(seeds)))]
        res = [r for i in range(0, len(seeds), self.batch)
               for r in run_batch(envs, self.agent, self.params, seeds[i:i + self.batch])]
        for env in envs:
            env.close()
        return EvalResult(EXPERIMENT, list(seeds), [float(r) for r, _ in res], [int(n) for _, n in res])

    def record(self, seed: int, max_steps: int | None = None) -> np.ndarray:
        """Frames (T, 64, 64, 3) that the agent saw in one episode."""
        env = make_carracing(max_steps or self.max_steps)
        self.agent.reset(self.params, [seed])
        _, _, frames = run_episode(env, lambda obs: self.agent(obs[None])[0], seed, record=True, reset=lambda: None)
        env.close()
        return frames


def make_players(tensors: dict, metas: dict, evaluation: dict) -> dict[str, Player]:
    return {v: Player(tensors, metas, evaluation, v) for v in VARIANTS if f"controller_{v}" in tensors}


def networks(data) -> dict[str, Network]:
    """data/<scale>/carracing's final checkpoints as release networks; V and M may go to fp16, C stays fp32."""
    return {**world_model_networks(data), **{f"controller_{v}": controller_network(data / f"controller_{v}.pt",
                                                                                   {"variant": v}) for v in VARIANTS}}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export CarRacing's release weights (the weights_carracing stage).")
    ap.add_argument("--scale", required=True)
    args = ap.parse_args(argv)
    run = setup(args.scale)
    p = run.params
    n = p.evaluation.episodes  # the evaluation stage's batch (wmlib.experiments.carracing.controller)
    evaluation = world_model_evaluation(p, batch=max(1, min(p.controller.batch, math.ceil(n / p.parallel.workers))))
    agents = {"full": ["vae", "mdnrnn", "controller_full"], "z_only": ["vae", "controller_z_only"]}
    publish(run, EXPERIMENT, networks(run.data), agents, evaluation, make_players)


if __name__ == "__main__":
    main()
