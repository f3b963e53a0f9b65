"""One MuJoCo training job, as each DVC job stage runs it (dvc.yaml: mujoco_{tdmpc,sac,dreamer}_job,
mujoco_tdmpc_width_job):

    python -m wmlib.experiments.mujoco.job --scale S --learner tdmpc|sac|dreamer --task T --seed N [--variant wide]

The learner's module is imported by its name in LEARNERS, so that a job runs, and its stage depends on, only its
own learner's code (tests/test_dependencies.py reads LEARNERS to check each stage's deps).
"""
import argparse
import importlib

from . import setup
from .train import JOB_VARIANTS

# learner -> (module, training function(shared, job)); SAC's job is (task, seed), the others' (task, seed, variant)
LEARNERS = {"tdmpc": ("wmlib.experiments.mujoco.train", "train_tdmpc"),
            "sac": ("wmlib.experiments.mujoco.train", "train_sac"),
            "dreamer": ("wmlib.experiments.mujoco.dreamer", "train_dreamer")}


def main(argv=None):
    ap = argparse.ArgumentParser(description="One MuJoCo training job (a DVC stage each).")
    ap.add_argument("--scale", required=True)
    ap.add_argument("--learner", required=True, choices=list(LEARNERS))
    ap.add_argument("--task", required=True)
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--variant", default="full", choices=JOB_VARIANTS)
    args = ap.parse_args(argv)
    run = setup(args.scale)
    p = run.params
    if args.task not in p.budgets or args.seed not in p.seeds:
        raise SystemExit(f"--task {args.task} --seed {args.seed}: not a job of mujoco at scale {run.scale} "
                         f"(tasks {list(p.budgets)}, seeds {p.seeds})")
    if args.variant == "wide" and (args.learner, args.task) != ("tdmpc", p.width_study.task):
        raise SystemExit(f"--variant wide: only for --learner tdmpc on the width study's task {p.width_study.task}")
    module, function = LEARNERS[args.learner]
    train = getattr(importlib.import_module(module), function)
    job = (args.task, args.seed) if args.learner == "sac" else (args.task, args.seed, args.variant)
    result = train((p, run.data, run.results), job)
    print(f"{args.learner} {args.task} {args.variant} seed {args.seed}: return {result['mean']:.1f} +- "
          f"{result['std']:.1f} over {result['n']} episodes, {result['core_hours']:.3f} core-hours")


if __name__ == "__main__":
    main()
