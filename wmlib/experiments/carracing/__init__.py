"""World Models on CarRacing, one module per pipeline step; notebooks 01-05 call them in order.

    rollouts      1. random episodes to disk
    world_model   2-3. V (VAE) and M (MDN-RNN): training, encoding, dreams
    controller    4. C trained with CMA-ES in the real environment
    evaluation    5. scores on new tracks, summary rows, compute used
"""
from dataclasses import dataclass
from pathlib import Path

import torch

from ...parallel import WorkerPool
from ...params import CarRacingParams, load_params, resolve_scale
from ...paths import data_dir, results_dir

EXPERIMENT = "carracing"
METHODS = {  # method key -> (label in tables, paper Table 1 mean, std)
    "full": ("V+M+C (z, h)", 906.0, 21.0),
    "z_only": ("V only (z)", 632.0, 251.0),
    "random": ("random policy", None, None),
}


@dataclass
class Run:
    """Where one scale of the experiment reads and writes, and with which parameters."""
    scale: str
    params: CarRacingParams
    data: Path      # data/<scale>/carracing: rollouts and checkpoints (DVC-cached)
    results: Path   # results/<scale>/carracing: metrics and figures (committed)

    def pool(self) -> WorkerPool:
        return WorkerPool.from_params(self.params.parallel)


def setup(scale: str | None = None) -> Run:
    scale = resolve_scale(scale)
    params = load_params(EXPERIMENT, scale)
    run = Run(scale, params, data_dir(scale, EXPERIMENT), results_dir(scale, EXPERIMENT))
    run.data.mkdir(parents=True, exist_ok=True)
    run.results.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(params.seed)
    return run


from .controller import build_agent, load_controller_params, make_controller, train_controller  # noqa: E402
from .evaluation import compute_used, evaluate_methods, record_agent, summary_rows  # noqa: E402
from .rollouts import collect_rollouts  # noqa: E402
from .world_model import (dream, encode_rollouts, load_latents, load_mdnrnn, load_vae,  # noqa: E402
                          train_mdnrnn, train_vae)
