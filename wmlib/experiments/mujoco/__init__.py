"""Model-based RL on MuJoCo control tasks: TD-MPC (planning) and Dreamer (imagination), beside SAC and a
random policy; notebooks 11-16.

    env          the tasks (DeepMind Control via shimmy, gymnasium MuJoCo) as states or 64x64 frames, action repeat
    replay       whole episodes, sampled as sub-trajectories
    tdmpc        the agent: latent model losses, policy prior, MPPI acting (wmlib.planners)
    evaluation   returns over fixed evaluation seeds; the random policy
    train        11-12. one job per task and seed: the model-based loop (TD-MPC, Dreamer), Stable-Baselines3 SAC
    dreamer      14. the Dreamer agent (wmlib.models.world_model, wmlib.actor_critic) and its jobs
    diagnostics  15. open-loop prediction error of Dreamer's world model, the ablation table
    study        13, 16. the planner study, the sample-efficiency table and figure, summary rows
"""
import os

from .. import Run

# MuJoCo picks its OpenGL backend when dm_control is first imported: headless software rendering (EGL on
# surfaceless Mesa) for the pixel observations, unless the user chose another.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("EGL_PLATFORM", "surfaceless")

EXPERIMENT = "mujoco"


def setup(scale: str | None = None) -> Run:
    return Run.setup(EXPERIMENT, scale)
