"""One package per experiment, one module per pipeline step; the numbered notebooks call them in order."""
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel

from ..device import resolve_device
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
    device: torch.device = torch.device("cpu")  # where this process builds its models (params `device`, resolved)

    def pool(self, trains: bool = False) -> WorkerPool:
        """The scale's workers; `trains`: its tasks train models, so on Ray each requests `parallel.gpus_per_task`
        GPUs unless the device is `cpu` (the head itself may have no GPU)."""
        gpus = self.params.parallel.gpus_per_task if trains and self.params.device != "cpu" else 0.0
        return WorkerPool.from_params(self.params.parallel, gpus)

    @classmethod
    def setup(cls, experiment: str, scale: str | None = None):
        """Resolve the scale and the device, load the parameters, create the folders, seed torch."""
        scale = resolve_scale(scale)
        params = load_params(experiment, scale)
        run = cls(scale, params, data_dir(scale, experiment), results_dir(scale, experiment),
                  resolve_device(params.device))
        run.data.mkdir(parents=True, exist_ok=True)
        run.results.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(params.seed)
        return run
