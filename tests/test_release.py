"""Release weights (wmlib.release), `python -m wmlib.play` and `python -m wmlib.evaluate`: safetensors round trips,
the fp16 rule, the manifest's hash check, the error messages, and play/evaluate on tiny weights made here."""
import hashlib
import json

import numpy as np
import pytest
import torch

from wmlib import evaluate, play, release
from wmlib.evaluation import EvalResult
from wmlib.io import save_torch
from wmlib.models.mdnrnn import MDNRNN
from wmlib.models.vae import ConvVAE
from wmlib.release import Network, budget, carracing

# --- safetensors files and the fp16 rule -------------------------------------------------------------------------

def test_safetensors_round_trip_fp32_is_exact_and_fp16_is_the_rounding(tmp_path):
    tensors = {"w": torch.randn(5, 3), "b": torch.randn(3), "steps": torch.arange(4)}
    manifest = {"experiment": "carracing", "files": {}}
    for dtype in (torch.float32, torch.float16):
        path = tmp_path / f"{dtype}.safetensors"
        entry = release.save_weights(tensors, path, {"z_size": 32}, dtype)
        assert entry["parameters"] == 5 * 3 + 3 + 4
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["dtype"] == str(dtype).removeprefix("torch.")
        manifest["files"][path.name] = entry
        back, meta = release.load_weights(tmp_path, manifest, path.name)
        assert meta == {"z_size": 32}
        assert back["steps"].dtype == torch.int64 and torch.equal(back["steps"], tensors["steps"])
        for k in ("w", "b"):
            assert back[k].dtype == torch.float32
            assert torch.equal(back[k], tensors[k].to(dtype).float())  # fp32 exact; fp16 = the direct rounding
    size = {d: (tmp_path / f"torch.{d}.safetensors").stat().st_size for d in ("float16", "float32")}
    assert size["float16"] < size["float32"]


def test_the_fp16_rule():
    assert release.returns_close([800.0, -300.0], [807.9, -302.9])      # within 1%
    assert not release.returns_close([800.0, -300.0], [800.0, -303.1])  # one episode 1.03% off
    assert release.returns_close([20.0], [21.0]) and not release.returns_close([20.0], [21.1])  # at least 1 unit


class _Player:
    """Returns that depend on the weights `w` through `gain`: a sensitive player notices fp16's rounding."""
    def __init__(self, w, gain):
        self.w, self.gain = w, gain

    def evaluate(self, seeds):
        r = [float(self.w.sum() - 100) * self.gain + s for s in seeds]
        return EvalResult("x", list(seeds), r, [1] * len(seeds))


@pytest.mark.parametrize("gain, dtype", [(0.0, "float16"), (1e6, "float32")])
def test_export_stores_fp16_only_where_the_check_shows_returns_unchanged(tmp_path, gain, dtype):
    w = torch.full((100,), 1.0001)  # fp16 rounds it to 1.0: a change of 1e-4 per weight
    nets = {"big": Network({"w": w}, {}, tmp_path / "big.pt", fp16_candidate=True),
            "small": Network({"c": torch.ones(3)}, {}, tmp_path / "small.pt")}
    players = lambda tensors, metas, ev: {"a": _Player(tensors["big"]["w"], gain)}  # noqa: E731
    m = release.export(tmp_path / "w", "carracing", "smoke", nets, {"a": ["big", "small"]},
                       {"seeds": [10, 11, 12, 13]}, players)
    assert m["files"]["big.safetensors"]["dtype"] == dtype
    assert m["files"]["small.safetensors"]["dtype"] == "float32"  # not a candidate: never fp16
    assert m["fp16_check"]["seeds"] == [10, 11, 12] and m["fp16_check"]["passed"] == (dtype == "float16")
    assert m["agents"] == {"a": ["big.safetensors", "small.safetensors"]}
    assert m["total_bytes"] == sum(p.stat().st_size for p in (tmp_path / "w").glob("*.safetensors"))


# --- tiny CarRacing weights, exported as the stage does -----------------------------------------------------------

