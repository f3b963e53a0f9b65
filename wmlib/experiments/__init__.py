"""One package per experiment, one module per pipeline step; the numbered notebooks call them in order."""
import ast
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel

from ..device import resolve_device
from ..parallel import WorkerPool
from ..params import StrictParams, load_params, resolve_scale
from ..paths import data_dir, results_dir, scratch_view, writes_pipeline_outputs


@dataclass
class Run:
    """Where one scale of an experiment reads and writes, and with which parameters."""
    scale: str
    params: BaseModel  # the experiment's validated section of params.yaml at this scale
    data: Path         # data/<scale>/<experiment>: rollouts and checkpoints (DVC-cached); outside DVC, in scratch/
    results: Path      # results/<scale>/<experiment>: metrics and figures (committed); outside DVC, in scratch/
    device: torch.device = torch.device("cpu")  # where this process builds its models (params `device`, resolved)

    def pool(self, trains: bool = False) -> WorkerPool:
        """The scale's workers; `trains`: its tasks train models, so on Ray each requests `parallel.gpus_per_task`
        GPUs unless the device is `cpu` (the head itself may have no GPU)."""
        gpus = self.params.parallel.gpus_per_task if trains and self.params.device != "cpu" else 0.0
        return WorkerPool.from_params(self.params.parallel, gpus)

    @classmethod
    def setup(cls, schema: type[StrictParams], scale: str | None = None):
        """Check a notebook's papermill parameters, resolve the scale and the device, load the experiment's
        parameters (`schema`, its section of params.yaml), create the folders (the pipeline's under DVC, else their
        view in scratch/: wmlib.paths), seed torch."""
        check_papermill_parameters()
        scale = resolve_scale(scale)
        params = load_params(schema, scale)
        data, results = data_dir(scale, schema.section), results_dir(scale, schema.section)
        if not writes_pipeline_outputs():
            data, results = scratch_view(data), scratch_view(results)
        run = cls(scale, params, data, results, resolve_device(params.device))
        run.data.mkdir(parents=True, exist_ok=True)
        run.results.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(params.seed)
        return run


def check_papermill_parameters():
    """In a notebook run by papermill, the `-p` parameters arrive as a cell that starts with '# Parameters', run
    right after the notebook's own parameters cell: a name the notebook does not declare there (a misspelled -p)
    is an error, where papermill only warns. Does nothing outside papermill."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    inputs = get_ipython().user_ns.get("In", []) if get_ipython() else []
    injected = [i for i, source in enumerate(inputs) if source.startswith("# Parameters\n")]
    if not injected or injected[-1] == 0:
        return
    given, declared = (_assigned(inputs[i]) for i in (injected[-1], injected[-1] - 1))
    if given - declared:
        raise ValueError(f"unknown notebook parameter(s) {sorted(given - declared)}: this notebook takes "
                         f"{', '.join(sorted(declared))} (a misspelled papermill -p?)")


def _assigned(source: str) -> set[str]:
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}
