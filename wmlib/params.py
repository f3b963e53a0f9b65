"""`params.yaml`, validated: a misspelled or ill-typed key fails fast with an error naming it.

The scale switch (smoke | default | paper) is `scale:` in params.yaml; the environment
variable WMLIB_SCALE overrides it (CI sets WMLIB_SCALE=smoke), and an explicit argument
overrides both.
"""
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .paths import ROOT

SCALES = ("smoke", "default", "paper")
PARAMS_FILE = ROOT / "params.yaml"


class ParamsError(ValueError):
    """A bad key or value in params.yaml; the message names it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ParallelParams(_Strict):
    backend: Literal["local", "ray"]
    workers: int                 # local worker processes (1 = run in this process)
    address: str | None = None   # Ray cluster address; None starts a local Ray instance


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
    max_steps: int
    early_stop: int              # end a training episode after this many steps without reward (0 = never)
    eval_every: int              # evaluate the CMA-ES mean every n generations
    eval_episodes: int


class EvaluationParams(_Strict):
    episodes: int
    max_steps: int
    gif_steps: int               # length of the embedded agent animation (frames)


class CarRacingParams(_Strict):
    seed: int
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
    parallel: ParallelParams
    rollouts: DoomRolloutParams
    vae: VAEParams
    mdnrnn: DoomMDNRNNParams
    controller: DreamControllerParams
    evaluation: DoomEvaluationParams
    taus: list[float]            # dream temperatures, one controller each (shared by all scales)


EXPERIMENTS = {"carracing": CarRacingParams, "doom": DoomParams}


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
    section = raw.get(experiment, {})
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
