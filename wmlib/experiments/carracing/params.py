"""CarRacing's section of params.yaml (`carracing.<scale>`), validated."""
from typing import ClassVar, Literal

from ...params import Device, MDNRNNParams, ParallelParams, StrictParams, VAEParams


class RolloutParams(StrictParams):
    episodes: int
    max_steps: int               # env steps per episode (CarRacing-v3 caps at 1000)
    policy: Literal["brownian", "uniform"]


class ControllerParams(StrictParams):
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


class EvaluationParams(StrictParams):
    episodes: int
    max_steps: int
    gif_steps: int               # length of the embedded agent animation (frames)


class CarRacingParams(StrictParams):
    section: ClassVar[str] = "carracing"  # its key in params.yaml
    seed: int
    device: str = Device         # auto | cpu | cuda | cuda:N: where V, M and C run
    parallel: ParallelParams
    rollouts: RolloutParams
    vae: VAEParams
    mdnrnn: MDNRNNParams
    controller: ControllerParams
    evaluation: EvaluationParams
