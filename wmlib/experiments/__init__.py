"""One package per experiment, one module per pipeline step; the numbered notebooks call them in order."""
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel

from ..parallel import WorkerPool
from ..params import load_params, resolve_scale
from ..paths import data_dir, results_dir


@dataclass
class Run:
    """Where one scale of an experiment reads and writes, and with which parameters."""
    scale: str
    params: BaseModel  # the experiment's validated section of params.yaml at this scale
    data: Path         # data/<scale>/<experiment>: rollouts and checkpoints (DVC-cached)
    results: Path      # results/<scale>/<experiment>: metrics and figures (committed)

    def pool(self) -> WorkerPool:
        return WorkerPool.from_params(self.params.parallel)

    @classmethod
    def setup(cls, experiment: str, scale: str | None = None):
        """Resolve the scale, load the parameters, create the folders, seed torch."""
        scale = resolve_scale(scale)
        params = load_params(experiment, scale)
        run = cls(scale, params, data_dir(scale, experiment), results_dir(scale, experiment))
        run.data.mkdir(parents=True, exist_ok=True)
        run.results.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(params.seed)
        return run