@pytest.fixture(scope="module")
def cr_weights(tmp_path_factory):
    """Random V (z 32), a tiny M (hidden 8) and both controllers, exported with the fp16 check (3 short episodes)."""
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("cr")
    vae, mdnrnn = ConvVAE(32), MDNRNN(32, 3, 8, 2)
    rng = np.random.default_rng(0)
    save_torch({"z_size": 32, "model": vae.state_dict()}, tmp / "vae.pt")  # the stages' checkpoints
    save_torch({"z_size": 32, "hidden": 8, "mixtures": 2, "model": mdnrnn.state_dict()}, tmp / "mdnrnn.pt")
    for variant, n in (("full", (32 + 8 + 1) * 3), ("z_only", 33 * 3)):
        save_torch({"variant": variant, "params": rng.normal(size=n)}, tmp / f"controller_{variant}.pt")
    nets = carracing.networks(tmp)
    assert {k: (n.meta, n.fp16_candidate) for k, n in nets.items()} == {
        "vae": ({"z_size": 32}, True), "mdnrnn": ({"z_size": 32, "hidden": 8, "mixtures": 2}, True),
        "controller_full": ({"variant": "full"}, False), "controller_z_only": ({"variant": "z_only"}, False)}
    agents = {"full": ["vae", "mdnrnn", "controller_full"], "z_only": ["vae", "controller_z_only"]}
    evaluation = {"seeds": [10**9 + i for i in range(4)], "max_steps": 12, "batch": 2}
    release.export(tmp / "weights", "carracing", "smoke", nets, agents, evaluation, carracing.make_players)
    return tmp / "weights"


def test_play_and_evaluate_on_tiny_carracing_weights(cr_weights, tmp_path, capsys):
    result = play.main(["carracing", "--weights", str(cr_weights), "--episodes", "3", "--video",
                        str(tmp_path / "a.gif"), "--video-steps", "5"])
    out = capsys.readouterr().out
    assert result.seeds == [10**9, 10**9 + 1, 10**9 + 2] and len(result.returns) == 3
    assert "mean" in out and "95% interval" in out and (tmp_path / "a.gif").stat().st_size > 0
    # evaluate: any seed range, the evaluation stages' JSON, the same returns as the same agent played directly
    res = evaluate.main(["carracing", "--weights", str(cr_weights), "--agent", "z_only", "--first-seed", "5",
                         "--episodes", "2", "--out", str(tmp_path / "e.json")])
    saved = json.loads((tmp_path / "e.json").read_text())
    assert set(saved) == {"method", "seeds", "returns", "steps", "mean", "std", "n"}
    assert saved["seeds"] == [5, 6] and saved["method"] == "z_only" and saved["n"] == 2
    assert EvalResult.load(tmp_path / "e.json").returns == res.returns
    name, player, _ = play.load_player("carracing", "z_only", folder=cr_weights)
    assert player.evaluate([5, 6]).returns == res.returns  # repeatable from the weights alone


def test_the_budgets_sizes_are_the_exported_files(cr_weights):
    """wmlib.release.budget sizes a file from its architecture alone: the same bytes as the stage's file."""
    m = release.load_manifest(cr_weights, "carracing")
    nets = {"vae": (ConvVAE(32).state_dict(), {"z_size": 32}),
            "mdnrnn": (MDNRNN(32, 3, 8, 2).state_dict(), {"z_size": 32, "hidden": 8, "mixtures": 2}),
            "controller_full": ({"params": torch.zeros((32 + 8 + 1) * 3)}, {"variant": "full"})}
    for stem, (tensors, meta) in nets.items():
        entry = m["files"][f"{stem}.safetensors"]
        row = budget.file_row("carracing", stem, tensors, meta, fp16_candidate=True)
        assert entry["bytes"] == row["float32" if entry["dtype"] == "float32" else "fp16_if_passed"], stem
        assert entry["parameters"] == row["parameters"]


def test_a_batch_of_episodes_matches_one_at_a_time(cr_weights):
    """The Player steps episodes in the stage's batches; each episode's return does not depend on its neighbours."""
    _, player, _ = play.load_player("carracing", "full", folder=cr_weights)
    together = player.evaluate([10**9, 10**9 + 1]).returns
    player.batch = 1
    assert player.evaluate([10**9, 10**9 + 1]).returns == pytest.approx(together, abs=1e-6)


# --- the error messages -------------------------------------------------------------------------------------------

