"""TD-MPC-style planning on MuJoCo control tasks, beside SAC and a random policy; notebooks 11-14.

    env          the tasks (DeepMind Control via shimmy, gymnasium MuJoCo), action repeat, frames
    replay       whole episodes, sampled as sub-trajectories
    tdmpc        the agent: latent model losses, policy prior, MPPI acting (wmlib.planners)
    evaluation   returns over fixed evaluation seeds; the random policy
    train        11-12. one job per task and seed: TD-MPC (and ablations), Stable-Baselines3 SAC
    study        13-14. the planner study, the sample-efficiency table and figure, summary rows
"""
from .. import Run

EXPERIMENT = "mujoco"


def setup(scale: str | None = None) -> Run:
    return Run.setup(EXPERIMENT, scale)
