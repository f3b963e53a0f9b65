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

from ..envs.seeds import episode_seeds
from ..envs.takecover import make_takecover
from ..evaluation import EvalResult, run_episode
from ..experiments.doom import setup
from ..experiments.doom.controller import DoomAgent
from ..io import load_torch
from . import Network, export

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
    vae, mdnrnn = load_torch(data / "vae.pt"), load_torch(data / "mdnrnn.pt")
    out = {"vae": Network(vae["model"], {"z_size": vae["z_size"]}, data / "vae.pt", fp16_candidate=True),
           "mdnrnn": Network(mdnrnn["model"], {k: mdnrnn[k] for k in ("z_size", "hidden", "mixtures")},
                             data / "mdnrnn.pt", fp16_candidate=True)}
    for tau in taus:
        path = data / "taus" / str(float(tau)) / "controller.pt"
        params = torch.as_tensor(np.asarray(load_torch(path)["params"], np.float32))
        out[tau_stem(tau)] = Network({"params": params}, {"tau": float(tau)}, path)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export TakeCover's release weights (the weights_doom stage).")
    ap.add_argument("--scale", required=True)
    args = ap.parse_args(argv)
    run = setup(args.scale)
    p = run.params
    evaluation = {"seeds": episode_seeds("eval", p.evaluation.episodes), "max_steps": p.evaluation.max_steps}
    agents = {f"tau={tau:g}": ["vae", "mdnrnn", tau_stem(tau)] for tau in p.taus}
    manifest = export(run.results.parent / "weights" / EXPERIMENT, EXPERIMENT, run.scale, networks(run.data, p.taus),
                      agents, evaluation, make_players)
    print(f"{EXPERIMENT}: {len(manifest['files'])} files, {manifest['total_bytes'] / 1e6:.1f} MB, "
          f"fp16 check {manifest['fp16_check']}")


if __name__ == "__main__":
    main()