def test_unknown_experiment(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'cartpole': choose one of carracing, doom, mujoco, pets"):
        play.main(["cartpole", "--weights", str(tmp_path)])


def test_missing_weights_name_the_stage(tmp_path, cr_weights):
    with pytest.raises(FileNotFoundError, match="dvc repro weights_doom"):
        play.main(["doom", "--weights", str(tmp_path)])
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in cr_weights.iterdir():
        if f.name != "mdnrnn.safetensors":
            (copy / f.name).write_bytes(f.read_bytes())
    with pytest.raises(FileNotFoundError, match="mdnrnn.safetensors: missing.*dvc repro weights_carracing"):
        play.main(["carracing", "--weights", str(copy), "--agent", "full"])
    play.main(["carracing", "--weights", str(copy), "--agent", "z_only", "--episodes", "1"])  # needs no M


def test_a_changed_file_fails_the_hash_check(tmp_path, cr_weights):
    for f in cr_weights.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    data = bytearray((tmp_path / "controller_full.safetensors").read_bytes())
    data[-1] ^= 1  # one bit of one weight
    (tmp_path / "controller_full.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="controller_full.safetensors: sha256 .* does not match"):
        play.main(["carracing", "--weights", str(tmp_path), "--agent", "full"])


def test_unknown_agent_lists_the_known_ones(cr_weights):
    with pytest.raises(ValueError, match="unknown carracing agent 'tau=0.5': the weights hold full, z_only"):
        play.main(["carracing", "--weights", str(cr_weights), "--agent", "tau=0.5"])


def test_producing_stage_reads_dvc_lock(tmp_path):
    from wmlib.paths import ROOT
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n  carracing_vae:\n    outs:\n    - path: data/default/carracing/vae.pt\n"
                    "  doom_controller@0.5:\n    outs:\n    - path: data/default/doom/taus/0.5\n")
    assert release.producing_stage(ROOT / "data/default/carracing/vae.pt", lock) == "carracing_vae"
    assert release.producing_stage(ROOT / "scratch/data/default/doom/taus/0.5/controller.pt", lock) == \
        "doom_controller@0.5"  # a folder output, seen through scratch/
    assert release.producing_stage(ROOT / "data/default/carracing/mdnrnn.pt", lock) is None


# --- the committed weights against the committed evaluation (skipped until the weights stages have run) -----------

def _committed(experiment):
    from wmlib.params import read_params_file
    from wmlib.paths import ROOT
    scale = read_params_file()["scale"]
    folder = release.weights_dir(scale, experiment)
    if not (folder / release.MANIFEST).exists():
        pytest.skip(f"no committed {experiment} weights at scale {scale} (the {release.stage_name(experiment)} stage)")
    return ROOT / "results" / scale, folder


def _same_returns(manifest, files, played, stored):
    """Exact where the agent's files are float32; within the fp16 rule where any is float16."""
    if all(manifest["files"][f]["dtype"] == "float32" for f in files):
        assert played == stored
    else:
        assert release.returns_close(stored, played)


def test_committed_carracing_weights_reproduce_the_stored_evaluation():
    """V+M+C on the first batch of evaluation tracks, stepped together as the evaluation stage stepped them."""
    results, folder = _committed("carracing")
    name, player, manifest = play.load_player("carracing", "full", folder=folder)
    stored = EvalResult.load(results / "carracing" / "eval_full.json")
    n = manifest["evaluation"]["batch"]
    assert stored.seeds[:n] == manifest["evaluation"]["seeds"][:n]
    _same_returns(manifest, manifest["agents"][name], player.evaluate(stored.seeds[:n]).returns, stored.returns[:n])


@pytest.mark.parametrize("learner", ["dreamer", "sac"])  # TD-MPC's planner samples: same distribution only
def test_committed_mujoco_weights_reproduce_the_stored_evaluation(learner):
    results, folder = _committed("mujoco")
    manifest = release.load_manifest(folder, "mujoco")
    for path in sorted((results / "mujoco").glob(f"**/{learner}/**/eval.json")):
        stored = json.loads(path.read_text())
        name = f"{learner}/{stored['task']}/seed{stored['seed']}"
        if stored["variant"] != "full" or name not in manifest["agents"]:
            continue
        _, player, _ = play.load_player("mujoco", name, folder=folder)
        seeds = manifest["evaluation"]["seeds"][:release.CHECK_EPISODES]
        _same_returns(manifest, manifest["agents"][name], player.evaluate(seeds).returns,
                      stored["returns"][:len(seeds)])


# --- tiny MuJoCo weights: every learner's final weights found, exported and rebuilt ----------------------------

def test_mujoco_runs_are_found_exported_and_rebuilt(tmp_path):
    from stable_baselines3 import SAC

    from wmlib.envs.mujoco_tasks import make_env
    from wmlib.experiments.mujoco import dreamer, train
    from wmlib.experiments.mujoco.params import MujocoParams
    from wmlib.io import save_torch
    from wmlib.params import load_params
    from wmlib.release import mujoco

    p, task = load_params(MujocoParams, "smoke"), "dmc/cartpole-swingup"
    # the first seed is the released one; Dreamer from frames, as at paper scale (smoke's Dreamer sees states)
    p = p.model_copy(update={"seeds": [3, 4], "dreamer": p.dreamer.model_copy(update={"pixels": True})})
    data = tmp_path / "data"
    agents = {"tdmpc": train.make_agent(p, task), "dreamer": dreamer.make_agent(p, task)}
    sac = SAC("MlpPolicy", make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames), device="cpu")
    weights = {"tdmpc": {"model": agents["tdmpc"].model.state_dict()},  # as the jobs write them (agent.pt)
               "dreamer": {"wm": agents["dreamer"].wm.state_dict(), "ac": agents["dreamer"].ac.state_dict()},
               "sac": {"policy": {k: v for k, v in sac.policy.state_dict().items() if k.startswith("actor.")}}}
    for learner, state in weights.items():
        for seed in (3, 4):  # seed 4: not released
            save_torch(state, train.run_dir(data, learner, task, seed) / "agent.pt")
    save_torch(weights["tdmpc"], train.run_dir(data, "tdmpc", task, 3, "no_simnorm") / "agent.pt")  # not released
    nets = mujoco.networks(data, p)
    names = {mujoco.agent_name(n.meta["learner"], n.meta["task"], n.meta["seed"]): [s] for s, n in nets.items()}
    assert sorted(names) == [f"{learner}/{task}/seed3" for learner in ("dreamer", "sac", "tdmpc")]
    release.export(tmp_path / "w", "mujoco", "smoke", nets, names, {"seeds": [10_000, 10_001]}, mujoco.make_players)

    _, tdmpc, _ = play.load_player("mujoco", "tdmpc", folder=tmp_path / "w")  # a prefix picks the run
    first = tdmpc.evaluate([10_000, 10_001])
    assert tdmpc.evaluate([10_000, 10_001]).returns == first.returns  # repeatable: each episode seeds torch
    obs = np.random.default_rng(0).normal(size=5).astype(np.float32)
    _, sac_player, _ = play.load_player("mujoco", f"sac/{task}/seed3", folder=tmp_path / "w")
    assert np.array_equal(sac_player.policy(obs), sac.predict(obs, deterministic=True)[0])
    _, dreamer_player, _ = play.load_player("mujoco", "dreamer", folder=tmp_path / "w")
    rebuilt, trained = dreamer_player.policy.__self__, agents["dreamer"]
    for ours, theirs in ((rebuilt.wm.encoder, trained.wm.encoder), (rebuilt.wm.rssm, trained.wm.rssm),
                         (rebuilt.ac.actor, trained.ac.actor), (tdmpc.policy.__self__.model, agents["tdmpc"].model)):
        for (k, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
            assert torch.equal(a, b), k
    assert not any(k.startswith(("wm.decoder", "wm.reward_head", "wm.continue_head")) for k in
                   nets[f"dreamer_{task.replace('/', '_')}_seed3"].tensors)  # training's heads stay in the cache
    # the acting Dreamer without its heads acts as the whole trained one: same actions on a few observations
    space = dreamer_player._env().observation_space  # frames
    assert space.shape == (64, 64, 3)
    space.seed(1)
    trained.reset(), rebuilt.reset()
    for obs in (space.sample() for _ in range(3)):
        assert np.array_equal(rebuilt.act(obs), trained.act(obs))


@pytest.mark.parametrize("command", ["play", "evaluate"])
def test_the_command_line_reports_errors_in_one_line(tmp_path, command):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", f"wmlib.{command}", "doom", "--weights", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"wmlib.{command}: ") and "dvc repro weights_doom" in proc.stderr


def test_committed_weights_fit_the_budget():
    """At most about 60 MB of weights in git, counted from the files themselves."""
    from wmlib.params import read_params_file
    from wmlib.paths import results_dir
    files = list(results_dir(read_params_file()["scale"], "weights").glob("*/*.safetensors"))
    if not files:
        pytest.skip("no committed weights yet (the weights_* stages)")
    assert sum(f.stat().st_size for f in files) <= budget.BUDGET_BYTES


# --- tiny PETS weights: the ensemble exported, rebuilt, and planning as the training code's own agent --------------

@pytest.fixture(scope="module")
def pets_weights(tmp_path_factory):
    """A random smoke-size ensemble (standardisers included) saved as the final weights of pets_job seeds 0 and 1 of
    cartpole-swingup, exported as the weights_pets stage does -> (params, data folder, weights folder)."""
    from wmlib.envs.mujoco_tasks import make_env
    from wmlib.experiments.pets import train
    from wmlib.experiments.pets.params import PETSParams
    from wmlib.params import load_params
    from wmlib.release import pets

    torch.manual_seed(0)
    tmp, task = tmp_path_factory.mktemp("pets"), "dmc/cartpole-swingup"
    p = load_params(PETSParams, "smoke")
    env = make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames)
    _, ens = train.make_agent(p, env.observation_space.shape[0], env.action_space.shape[0], "full", 0)
    for norm in (ens.in_norm, ens.out_norm):  # a loader that forgot the buffers would plan differently
        norm.mean.normal_(), norm.std.uniform_(0.5, 2.0)
    for seed in p.seeds[:2]:  # seed 1: not released
        save_torch({"ensemble": ens.state_dict(), "obs_dim": ens.obs_dim, "action_dim": ens.action_dim},
                   train.run_dir(tmp / "data", task, seed) / "agent.pt")  # as a job writes its final weights
    nets = pets.networks(tmp / "data", p)
    assert list(nets) == ["dmc_cartpole-swingup_seed0"] and not nets["dmc_cartpole-swingup_seed0"].fp16_candidate
    m = release.export(tmp / "weights", "pets", "smoke", nets, {f"{task}/seed0": ["dmc_cartpole-swingup_seed0"]},
                       {"seeds": [10_000, 10_001]}, pets.make_players)
    assert m["files"]["dmc_cartpole-swingup_seed0.safetensors"]["dtype"] == "float32" and m["fp16_check"] is None
    return p, tmp / "data", tmp / "weights"


