"""Release weights: the final trained agents as safetensors files committed to git, with a manifest.

One DVC stage per experiment (`weights_<experiment>`: `python -m wmlib.release.<experiment> --scale S`) reads that
experiment's final weights (in data/) and writes results/<scale>/weights/<experiment>/: one `.safetensors` file per
network and `weights.json`, the manifest (each file's sha256, bytes, parameters, dtype, the checkpoint it
came from and the stage that made that checkpoint; the git commit; which files each agent needs). One manifest per
experiment because DVC lets one output belong to one stage only, and one stage per experiment so a CarRacing rerun
does not re-export Doom. Each experiment's module (wmlib.release.carracing, .doom, .mujoco, .pets) says how to export
its checkpoints and how to build a `Player` (evaluate on seeds, record one episode) from the tensors. MuJoCo and PETS
release the first seed of each task only (the 60 MB budget: wmlib.release.budget); the other seeds' final weights
stay in data/ only.

fp16: a network is stored in float16 only where the stage's own check shows the agents' returns unchanged: on the
first `CHECK_EPISODES` evaluation seeds, every episode's return with the fp16-rounded weights is within
max(`FP16_RTOL` x |its float32 return|, 1 return unit) of its float32 return; otherwise float32. Loading always gives
float32 tensors. The check's returns are in the manifest.

Players act on one torch thread, as the evaluation stages' workers do (the same arithmetic, and on a busy 2-core
machine 10x faster than two threads fighting the simulator for the cores).
"""
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save

from ..envs.seeds import episode_seeds
from ..io import atomic_path, load_json, load_torch, save_json
from ..paths import ROOT, results_dir

EXPERIMENTS = ("carracing", "doom", "mujoco", "pets")
MANIFEST = "weights.json"
CHECK_EPISODES = 3
FP16_RTOL = 0.01


def stage_name(experiment: str) -> str:
    """The DVC stage that exports `experiment`'s release weights."""
    return f"weights_{experiment}"


def weights_dir(scale: str, experiment: str) -> Path:
    """results/<scale>/weights/<experiment>/: the committed weights (read-only for play, evaluate, notebooks)."""
    check_experiment(experiment)
    return results_dir(scale, "weights") / experiment


def check_experiment(experiment: str):
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}: choose one of {', '.join(EXPERIMENTS)}")


@dataclass
class Network:
    """One network to release: tensors (float ones as trained), what rebuilding it needs (`meta`, JSON), the
    checkpoint it comes from and whether it may be stored in fp16 (if the check allows)."""
    tensors: dict[str, torch.Tensor]
    meta: dict
    source: Path
    fp16_candidate: bool = False


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def as_dtype(tensors: dict[str, torch.Tensor], dtype) -> dict[str, torch.Tensor]:
    """Every floating tensor cast to `dtype` (integer ones kept), contiguous, on the CPU."""
    return {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in tensors.items()}


