"""World Models on VizDoom TakeCover, one module per pipeline step; notebooks 06-10 call them in order.

    rollouts      6. random episodes to disk (the environment: wmlib.envs.takecover)
    world_model   7-8. every frame encoded by V (z = 64, trained by wmlib.experiments.world_models); M (MDN-RNN
                     with a done head), dreams decoded to frames
    controller    9. C trained with CMA-ES inside M's dream at one temperature, then scored in the
                     dream and in the real game
    table         10. the temperature table beside the paper's, and the summary rows
"""
from pathlib import Path

from .. import Run as _Run
from .params import DoomParams

EXPERIMENT = DoomParams.section
PAPER_TABLE = {  # tau -> (dream mean, std, real mean, std); paper Table 2, frames survived over 100 trials
    0.10: (2086.0, 140.0, 193.0, 58.0),
    0.50: (2060.0, 277.0, 196.0, 50.0),
    1.00: (1145.0, 690.0, 868.0, 511.0),
    1.15: (918.0, 546.0, 1092.0, 556.0),
    1.30: (732.0, 269.0, 753.0, 139.0),
}
PAPER_RANDOM = (210.0, 108.0)
SOLVED = 750


class Run(_Run):
    def tau_dir(self, tau: float, kind: str = "results") -> Path:
        """results/<scale>/doom/taus/<tau>/ (or data/... with kind='data'): one controller's files."""
        path = (self.results if kind == "results" else self.data) / "taus" / str(float(tau))
        path.mkdir(parents=True, exist_ok=True)
        return path


def setup(scale: str | None = None) -> Run:
    return Run.setup(DoomParams, scale)

