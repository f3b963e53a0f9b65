"""params.yaml: every scale validates; a bad key or value fails fast, naming it."""
import pytest
import yaml

from wmlib.experiments.carracing.params import CarRacingParams
from wmlib.experiments.doom.params import DoomParams
from wmlib.experiments.mujoco.params import MujocoParams
from wmlib.experiments.params import check_params
from wmlib.params import PARAMS_FILE, SCALES, ParamsError, load_params, resolve_scale
from wmlib.paths import ROOT


def write_params(tmp_path, mutate):
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("scale", SCALES)
def test_every_scale_of_the_repository_params_validates(scale):
    p = load_params(CarRacingParams, scale)
    assert p.vae.z_size == 32 and p.mdnrnn.hidden == 256
    d = load_params(DoomParams, scale)
    assert d.vae.z_size == 64 and d.mdnrnn.hidden == 512
    assert d.taus == [0.10, 0.50, 1.00, 1.15, 1.30]  # the paper's temperature table, at every scale


def test_paper_scale_uses_the_papers_hyperparameters():
    p = load_params(CarRacingParams, "paper")
    assert (p.controller.popsize, p.controller.rollouts, p.controller.sigma0) == (64, 16, 0.1)
    assert (p.vae.batch_size, p.vae.lr, p.vae.kl_tolerance) == (100, 1e-4, 0.5)
    assert (p.mdnrnn.mixtures, p.mdnrnn.seq_len, p.mdnrnn.lr, p.mdnrnn.grad_clip) == (5, 999, 1e-3, 1.0)
    assert (p.rollouts.episodes, p.evaluation.episodes, p.parallel.backend) == (10_000, 100, "ray")


def test_doom_paper_scale_uses_the_papers_hyperparameters():
    p = load_params(DoomParams, "paper")
    assert (p.controller.popsize, p.controller.rollouts, p.controller.sigma0, p.controller.max_steps) \
        == (64, 16, 0.1, 2100)
    assert (p.mdnrnn.batch_size, p.mdnrnn.seq_len, p.mdnrnn.done_weight, p.mdnrnn.lr, p.mdnrnn.lr_min) \
        == (100, 500, 10.0, 1e-3, 1e-5)
    assert (p.rollouts.episodes, p.rollouts.min_length, p.rollouts.hold) == (10_000, 100, [1, 10])


def test_misspelled_key_is_named(tmp_path):
    path = write_params(tmp_path, lambda r: r["carracing"]["smoke"]["vae"].update(lr_rate=1.0))
    with pytest.raises(ParamsError, match=r"carracing\.smoke\.vae\.lr_rate: Extra inputs are not permitted"):
        load_params(CarRacingParams, "smoke", path)


def test_missing_key_is_named(tmp_path):
    path = write_params(tmp_path, lambda r: r["carracing"]["smoke"]["controller"].pop("popsize"))
    with pytest.raises(ParamsError, match=r"carracing\.smoke\.controller\.popsize: Field required"):
        load_params(CarRacingParams, "smoke", path)


def test_ill_typed_value_is_named(tmp_path):
    # YAML 1.1 reads 1e-4 (no dot) as a string: the classic trap
    path = write_params(tmp_path, lambda r: r["carracing"]["smoke"]["vae"].update(lr="1e-4"))
    with pytest.raises(ParamsError, match=r"carracing\.smoke\.vae\.lr: .*got '1e-4'"):
        load_params(CarRacingParams, "smoke", path)
    path = write_params(tmp_path, lambda r: r["carracing"]["smoke"]["rollouts"].update(episodes=2.5))
    with pytest.raises(ParamsError, match=r"carracing\.smoke\.rollouts\.episodes"):
        load_params(CarRacingParams, "smoke", path)


def test_unknown_top_level_key_is_named(tmp_path):
    path = write_params(tmp_path, lambda r: r.update(carracin={}))
    with pytest.raises(ParamsError, match=r"unknown top-level key\(s\) \['carracin'\]"):
        check_params(path)


def test_scale_precedence(tmp_path, monkeypatch):
    path = write_params(tmp_path, lambda r: r.update(scale="default"))
    monkeypatch.delenv("WMLIB_SCALE", raising=False)
    assert resolve_scale(None, path) == "default"
    monkeypatch.setenv("WMLIB_SCALE", "smoke")
    assert resolve_scale(None, path) == "smoke"
    assert resolve_scale("paper", path) == "paper"


def test_bad_scale_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("WMLIB_SCALE", "huge")
    with pytest.raises(ParamsError, match="WMLIB_SCALE: scale must be one of smoke, default, paper"):
        resolve_scale()
    monkeypatch.delenv("WMLIB_SCALE")
    path = write_params(tmp_path, lambda r: r.update(scale="Default"))
    with pytest.raises(ParamsError, match="key 'scale'"):
        resolve_scale(None, path)


