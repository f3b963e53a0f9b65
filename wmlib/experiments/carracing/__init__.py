"""World Models on CarRacing, one module per pipeline step; notebooks 01-05 call them in order.

    rollouts      1. random episodes to disk
    world_model   2-3. every frame encoded by V (trained by wmlib.experiments.world_models); M (MDN-RNN), dreams
    controller    4. C trained with CMA-ES in the real environment
    evaluation    5. scores on new tracks, summary rows, compute used
"""
from .. import Run
from .params import CarRacingParams

EXPERIMENT = CarRacingParams.section
METHODS = {  # method key -> (label in tables, paper Table 1 mean, std)
    "full": ("V+M+C (z, h)", 906.0, 21.0),
    "z_only": ("V only (z)", 632.0, 251.0),
    "random": ("random policy", None, None),
}


def setup(scale: str | None = None) -> Run:
    return Run.setup(CarRacingParams, scale)

