"""`params.yaml`, validated: a misspelled or ill-typed key fails fast with an error naming it.

The scale switch (smoke | default | paper) is `scale:` in params.yaml; the environment
variable WMLIB_SCALE overrides it (CI sets WMLIB_SCALE=smoke), and an explicit argument
overrides both.
"""
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .device import DEVICE_PATTERN
from .paths import ROOT

SCALES = ("smoke", "default", "paper")
COMMITTED_SCALE = "default"  # results/default and the README's tables are committed; other scales run in scratch/
PARAMS_FILE = ROOT / "params.yaml"


class ParamsError(ValueError):
    """A bad key or value in params.yaml; the message names it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Device = Field(pattern=f"^({DEVICE_PATTERN})$")  # auto | cpu | cuda | cuda:N (wmlib.device)


class ParallelParams(_Strict):
    backend: Literal["local", "ray"]
    workers: int                 # local worker processes (1 = run in this process)
    address: str | None = None   # Ray cluster address; None starts a local Ray instance
    gpus_per_task: float = 0.0   # Ray: GPUs each training task requests when the device is CUDA (0.25: 4 per GPU)


class RolloutParams(_Strict):
    episodes: int
    max_steps: int               # env steps per episode (CarRacing-v3 caps at 1000)
    policy: Literal["brownian", "uniform"]


class VAEParams(_Strict):
    z_size: int
    epochs: int
    batch_size: int
    lr: float
    kl_tolerance: float          # KL floored at kl_tolerance * z_size ("free bits")
    frame_stride: int            # train on every n-th stored frame
    bf16: bool = False           # bf16 autocast (mixed precision) for the conv layers' training


class MDNRNNParams(_Strict):
    hidden: int
    mixtures: int
    seq_len: int                 # teacher-forced sequence length (steps)
    batch_size: int
    lr: float
    grad_clip: float             # element-wise gradient clip
    steps: int


class ControllerParams(_Strict):
    popsize: int
    rollouts: int                # episodes per candidate; fitness = mean return
    sigma0: float
    generations: int
    phases: int                  # DVC stages the generations are split into (dvc.yaml's carracing_cmaes lists them)
    max_steps: int
    early_stop: int              # end a training episode after this many steps without reward (0 = never)
    batch: int                   # episodes each worker steps at once, V, M and C batched over them
    eval_every: int              # evaluate the CMA-ES mean every n generations
    eval_episodes: int


class EvaluationParams(_Strict):
    episodes: int
    max_steps: int
    gif_steps: int               # length of the embedded agent animation (frames)


class CarRacingParams(_Strict):
    seed: int
    device: str = Device         # auto | cpu | cuda | cuda:N: where V, M and C run
    parallel: ParallelParams
    rollouts: RolloutParams
    vae: VAEParams
    mdnrnn: MDNRNNParams
    controller: ControllerParams
    evaluation: EvaluationParams


class DoomRolloutParams(_Strict):
    episodes: int                # random episodes collected (those of min_length frames or fewer are dropped)
    max_steps: int               # frame cap (TakeCover has none of its own; the paper used 2100)
    min_length: int
    hold: list[int]              # a random action is held for hold[0]..hold[1] frames
    retries: int                 # restarts of a VizDoom process that dies mid-episode


class DoomMDNRNNParams(MDNRNNParams):
    done_weight: float           # weight of done = 1 targets in the done head's cross-entropy
    lr_min: float                # lr decays as lr_min + (lr - lr_min) * lr_decay ** step
    lr_decay: float


class DreamControllerParams(_Strict):
    popsize: int
    rollouts: int                # dreams per candidate; fitness = mean frames survived
    sigma0: float
    generations: int
    max_steps: int               # dream episode cap (frames)
    eval_every: int              # evaluate the CMA-ES mean in the dream every n generations
    eval_episodes: int


class DoomEvaluationParams(_Strict):
    episodes: int                # real-game episodes per controller (and dream episodes)
    max_steps: int


class DoomParams(_Strict):
    seed: int
    device: str = Device         # auto | cpu | cuda | cuda:N: where V, M, C and the dream run
    parallel: ParallelParams
    rollouts: DoomRolloutParams
    vae: VAEParams
    mdnrnn: DoomMDNRNNParams
    controller: DreamControllerParams
    evaluation: DoomEvaluationParams
    taus: list[float]            # dream temperatures, one controller each (shared by all scales)


class ControlTaskSpec(_Strict):
    action_repeat: int           # frames per agent step (TD-MPC v1: 8 on cartpole, 2 on walker; gym tasks 1)
    published: dict[int, float]  # TD-MPC (v1) return at a number of frames (reference table); {} where none


class BudgetParams(_Strict):
    frames: int                  # training budget in frames (env steps before action repeat)
    eval_every: int              # frames between learning-curve evaluations


class LatentModelParams(_Strict):
    latent: int
    hidden: int                  # MLP width of dynamics, reward, Q and policy heads
    encoder_hidden: int
    num_q: int
    num_bins: int                # two-hot bins (symlog space, vmin..vmax)
    vmin: float
    vmax: float
    simnorm: bool                # TD-MPC2's simplicial normalisation of the latent (off = v1)
    two_hot: bool                # discrete regression of reward and Q (off = scalar heads with MSE, v1)
    q_dropout: float


class TDMPCTrainParams(_Strict):
    batch_size: int
    horizon: int                 # sub-trajectory length for the model losses
    lr: float
    encoder_lr_scale: float
    grad_clip: float
    tau: float                   # EMA rate of the target Qs
    rho: float                   # per-step loss decay rho^t
    consistency_coef: float
    reward_coef: float
    value_coef: float
    entropy_coef: float
    seed_episodes: int           # random-action episodes first: max(min_seed_steps, seed_episodes episodes)
    min_seed_steps: int


class PlannerParams(_Strict):
    """A sampling planner's settings (wmlib.control.planners): the TD-MPC agent's, and the planner study's."""
    horizon: int
    iterations: int
    samples: int                 # Gaussian sequences per iteration
    policy_samples: int          # sequences proposed by the policy prior (none if use_prior is false)
    elites: int
    temperature: float           # MPPI: softmax(temperature * score) over the elites
    min_std: float
    max_std: float
    method: Literal["mppi", "cem", "shooting"] = "mppi"
    use_prior: bool = True

    @model_validator(mode="after")
    def _sizes(self):
        for name in ("horizon", "iterations", "samples", "elites"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.elites > self.samples + self.policy_samples:
            raise ValueError(f"elites ({self.elites}) exceed samples + policy_samples")
        return self

    @property
    def evaluations(self) -> int:
        """Action sequences scored per planning call (each costs `horizon` model steps)."""
        return (self.samples + self.policy_samples) * self.iterations

    def replace(self, **changes) -> "PlannerParams":
        """A validated copy with `changes` applied (the planner study's method and prior switches)."""
        return type(self).model_validate({**self.model_dump(), **changes})


class ControlEvaluationParams(_Strict):
    episodes: int                # final evaluation episodes per run
    curve_episodes: int          # episodes per learning-curve point
    max_frames: int | None       # episode cap in frames (None: the task's own 1000)


class PlannerStudyParams(_Strict):
    task: str                    # the trained model the planners are compared on
    episodes: int
    ablations: list[Literal["no_simnorm", "no_two_hot"]]  # extra training runs of `task` with a switch off


class ControlBenchmarkParams(_Strict):
    calls: int                   # planning calls timed (median reported)
    updates: int                 # model updates timed


class DreamerModelParams(_Strict):
    deter: int                   # GRU state size
    hidden: int                  # MLP width (encoder, decoder, heads, actor, critic)
    stoch: int                   # latent variables (categorical) or dimensions (Gaussian)
    classes: int                 # classes per categorical variable
    layers: int                  # hidden layers per MLP
    cnn_depth: int               # channels of the first conv layer, pixels only


class DreamerTrainParams(_Strict):
    batch_size: int              # replayed sequences per update
    seq_len: int                 # agent steps per sequence
    horizon: int                 # imagination horizon H
    imagine_starts: int          # posterior states imagination starts from per update (<= batch_size x seq_len)
    lam: float                   # lambda of the lambda-returns
    model_lr: float
    actor_lr: float
    critic_lr: float
    grad_clip: float
    slow_tau: float              # EMA rate of the slow critic
    entropy_coef: float
    updates: int                 # updates (world model + actor-critic) per run, spread evenly after the seed steps
    seed_episodes: int           # random-action episodes first: max(min_seed_steps, seed_episodes episodes)
    min_seed_steps: int
    bf16: bool = False           # bf16 autocast (mixed precision) for the world model's training step


class DreamerDiagnosticsParams(_Strict):
    episodes: int                # held-out real episodes for the open-loop prediction error
    context: int                 # observed steps before imagining
    horizons: list[int]          # imagined steps at which the error is reported


class DreamerParams(_Strict):
    version: Literal["v1", "v2", "v3"]  # which paper's switches (wmlib.experiments.mujoco.dreamer.VERSIONS)
    pixels: bool                 # 64x64 rendered frames instead of state vectors
    model: DreamerModelParams
    train: DreamerTrainParams
    diagnostics: DreamerDiagnosticsParams
    ablation_task: str
    ablations: list[Literal["no_kl", "deterministic", "no_reconstruction", "gaussian"]]


class MujocoParams(_Strict):
    seeds: list[int]
    device: str = Device         # auto | cpu | cuda | cuda:N: models, replay buffers and planners (SAC too)
    parallel: ParallelParams
    tasks: dict[str, ControlTaskSpec]      # shared by all scales
    budgets: dict[str, BudgetParams]       # which tasks this scale trains, and for how long
    model: LatentModelParams
    train: TDMPCTrainParams
    planner: PlannerParams
    evaluation: ControlEvaluationParams
    planner_study: PlannerStudyParams
    benchmark: ControlBenchmarkParams
    paper_model: LatentModelParams         # TD-MPC2's 5M-parameter model, for the benchmarks
    dreamer: DreamerParams

    @property
    def seed(self) -> int:
        return self.seeds[0]

    @model_validator(mode="after")
    def _known_tasks(self):
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        for task in [*self.budgets, self.planner_study.task, self.dreamer.ablation_task]:
            if task not in self.tasks:
                raise ValueError(f"task {task!r} is not in mujoco.tasks ({', '.join(self.tasks)})")
        return self


EXPERIMENTS = {"carracing": CarRacingParams, "doom": DoomParams, "mujoco": MujocoParams}


def resolve_scale(scale: str | None = None, params_file: Path = PARAMS_FILE) -> str:
    """Explicit argument > $WMLIB_SCALE > `scale:` in params.yaml."""
    source = "argument 'scale'"
    if scale is None and os.environ.get("WMLIB_SCALE"):
        scale, source = os.environ["WMLIB_SCALE"], "environment variable WMLIB_SCALE"
    if scale is None:
        scale, source = _read_yaml(params_file).get("scale"), f"{params_file}: key 'scale'"
    if scale not in SCALES:
        raise ParamsError(f"{source}: scale must be one of {', '.join(SCALES)}, got {scale!r}")
    return scale


def load_params(experiment: str, scale: str | None = None, params_file: Path = PARAMS_FILE):
    """The validated parameters of `experiment` at `scale` (see `resolve_scale`)."""
    if experiment not in EXPERIMENTS:
        raise ParamsError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
    scale = resolve_scale(scale, params_file)
    raw = _read_yaml(params_file)
    unknown = set(raw) - {"scale", *EXPERIMENTS}
    if unknown:
        raise ParamsError(f"{params_file}: unknown top-level key(s) {sorted(unknown)}")
    return _validate(raw, experiment, scale, params_file)


def check_params(params_file: Path = PARAMS_FILE) -> None:
    """Validate all of params.yaml, every experiment at every scale, and the `scale:` switch (with $WMLIB_SCALE,
    which `dvc repro` never sees); one ParamsError lists every problem. The pipeline's first stage runs this, so
    that a typo stops `dvc repro` before any stage has deleted its outputs."""
    raw, problems = _read_yaml(params_file), []
    unknown = set(raw) - {"scale", *EXPERIMENTS}
    if unknown:
        problems.append(f"{params_file}: unknown top-level key(s) {sorted(unknown)}")
    try:
        scale = resolve_scale(None, params_file)
        if os.environ.get("DVC_STAGE") and raw.get("scale") != scale:
            problems.append(f"environment variable WMLIB_SCALE={scale} does not reach `dvc repro`, which runs the "
                            f"scale in {params_file} ({raw.get('scale')}); run another scale with `make repro SCALE="
                            f"{scale}` (a scratch workspace) instead")
    except ParamsError as e:
        problems.append(str(e))
    for experiment in EXPERIMENTS:
        for scale in SCALES:
            try:
                _validate(raw, experiment, scale, params_file)
            except ParamsError as e:
                problems.append(str(e))
    if problems:
        raise ParamsError("\n".join(problems))


def _validate(raw: dict, experiment: str, scale: str, params_file: Path):
    section = raw.get(experiment) or {}
    if scale not in section:
        raise ParamsError(f"{params_file}: missing key '{experiment}.{scale}'")
    # keys beside smoke/default/paper (doom.taus) apply to every scale
    shared = {k: v for k, v in section.items() if k not in SCALES}
    try:
        return EXPERIMENTS[experiment].model_validate({**shared, **section[scale]})
    except ValidationError as e:
        lines = [f"{params_file}: {experiment}.{scale}." + ".".join(map(str, err["loc"])) + f": {err['msg']}"
                 + (f" (got {err['input']!r})" if err["type"] != "missing" else "")
                 for err in e.errors()]
        raise ParamsError("\n".join(lines)) from None


def _read_yaml(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: parameters file not found")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    return raw


if __name__ == "__main__":  # python -m wmlib.params [--stamp PATH]: the pipeline's first stage
    import argparse
    import sys
    ap = argparse.ArgumentParser(description="Validate params.yaml: every experiment, every scale.")
    ap.add_argument("--stamp", type=Path, help="on success, write this file (the stage's output every stage needs)")
    args = ap.parse_args()
    try:
        check_params()
    except ParamsError as e:
        sys.exit(f"params.yaml is invalid; nothing was run:\n{e}")
    if args.stamp:
        args.stamp.parent.mkdir(parents=True, exist_ok=True)
        args.stamp.write_text("params.yaml: every experiment valid at every scale\n")
    print(f"{PARAMS_FILE}: every experiment valid at every scale ({', '.join(SCALES)})")
