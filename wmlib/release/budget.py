"""The size of a scale's release, computed without training: every file the weights_* stages would write, its
network built untrained from params.yaml and serialised as wmlib.release serialises it (safetensors: an 8-byte
length, the JSON header with the file's meta, then the tensors), so each size is exact for any trained weights of
that architecture.

    python -m wmlib.release.budget --scale default               # one row per file, the totals
    python -m wmlib.release.budget --scale default --all-seeds   # as if every MuJoCo and PETS seed were released

The decision this backs (README, "Trained agents in a clone"; tests/test_release.py checks it at the default
scale): MuJoCo and PETS release one seed per learner and task (wmlib.release.control.released_seed; the others stay
in the DVC cache), Dreamer without the heads only training uses (wmlib.release.mujoco.DREAMER_ACTING), and V and M
of both World Models experiments are fp16 candidates (stored in float16 where the stage's check passes), so the
release is within `BUDGET_BYTES` even where no check passes; every seed would not be, even if every check passed.
"""
import argparse

import pandas as pd
import torch

from ..params import load_params
from . import serialise

BUDGET_BYTES = 60e6  # "at most about 60 MB" of weights in git (issue 13)


def file_row(experiment: str, stem: str, tensors: dict, meta: dict, fp16_candidate: bool = False) -> dict:
    """One release file's parameters and bytes in float32 and as stored if its fp16 check passes."""
    fp32 = len(serialise(tensors, meta))
    return {"experiment": experiment, "file": f"{stem}.safetensors", "parameters": sum(v.numel() for v in
            tensors.values()), "fp16_candidate": fp16_candidate, "float32": fp32,
            "fp16_if_passed": len(serialise(tensors, meta, torch.float16)) if fp16_candidate else fp32}


def world_models(scale: str) -> list[dict]:
    """CarRacing's V, M and both controllers; Doom's V, M and the controller of each tau (wmlib.release.carracing,
    .doom)."""
    from ..envs.carracing import CARRACING_ACTION_SIZE
    from ..experiments.carracing import controller as cr
    from ..experiments.carracing.params import CarRacingParams
    from ..experiments.doom import controller as doom
    from ..experiments.doom.params import DoomParams
    from ..experiments.doom.world_model import make_mdnrnn
    from ..models.mdnrnn import MDNRNN
    from ..models.vae import ConvVAE
    from .carracing import VARIANTS
    from .doom import tau_stem

    rows = []
    for experiment, schema in (("carracing", CarRacingParams), ("doom", DoomParams)):
        p = load_params(schema, scale)
        z, h, k = p.vae.z_size, p.mdnrnn.hidden, p.mdnrnn.mixtures
        m = MDNRNN(z, CARRACING_ACTION_SIZE, h, k) if experiment == "carracing" else make_mdnrnn(z, h, k)
        rows += [file_row(experiment, "vae", ConvVAE(z).state_dict(), {"z_size": z}, True),
                 file_row(experiment, "mdnrnn", m.state_dict(), {"z_size": z, "hidden": h, "mixtures": k}, True)]
        controllers = ({f"controller_{v}": (cr.make_controller(v, z, h), {"variant": v}) for v in VARIANTS}
                       if experiment == "carracing" else
                       {tau_stem(t): (doom.make_controller(z, h), {"tau": float(t)}) for t in p.taus})
        rows += [file_row(experiment, stem, {"params": torch.zeros(c.n_params)}, meta)
                 for stem, (c, meta) in controllers.items()]
    return rows


def mujoco(scale: str, seeds: list[int] | None = None) -> list[dict]:
    """Every TD-MPC, Dreamer and SAC file (wmlib.release.mujoco) of `seeds` (default: the released one)."""
    from stable_baselines3 import SAC

    from ..envs.mujoco_tasks import make_env
    from ..experiments.mujoco import dreamer, train
    from ..experiments.mujoco.params import MujocoParams
    from . import mujoco as rm
    from .control import released_seed

    p, rows = load_params(MujocoParams, scale), []
    for task in p.budgets:
        env = make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames)
        states = {"tdmpc": train.make_agent(p, task).state_dict(), "dreamer": dreamer.make_agent(p, task).state_dict(),
                  "sac": {"policy": SAC("MlpPolicy", env, device="cpu").policy.state_dict()}}
        env.close()
        rows += [file_row("mujoco", rm.stem(learner, task, seed), rm.acting_tensors(learner, states[learner]),
                          rm.meta(learner, task, seed, p))
                 for seed in seeds or [released_seed(p)] for learner in rm.LEARNERS]
    return rows


def pets(scale: str, seeds: list[int] | None = None) -> list[dict]:
    """Every PETS ensemble file (wmlib.release.pets) of `seeds` (default: the released one)."""
    from ..envs.mujoco_tasks import make_env
    from ..experiments.pets.params import PETSParams
    from ..models.ensemble import make_ensemble
    from . import pets as rp
    from .control import released_seed

    p, rows = load_params(PETSParams, scale), []
    for task in p.budgets:
        env = make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames)
        ens = make_ensemble(env.observation_space.shape[0], env.action_space.shape[0], p.ensemble)
        env.close()
        rows += [file_row("pets", f"{task.replace('/', '_')}_seed{seed}", ens.state_dict(), rp.meta(task, seed, p))
                 for seed in seeds or [released_seed(p)]]
    return rows


def release_files(scale: str, all_seeds: bool = False) -> pd.DataFrame:
    """One row per file of the scale's release (experiment, file, parameters, fp16_candidate, bytes in float32 and
    as stored if its fp16 check passes); `all_seeds`: every MuJoCo and PETS seed of params.yaml, not only the
    released one."""
    from ..experiments.mujoco.params import MujocoParams
    from ..experiments.pets.params import PETSParams

    seeds = {s: load_params(s, scale).seeds if all_seeds else None for s in (MujocoParams, PETSParams)}
    return pd.DataFrame(world_models(scale) + mujoco(scale, seeds[MujocoParams]) + pets(scale, seeds[PETSParams]))


def totals(files: pd.DataFrame) -> dict[str, int]:
    """Bytes of the release if every fp16 check passes (`fp16_if_passed`) and if none does (`float32`)."""
    return {k: int(files[k].sum()) for k in ("fp16_if_passed", "float32")}


def main(argv=None):
    ap = argparse.ArgumentParser(description="The size of a scale's release weights, from params.yaml alone.")
    ap.add_argument("--scale", default="default")
    ap.add_argument("--all-seeds", action="store_true", help="release every MuJoCo and PETS seed, not only the first")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files = release_files(args.scale, args.all_seeds)
    with pd.option_context("display.width", 160, "display.max_rows", None):
        print(files.to_string(index=False))
        print(files.groupby("experiment")[["parameters", "float32", "fp16_if_passed"]].sum() / 1e6)
    t = totals(files)
    print(f"total: {t['fp16_if_passed'] / 1e6:.1f} MB if every fp16 check passes, {t['float32'] / 1e6:.1f} MB if "
          f"none does (budget {BUDGET_BYTES / 1e6:.0f} MB)")
    return files


if __name__ == "__main__":
    main()