def test_unknown_task_in_budgets_names_it(tmp_path):
    def rename(r):
        budgets = r["mujoco"]["smoke"]["budgets"]
        budgets["dmc/walker-run"] = budgets.pop("dmc/walker-walk")
    with pytest.raises(ParamsError, match="dmc/walker-run"):
        load_params(MujocoParams, "smoke", write_params(tmp_path, rename))


def test_unknown_dreamer_ablation_names_it(tmp_path):
    def add(r):
        r["mujoco"]["smoke"]["dreamer"]["ablations"].append("no_reward")
    with pytest.raises(ParamsError, match="no_reward"):
        load_params(MujocoParams, "smoke", write_params(tmp_path, add))


def test_unknown_dreamer_ablation_task_names_it(tmp_path):
    def rename(r):
        r["mujoco"]["smoke"]["dreamer"]["ablation_task"] = "dmc/hopper-hop"
    with pytest.raises(ParamsError, match="dmc/hopper-hop"):
        load_params(MujocoParams, "smoke", write_params(tmp_path, rename))


def test_every_problem_in_every_scale_is_listed_at_once(tmp_path, monkeypatch):
    monkeypatch.delenv("WMLIB_SCALE", raising=False)

    def typos(r):
        r["carracing"]["default"]["vae"]["batchsize"] = r["carracing"]["default"]["vae"].pop("batch_size")
        r["doom"]["paper"]["controller"]["popsize"] = "64"
        r["mujoco"].pop("smoke")
        r["scale"] = "smok"
    with pytest.raises(ParamsError) as e:
        check_params(write_params(tmp_path, typos))
    message = str(e.value)
    for problem in ("scale must be one of smoke, default, paper, got 'smok'", "carracing.default.vae.batch_size",
                    "carracing.default.vae.batchsize", "doom.paper.controller.popsize", "missing key 'mujoco.smoke'"):
        assert problem in message
    check_params(PARAMS_FILE)  # the repository's own passes


def test_a_scale_set_in_the_environment_under_dvc_is_an_error(tmp_path, monkeypatch):
    path = write_params(tmp_path, lambda r: r.update(scale="default"))
    monkeypatch.setenv("WMLIB_SCALE", "smoke")
    monkeypatch.setenv("DVC_STAGE", "params")
    with pytest.raises(ParamsError, match="WMLIB_SCALE=smoke does not reach `dvc repro`"):
        check_params(path)
    monkeypatch.delenv("DVC_STAGE")
    check_params(path)  # outside DVC the variable is how notebooks pick their scale


def test_carracing_cmaes_stages_are_the_phases_of_every_scale():
    """dvc.yaml lists CarRacing's CMA-ES phases by hand (a stage each, chained by their checkpoints): they must be
    1..controller.phases for both controllers, at every scale, with phase k after phase k - 1."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["carracing_cmaes"]["foreach"]
    for scale in SCALES:
        phases = load_params(CarRacingParams, scale).controller.phases
        assert sorted(stages) == sorted(f"{v}-{k}" for v in ("full", "z_only") for k in range(1, phases + 1)), scale
    for name, item in stages.items():
        assert name == f"{item['variant']}-{item['phase']}"
        previous = f"data/${{scale}}/carracing/cmaes/{item['variant']}-{item['phase'] - 1}.pkl"
        assert item["after"] == (previous if item["phase"] > 1 else "results/${scale}/params.ok"), name


def test_doom_cmaes_stages_are_the_phases_of_every_tau_at_every_scale():
    """dvc.yaml lists TakeCover's CMA-ES phases by hand, a stage per (tau, phase) chained by their checkpoints: they
    must be doom.taus x 1..controller.phases at every scale, phase k after phase k - 1, and each tau's notebook stage
    must depend on all of its phases."""
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stages = raw["doom_cmaes"]["foreach"]
    for scale in SCALES:
        p = load_params(DoomParams, scale)
        assert sorted(stages) == sorted(f"{float(t)}-{k}" for t in p.taus for k in range(1, p.controller.phases + 1))
    for name, item in stages.items():
        assert name == f"{float(item['tau'])}-{item['phase']}"
        previous = f"data/${{scale}}/doom/cmaes/{float(item['tau'])}-{item['phase'] - 1}.pkl"
        assert item["after"] == (previous if item["phase"] > 1 else "results/${scale}/params.ok"), name
    phases = load_params(DoomParams, "default").controller.phases
    assert [d for d in raw["doom_controller"]["do"]["deps"] if "/cmaes/" in d] == \
        [f"data/${{scale}}/doom/cmaes/${{item}}-{k}.pkl" for k in range(1, phases + 1)]