def fp16_round_trip(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What an fp16 file gives back: float tensors rounded to float16, as float32."""
    return as_dtype(as_dtype(tensors, torch.float16), torch.float32)


def returns_close(fp32: list[float], fp16: list[float], rtol: float = FP16_RTOL) -> bool:
    """The fp16 rule: every episode's return within max(rtol x |float32 return|, 1 return unit) of its float32
    return."""
    return all(abs(b - a) <= max(rtol * abs(a), 1.0) for a, b in zip(fp32, fp16, strict=True))


def serialise(tensors: dict[str, torch.Tensor], meta: dict, dtype=torch.float32) -> bytes:
    """A safetensors file's bytes: float tensors in `dtype`, `meta` as JSON in its header."""
    return save(as_dtype(tensors, dtype), metadata={"wmlib": json.dumps(meta, sort_keys=True)})


def save_weights(tensors: dict[str, torch.Tensor], path: Path, meta: dict, dtype=torch.float32) -> dict:
    """One safetensors file (`serialise`) -> its manifest entry."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(serialise(tensors, meta, dtype))
    return {"sha256": sha256(path), "bytes": path.stat().st_size, "dtype": str(dtype).removeprefix("torch."),
            "parameters": int(sum(v.numel() for v in tensors.values()))}


def producing_stage(path: Path, lock: Path = ROOT / "dvc.lock") -> str | None:
    """The stage in dvc.lock whose output is `path` (or its view in scratch/) or a folder holding it; None if no
    stage lists it."""
    rel = Path(_relative(path))
    rel = rel.relative_to("scratch") if rel.parts[:1] == ("scratch",) else rel
    for name, stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).items() if lock.exists() else ():
        for out in stage.get("outs", []):
            if rel == Path(out["path"]) or Path(out["path"]) in rel.parents:
                return name
    return None


def git_commit() -> str | None:
    """HEAD's commit, with '-dirty' when the code or parameters differ from it (not the outputs the pipeline is
    writing meanwhile: results/, dvc.lock); None outside a git checkout."""
    code = ["wmlib", "notebooks", "params.yaml", "dvc.yaml", "pyproject.toml"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *code], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


def export(folder: Path, experiment: str, scale: str, networks: dict[str, Network], agents: dict[str, list[str]],
           evaluation: dict, make_players) -> dict:
    """Write every network of `networks` (file stem -> Network) to `folder` and the manifest.

    `agents`: agent name -> the stems it needs; `evaluation`: how the evaluation stage ran (seeds, episode cap, ...);
    `make_players(tensors by stem, metas by stem, evaluation)` -> {agent: Player}, used for the fp16 check (on one
    torch thread, as the evaluation stages' workers act)."""
    torch.set_num_threads(1)
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = {stem: as_dtype(n.tensors, torch.float32) for stem, n in networks.items()}
    metas = {stem: n.meta for stem, n in networks.items()}
    candidates = [stem for stem, n in networks.items() if n.fp16_candidate]
    check, half = None, set()
    if candidates:
        seeds = evaluation["seeds"][:CHECK_EPISODES]
        rounded = {**fp32, **{stem: fp16_round_trip(fp32[stem]) for stem in candidates}}
        ref = {a: p.evaluate(seeds).returns for a, p in make_players(fp32, metas, evaluation).items()}
        low = {a: p.evaluate(seeds).returns for a, p in make_players(rounded, metas, evaluation).items()}
        passed = all(returns_close(ref[a], low[a]) for a in ref)
        half = set(candidates) if passed else set()
        check = {"files": candidates, "seeds": seeds, "rtol": FP16_RTOL, "float32": ref, "float16": low,
                 "passed": passed}
    for old in folder.glob("*.safetensors"):
        old.unlink()
    files = {}
    for stem, n in networks.items():
        path = folder / f"{stem}.safetensors"
        entry = save_weights(fp32[stem], path, n.meta, torch.float16 if stem in half else torch.float32)
        files[path.name] = {**entry, "source": _relative(n.source), "stage": producing_stage(n.source)}
    manifest = {"experiment": experiment, "scale": scale, "commit": git_commit(), "weights_stage": stage_name(
        experiment), "files": files, "agents": {a: [f"{s}.safetensors" for s in stems] for a, stems in agents.items()},
        "evaluation": evaluation, "fp16_check": check,
        "total_bytes": int(sum(f["bytes"] for f in files.values()))}
    save_json(manifest, folder / MANIFEST)
    return manifest


def publish(run, experiment: str, networks: dict[str, Network], agents: dict[str, list[str]], evaluation: dict,
            make_players) -> dict:
    """`export` into results/<scale>/weights/<experiment>/ beside `run`'s results (an experiment's `Run`), with a
    one-line summary printed: what each weights_<experiment> stage does once it has gathered its networks."""
    manifest = export(run.results.parent / "weights" / experiment, experiment, run.scale, networks, agents,
                      evaluation, make_players)
    print(f"{experiment}: {len(manifest['files'])} files, {manifest['total_bytes'] / 1e6:.1f} MB, "
          f"fp16 check {manifest['fp16_check']}")
    return manifest


def world_model_networks(data: Path) -> dict[str, Network]:
    """V and M of a World Models experiment (data/<scale>/<experiment>/vae.pt, mdnrnn.pt) as release networks,
    both fp16 candidates."""
    vae, mdnrnn = load_torch(data / "vae.pt"), load_torch(data / "mdnrnn.pt")
    return {"vae": Network(vae["model"], {"z_size": vae["z_size"]}, data / "vae.pt", fp16_candidate=True),
            "mdnrnn": Network(mdnrnn["model"], {k: mdnrnn[k] for k in ("z_size", "hidden", "mixtures")},
                              data / "mdnrnn.pt", fp16_candidate=True)}


def controller_network(path: Path, meta: dict) -> Network:
    """A World Models controller (its `params` in the checkpoint at `path`) as a float32 release network."""
    return Network({"params": torch.as_tensor(np.asarray(load_torch(path)["params"], np.float32))}, meta, path)


def world_model_evaluation(p, **extra) -> dict:
    """How a World Models evaluation stage ran (p: the experiment's parameters): its seeds, `evaluation.episodes`
    of the evaluation stream, and its episode cap, with `extra` entries."""
    return {"seeds": episode_seeds("eval", p.evaluation.episodes), "max_steps": p.evaluation.max_steps, **extra}


def _relative(path: Path) -> str:
    """`path` relative to the repository (links not followed), or absolute if outside it."""
    path = Path(path).absolute()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def load_manifest(folder: Path, experiment: str) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path}: no release weights for {experiment} here; the DVC stage "
                                f"{stage_name(experiment)} makes them (`dvc repro {stage_name(experiment)}`)")
    return load_json(path)


def load_weights(folder: Path, manifest: dict, name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """One file of the manifest, its sha256 checked -> (float32 tensors, meta)."""
    path, experiment = Path(folder) / name, manifest["experiment"]
    if name not in manifest["files"]:
        raise KeyError(f"{name}: not in {Path(folder) / MANIFEST}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing, though {MANIFEST} lists it; the DVC stage "
                                f"{stage_name(experiment)} makes it (`dvc repro {stage_name(experiment)}`)")
    expected, actual = manifest["files"][name]["sha256"], sha256(path)
    if actual != expected:
        raise ValueError(f"{path}: sha256 {actual} does not match {expected} in {MANIFEST}; the file changed after "
                         f"the {stage_name(experiment)} stage wrote it (restore it with `git checkout -- {path}` or "
                         f"rerun `dvc repro {stage_name(experiment)}`)")
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("wmlib", "{}"))
    return as_dtype(load_file(str(path)), torch.float32), meta


def load_agent_weights(folder: Path, manifest: dict, agent: str) -> tuple[dict, dict]:
    """Every file agent `agent` needs -> ({stem: tensors}, {stem: meta}); an unknown agent lists the known ones."""
    if agent not in manifest["agents"]:
        raise ValueError(f"unknown {manifest['experiment']} agent {agent!r}: the weights hold "
                         f"{', '.join(manifest['agents'])}")
    tensors, metas = {}, {}
    for name in manifest["agents"][agent]:
        stem = name.removesuffix(".safetensors")
        tensors[stem], metas[stem] = load_weights(folder, manifest, name)
    return tensors, metas

