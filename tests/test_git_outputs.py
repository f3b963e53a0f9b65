"""The pipeline outputs kept in git (`cache: false` under data/ in dvc.yaml: World Models' V, M, C and CMA-ES
checkpoints, the MuJoCo and PETS runs' final weights) are not ignored by git, or they would be silently lost with the
machine's DVC cache."""
import subprocess

import pytest
from dvc.repo import Repo

from wmlib.paths import ROOT


def git_outputs() -> list[str]:
    """Every `cache: false` output under data/ at the committed scale; a directory as a run's final weights in it."""
    with Repo(str(ROOT)) as repo:
        outs = [o.def_path for s in repo.index.stages for o in s.outs if not o.use_cache]
    return sorted(p if p.endswith((".pt", ".pkl")) else f"{p}/run/agent.pt" for p in outs if p.startswith("data/"))


OUTPUTS = git_outputs()


def ignored(path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0


def test_world_models_checkpoints_are_kept_in_git():
    assert "data/default/carracing/vae.pt" in OUTPUTS and "data/default/doom/cmaes/1.15-4.pkl" in OUTPUTS
    assert "data/default/mujoco/dreamer/full/gym/Hopper-v5/seed2/agent.pt" in OUTPUTS
    assert "data/default/pets/full/dmc/walker-walk/seed0/agent.pt" in OUTPUTS


@pytest.mark.parametrize("path", OUTPUTS)
def test_git_output_is_not_ignored(path):
    assert not ignored(path), f"{path}: a cache: false output of dvc.yaml, but .gitignore ignores it"


def test_cached_data_stays_ignored():
    assert ignored("data/default/carracing/rollouts/ep_0000000.npz") and ignored("data/default/doom/mdnrnn.ckpt")
    for run in ("mujoco/tdmpc/full/dmc/walker-walk/seed0", "pets/full/dmc/walker-walk/seed0",
                "mujoco/tdmpc/ablations/no_simnorm/dmc/cartpole-swingup/seed0"):
        assert ignored(f"data/default/{run}/checkpoint.pt")  # with its replay buffer: large, and gone when it ends
    assert ignored("data/default/mujoco/sac/full/gym/Hopper-v5/seed0/replay.pkl")
