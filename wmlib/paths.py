"""Where things live: every path is resolved from the repository root, never the working directory."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir(scale: str, experiment: str) -> Path:
    """Large artifacts (rollouts, checkpoints): DVC-cached, git-ignored. `data/<scale>/<experiment>/`."""
    return ROOT / "data" / scale / experiment


def results_dir(scale: str, experiment: str) -> Path:
    """Small artifacts (metrics, figures, executed notebooks): committed. `results/<scale>/<experiment>/`."""
    return ROOT / "results" / scale / experiment
