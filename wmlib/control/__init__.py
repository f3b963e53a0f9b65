from .cmaes import CMAESRun, run_cmaes
from .controller import LinearController

__all__ = ["CMAESRun", "LinearController", "run_cmaes"]
