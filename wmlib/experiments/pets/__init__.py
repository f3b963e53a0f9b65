"""PETS on MuJoCo control tasks (Chua et al., 2018): a probabilistic ensemble planned through by CEM with
trajectory sampling; notebooks 18-19.

    params       the `pets` section of params.yaml
    train        18. one job per (task, seed, variant): collect with the planner, refit the ensemble, repeat
    uncertainty  19. what the ensemble knows about its errors: rank correlation, calibration, OOD separation

The ensemble is wmlib.models.ensemble, the planner wmlib.control.pets (over wmlib.control.planners), the tasks
and evaluation seeds wmlib.envs.mujoco_tasks, the evaluation harness wmlib.evaluation: the same as the learners
of wmlib.experiments.mujoco.
"""
from .. import Run
from .params import PETSParams

EXPERIMENT = PETSParams.section


def setup(scale: str | None = None) -> Run:
    return Run.setup(PETSParams, scale)
