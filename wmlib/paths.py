"""Where things live: every path is resolved from the repository root, never the working directory.

Under `dvc repro` a run writes the pipeline's own outputs (data/, results/). Anywhere else (a notebook stepped
through in JupyterLab, papermill by hand, the notebook tests) it writes to scratch/, which starts as a view of the
pipeline's files: a run there reads what the pipeline made and never changes it. WMLIB_OUTPUTS=pipeline writes the
pipeline's outputs outside DVC; delete scratch/ to start over from the pipeline's files.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "scratch"


def data_dir(scale: str, experiment: str) -> Path:
    """Large artifacts (rollouts, checkpoints): DVC-cached, git-ignored. `data/<scale>/<experiment>/`."""
    return ROOT / "data" / scale / experiment


def results_dir(scale: str, experiment: str) -> Path:
    """Small artifacts (metrics, figures, executed notebooks): committed. `results/<scale>/<experiment>/`."""
    return ROOT / "results" / scale / experiment


def writes_pipeline_outputs() -> bool:
    """True under `dvc repro` (DVC sets DVC_STAGE for every stage command) or with WMLIB_OUTPUTS=pipeline;
    False elsewhere or with WMLIB_OUTPUTS=scratch."""
    mode = os.environ.get("WMLIB_OUTPUTS", "")
    if mode not in ("", "pipeline", "scratch"):
        raise ValueError(f"environment variable WMLIB_OUTPUTS must be 'pipeline' or 'scratch', got {mode!r}")
    return mode == "pipeline" or (not mode and "DVC_STAGE" in os.environ)


def scratch_view(path: Path) -> Path:
    """scratch/<path relative to the root>, with a link to each of the pipeline's files under `path` that scratch
    has not written itself. Every write replaces a file in one rename (wmlib.io), which replaces a link, never the
    pipeline's file behind it."""
    view = SCRATCH / path.relative_to(ROOT)
    for file in path.rglob("*") if path.is_dir() else ():
        target = view / file.relative_to(path)
        if file.is_file() and not target.exists() and not target.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    view.mkdir(parents=True, exist_ok=True)
    return view