def test_pets_weights_plan_as_the_trained_agent(pets_weights):
    """The released ensemble is the job's, and its episodes are those of the training code's own agent
    (wmlib.experiments.pets.train.load_agent) with the planner seeded by each episode's seed."""
    from wmlib.envs.mujoco_tasks import make_env
    from wmlib.evaluation import run_episode
    from wmlib.experiments.pets import train

    p, data, weights = pets_weights
    task, seeds = "dmc/cartpole-swingup", [10_000, 10_001]
    name, player, _ = play.load_player("pets", "dmc/cart", folder=weights)  # a prefix picks the run
    assert name == f"{task}/seed0"
    agent, ens = train.load_agent(p, data, task, 0)
    for (k, a), (_, b) in zip(player.agent.ens.state_dict().items(), ens.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    env, reference = make_env(task, p.tasks[task].action_repeat, p.evaluation.max_frames), []
    for seed in seeds:
        torch.manual_seed(seed), agent.generator.manual_seed(seed)
        reference.append(run_episode(env, agent.act, seed, reset=agent.reset)[0])
    assert player.evaluate(seeds).returns == reference
    assert player.evaluate(seeds).returns == reference  # repeatable from the weights alone
    assert player.record(seeds[0], 4).shape == (4, 64, 64, 3)


def test_pets_from_the_command_line_and_its_errors(pets_weights, tmp_path, capsys):
    _, _, weights = pets_weights
    res = evaluate.main(["pets", "--weights", str(weights), "--agent", "dmc/cartpole-swingup", "--first-seed", "7",
                         "--episodes", "1", "--out", str(tmp_path / "e.json")])
    assert EvalResult.load(tmp_path / "e.json").returns == res.returns and res.seeds == [7]
    assert "dmc/cartpole-swingup/seed0: mean" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown pets agent 'dmc/walker-walk': the weights hold "
                                         "dmc/cartpole-swingup/seed0"):
        play.main(["pets", "--weights", str(weights), "--agent", "dmc/walker-walk"])
    with pytest.raises(ValueError, match="unknown pets agent 'dmc/cartpole-swingup/seed1'"):  # not released
        play.main(["pets", "--weights", str(weights), "--agent", "dmc/cartpole-swingup/seed1"])
    with pytest.raises(FileNotFoundError, match="no release weights for pets.*dvc repro weights_pets"):
        play.main(["pets", "--weights", str(tmp_path)])
