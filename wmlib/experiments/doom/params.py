"""VizDoom TakeCover's section of params.yaml (`doom.<scale>`, `doom.taus`, `doom.ablation`), validated."""
from typing import ClassVar, Literal

from ...params import Device, MDNRNNParams, ParallelParams, StrictParams, VAEParams


class DoomRolloutParams(StrictParams):
    episodes: int                # random episodes collected (those of min_length frames or fewer are dropped)
    max_steps: int               # frame cap (TakeCover has none of its own; the paper used 2100)
    min_length: int
    hold: list[int]              # a random action is held for hold[0]..hold[1] frames
    retries: int                 # restarts of a VizDoom process that dies mid-episode


class MSwitches(StrictParams):
    """Where M's training departs from the authors' doomrnn.py, a switch each (the authors' choice in brackets)."""
    action_input: Literal["move", "continuous"]   # M's action input: the quantised move in {-1, 0, +1}, or the
                                                  # controller's continuous output in [-1, 1] [continuous]
    reset_state: bool            # zero the LSTM state at each restart flag, as a dream starts an episode [true]
    windows: Literal["random", "stream"]  # random: batch_size windows from anywhere, each from a zero state;
                                 # stream: each epoch the episodes shuffled, laid end to end in batch_size rows
                                 # and cut into consecutive windows, the LSTM state carried on [stream]
    done_target: Literal["deaths", "episode_ends"]  # done = 1 on deaths only, or on every episode's last frame,
                                                    # a capped one too [episode_ends]


class DoomMDNRNNParams(MDNRNNParams, MSwitches):
    done_weight: float           # weight of done = 1 targets in the done head's cross-entropy
    lr_min: float                # lr decays as lr_min + (lr - lr_min) * lr_decay ** step
    lr_decay: float


class DoomAblationParams(StrictParams):
    tau: float                   # the dream temperature every variant's controller is trained and scored at
    variants: dict[str, MSwitches]  # name -> M's switches (replacing `mdnrnn`'s); same latents, same budgets


class AblationMBudget(StrictParams):
    steps: int                   # replace mdnrnn's: M's training steps, window length, lr decay per step
    seq_len: int
    lr_decay: float


class AblationCBudget(StrictParams):
    popsize: int                 # replace controller's (its sigma0 and max_steps are kept; one phase)
    rollouts: int
    generations: int
    eval_every: int
    eval_episodes: int


class DoomAblationBudget(StrictParams):
    """The ablation's screening budget, smaller than the main pipeline's and the same for every variant."""
    mdnrnn: AblationMBudget
    controller: AblationCBudget


class DreamControllerParams(StrictParams):
    popsize: int
    rollouts: int                # dreams per candidate; fitness = mean frames survived
    sigma0: float
    generations: int
    phases: int                  # DVC stages the generations are split into (dvc.yaml's doom_cmaes lists them)
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
    ablation: DoomAblationParams  # shared by all scales
    ablation_budget: DoomAblationBudget
