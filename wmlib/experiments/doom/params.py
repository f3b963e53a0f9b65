"""VizDoom TakeCover's section of params.yaml (`doom.<scale>`, `doom.taus`), validated."""
from typing import ClassVar

from ...params import Device, MDNRNNParams, ParallelParams, StrictParams, VAEParams


class DoomRolloutParams(StrictParams):
    episodes: int                # random episodes collected (those of min_length frames or fewer are dropped)
    max_steps: int               # frame cap (TakeCover has none of its own; the paper used 2100)
    min_length: int
    hold: list[int]              # a random action is held for hold[0]..hold[1] frames
    retries: int                 # restarts of a VizDoom process that dies mid-episode


class DoomMDNRNNParams(MDNRNNParams):
    done_weight: float           # weight of done = 1 targets in the done head's cross-entropy
    lr_min: float                # lr decays as lr_min + (lr - lr_min) * lr_decay ** step
    lr_decay: float


class DreamControllerParams(StrictParams):
    popsize: int
    rollouts: int                # dreams per candidate; fitness = mean frames survived
    sigma0: float
    generations: int
    max_steps: int               # dream episode cap (frames)
    eval_every: int              # evaluate the CMA-ES mean in the dream every n generations
    eval_episodes: int


class DoomEvaluationParams(StrictParams):
    episodes: int                # real-game episodes per controller (and dream episodes)
    max_steps: int


class DoomParams(StrictParams):
    section: ClassVar[str] = "doom"  # its key in params.yaml
    seed: int
    device: str = Device         # auto | cpu | cuda | cuda:N: where V, M, C and the dream run
    parallel: ParallelParams
    rollouts: DoomRolloutParams
    vae: VAEParams
    mdnrnn: DoomMDNRNNParams
    controller: DreamControllerParams
    evaluation: DoomEvaluationParams
    taus: list[float]            # dream temperatures, one controller each (shared by all scales)
