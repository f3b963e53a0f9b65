"""`params.yaml`, validated: a misspelled or ill-typed key fails fast with an error naming it.

The scale switch (smoke | default | paper) is `scale:` in params.yaml; the environment
variable WMLIB_SCALE overrides it (CI sets WMLIB_SCALE=smoke), and an explicit argument
overrides both.
"""
import os
from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .device import DEVICE_PATTERN
from .paths import ROOT

SCALES = ("smoke", "default", "paper")
COMMITTED_SCALE = "default"  # results/default and the README's tables are committed; other scales run in scratch/
PARAMS_FILE = ROOT / "params.yaml"


class ParamsError(ValueError):
    """A bad key or value in params.yaml; the message names it."""


class StrictParams(BaseModel):
    """Parameters from params.yaml: unknown keys, wrong types and changes are errors. An experiment's top-level
    schema names its key in params.yaml in `section`."""
    section: ClassVar[str] = ""
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Device = Field(pattern=f"^({DEVICE_PATTERN})$")  # auto | cpu | cuda | cuda:N (wmlib.device)


class ParallelParams(StrictParams):
    backend: Literal["local", "ray"]
    workers: int                 # local worker processes (1 = run in this process)
    address: str | None = None   # Ray cluster address; None starts a local Ray instance
    gpus_per_task: float = 0.0   # Ray: GPUs each training task requests when the device is CUDA (0.25: 4 per GPU)


class VAEParams(StrictParams):
    z_size: int
    epochs: int
    batch_size: int
    lr: float
    kl_tolerance: float          # KL floored at kl_tolerance * z_size ("free bits")
    frame_stride: int            # train on every n-th stored frame
    bf16: bool = False           # bf16 autocast (mixed precision) for the conv layers' training


class MDNRNNParams(StrictParams):
    hidden: int
    mixtures: int
    seq_len: int                 # teacher-forced sequence length (steps)
    batch_size: int
    lr: float
    grad_clip: float             # element-wise gradient clip
    steps: int


def resolve_scale(scale: str | None = None, params_file: Path = PARAMS_FILE) -> str:
    """Explicit argument > $WMLIB_SCALE > `scale:` in params.yaml."""
    source = "argument 'scale'"
    if scale is None and os.environ.get("WMLIB_SCALE"):
        scale, source = os.environ["WMLIB_SCALE"], "environment variable WMLIB_SCALE"
    if scale is None:
        scale, source = read_params_file(params_file).get("scale"), f"{params_file}: key 'scale'"
    if scale not in SCALES:
        raise ParamsError(f"{source}: scale must be one of {', '.join(SCALES)}, got {scale!r}")
    return scale


def load_params(schema: type[StrictParams], scale: str | None = None, params_file: Path = PARAMS_FILE):
    """The validated section `schema.section` of params.yaml (an experiment's parameters) at `scale` (see
    `resolve_scale`). Every section at once: wmlib.experiments.params.check_params."""
    return validate_section(read_params_file(params_file), schema, resolve_scale(scale, params_file), params_file)


def validate_section(raw: dict, schema: type[StrictParams], scale: str, params_file: Path = PARAMS_FILE):
    """`raw[schema.section]` at `scale` (keys beside smoke/default/paper apply to every scale) as a `schema`."""
    experiment = schema.section
    section = raw.get(experiment) or {}
    if scale not in section:
        raise ParamsError(f"{params_file}: missing key '{experiment}.{scale}'")
    shared = {k: v for k, v in section.items() if k not in SCALES}
    try:
        return schema.model_validate({**shared, **section[scale]})
    except ValidationError as e:
        lines = [f"{params_file}: {experiment}.{scale}." + ".".join(map(str, err["loc"])) + f": {err['msg']}"
                 + (f" (got {err['input']!r})" if err["type"] != "missing" else "")
                 for err in e.errors()]
        raise ParamsError("\n".join(lines)) from None


def read_params_file(path: Path = PARAMS_FILE) -> dict:
    """params.yaml as a mapping; a missing or malformed file is a ParamsError naming it."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: parameters file not found")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    return raw
