"""Model-based RL on MuJoCo control tasks: TD-MPC (planning) and Dreamer (imagination), beside SAC and a
random policy; notebooks 11-16.

    tdmpc        the agent: latent model losses, policy prior, MPPI acting (wmlib.control.planners)
    job          the one job entry point every DVC job stage runs: python -m wmlib.experiments.mujoco.job ...
    train        11-12. one job per task and seed (a DVC stage each): the model-based loop (TD-MPC, Dreamer), SB3 SAC
    dreamer      14. the Dreamer agent (wmlib.models.world_model, wmlib.control.actor_critic) and its jobs
    diagnostics  15. open-loop prediction error of Dreamer's world model, the ablation table
    planning     13. sampling planners driving one trained model; the TD-MPC2 switch ablations; the width study
    comparison   16. rows over seeds with bootstrap intervals beside the published seeds (wmlib.published), the
                 random policy, IQM and performance profiles over the DMC tasks, curves and summary rows

The tasks are in wmlib.envs.mujoco_tasks, the replay buffer in wmlib.data.replay, the evaluation harness in
wmlib.evaluation.
"""
from .. import Run
from .params import MujocoParams

EXPERIMENT = MujocoParams.section
# a training job's files in its run folder under data/ (train.run_dir; PETS's jobs too): the checkpoint it resumes
# from while it runs, deleted when it ends, and its final weights (small: kept in git at the committed scale)
CHECKPOINT, WEIGHTS = "checkpoint.pt", "agent.pt"


def setup(scale: str | None = None) -> Run:
    return Run.setup(MujocoParams, scale)
