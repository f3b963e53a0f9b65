"""params.yaml as a whole: every experiment's section at every scale, and the scale switch.

`python -m wmlib.experiments.params --stamp results/<scale>/params.ok` is the pipeline's first stage: every stage
depends on its stamp, so a typo stops `dvc repro` with one error listing every problem before any stage deletes its
outputs. Each experiment's schema lives with the experiment (wmlib/experiments/<name>/params.py), so that a change
to one experiment's parameters reruns only that experiment's stages.
"""
import argparse
import os
import sys
from pathlib import Path

from ..params import PARAMS_FILE, SCALES, ParamsError, read_params_file, resolve_scale, validate_section
from .carracing.params import CarRacingParams
from .doom.params import DoomParams
from .mujoco.params import MujocoParams
from .pets.params import PETSParams

EXPERIMENTS = {schema.section: schema for schema in (CarRacingParams, DoomParams, MujocoParams, PETSParams)}


def check_params(params_file: Path = PARAMS_FILE) -> None:
    """Validate all of params.yaml, every experiment at every scale, and the `scale:` switch (with $WMLIB_SCALE,
    which `dvc repro` never sees); one ParamsError lists every problem."""
    raw, problems = read_params_file(params_file), []
    unknown = set(raw) - {"scale", *EXPERIMENTS}
    if unknown:
        problems.append(f"{params_file}: unknown top-level key(s) {sorted(unknown)}")
    try:
        scale = resolve_scale(None, params_file)
        if os.environ.get("DVC_STAGE") and raw.get("scale") != scale:
            problems.append(f"environment variable WMLIB_SCALE={scale} does not reach `dvc repro`, which runs the "
                            f"scale in {params_file} ({raw.get('scale')}); run another scale with `make repro SCALE="
                            f"{scale}` (a scratch workspace) instead")
    except ParamsError as e:
        problems.append(str(e))
    for schema in EXPERIMENTS.values():
        for scale in SCALES:
            try:
                validate_section(raw, schema, scale, params_file)
            except ParamsError as e:
                problems.append(str(e))
    if problems:
        raise ParamsError("\n".join(problems))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Validate params.yaml: every experiment, every scale.")
    ap.add_argument("--stamp", type=Path, help="on success, write this file (the stage's output every stage needs)")
    args = ap.parse_args(argv)
    try:
        check_params()
    except ParamsError as e:
        sys.exit(f"params.yaml is invalid; nothing was run:\n{e}")
    if args.stamp:
        args.stamp.parent.mkdir(parents=True, exist_ok=True)
        args.stamp.write_text("params.yaml: every experiment valid at every scale\n")
    print(f"{PARAMS_FILE}: every experiment valid at every scale ({', '.join(SCALES)})")


if __name__ == "__main__":
    main()
