"""The release's size from params.yaml alone (wmlib.release.budget): exact safetensors sizes, the files the default
release holds, and the 60 MB decision (one MuJoCo and PETS seed, V and M fp16 candidates)."""
import pytest
import torch

from wmlib.release import budget, save_weights


def test_file_row_is_the_written_files_size_and_fp16_halves_the_float_data(tmp_path):
    tensors = {"w": torch.randn(7, 5), "b": torch.randn(5), "step": torch.arange(3)}
    row = budget.file_row("x", "net", tensors, {"z_size": 32}, fp16_candidate=True)
    assert row["parameters"] == 7 * 5 + 5 + 3
    assert row["float32"] == save_weights(tensors, tmp_path / "a.safetensors", {"z_size": 32})["bytes"]
    assert row["fp16_if_passed"] == save_weights(tensors, tmp_path / "b.safetensors", {"z_size": 32},
                                                 torch.float16)["bytes"]
    assert row["float32"] - row["fp16_if_passed"] == 2 * 40  # the same header; 2 bytes less per float parameter
    assert budget.file_row("x", "net", tensors, {})["fp16_if_passed"] == budget.file_row("x", "net", tensors,
                                                                                        {})["float32"]


def pets_parameters(obs: int, act: int, members=5, hidden=128, layers=3) -> int:
    """PETS's ensemble by hand: B MLPs (obs + act) -> hidden x layers -> 2 (obs + 1), log-variance bounds per
    member and output, and the input and target standardisers' mean and std."""
    i, o = obs + act, obs + 1
    mlp = (i + 1) * hidden + (layers - 1) * (hidden + 1) * hidden + (hidden + 1) * 2 * o
    return members * mlp + 2 * members * o + 2 * i + 2 * o


@pytest.fixture(scope="module")
def default_release():
    torch.set_num_threads(1)
    return budget.release_files("default")


def test_the_default_release_files(default_release):
    files = default_release.set_index(["experiment", "file"])
    n = files.parameters.to_dict()
    assert n["carracing", "controller_full.safetensors"] == (32 + 256) * 3 + 3  # the paper's 867
    assert n["carracing", "controller_z_only.safetensors"] == 32 * 3 + 3
    taus = [k for k in n if k[0] == "doom" and k[1].startswith("controller_tau")]
    assert len(taus) == 5 and all(n[k] == 64 + 2 * 512 for k in taus)  # [z, c, h] -> 1, no bias
    mujoco = sorted(f for e, f in n if e == "mujoco")
    assert mujoco == sorted(f"{learner}_{task}_seed0.safetensors" for learner in ("tdmpc", "dreamer", "sac")
                            for task in ("dmc_cartpole-swingup", "dmc_walker-walk", "dmc_cheetah-run",
                                         "gym_HalfCheetah-v5", "gym_Hopper-v5"))
    dims = {"dmc_cartpole-swingup": (5, 1), "dmc_walker-walk": (24, 6), "gym_HalfCheetah-v5": (17, 6)}
    assert {f: v for (e, f), v in n.items() if e == "pets"} == {
        f"{task}_seed0.safetensors": pets_parameters(*d) for task, d in dims.items()}
    assert set(files.index[files.fp16_candidate]) == {(e, f"{m}.safetensors") for e in ("carracing", "doom")
                                                      for m in ("vae", "mdnrnn")}
    for _, row in default_release.iterrows():  # 4 bytes per parameter plus a JSON header of ~100 B per tensor
        assert 0 < row.float32 - 4 * row.parameters < 12_000, row.file


def test_the_default_release_fits_the_budget_and_every_seed_would_not(default_release):
    """The decision: with one MuJoCo and PETS seed the release fits even if no fp16 check passes; with every seed
    of params.yaml it would not, even if every one passed."""
    from wmlib.experiments.mujoco.params import MujocoParams
    from wmlib.experiments.pets.params import PETSParams
    from wmlib.params import load_params

    totals = budget.totals(default_release)
    assert totals["fp16_if_passed"] < totals["float32"] <= budget.BUDGET_BYTES
    per_seed = {e: default_release.float32[default_release.experiment == e].sum() for e in ("mujoco", "pets")}
    more = sum((len(load_params(s, "default").seeds) - 1) * per_seed[e]
               for e, s in (("mujoco", MujocoParams), ("pets", PETSParams)))
    assert totals["fp16_if_passed"] + more > budget.BUDGET_BYTES
