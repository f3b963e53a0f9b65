"""The MuJoCo section of params.yaml (`mujoco.<scale>`, `mujoco.tasks`), validated."""
from typing import ClassVar, Literal

from pydantic import model_validator

from ...control.planners import PlannerParams
from ...params import Device, ParallelParams, StrictParams


class ControlTaskSpec(StrictParams):
    action_repeat: int           # frames per agent step (TD-MPC v1: 8 on cartpole, 2 on walker, 4 on cheetah; gym 1)
    terminates: bool = False     # episodes can end before the time limit (Hopper falls): termination heads learn it


class BudgetParams(StrictParams):
    frames: int                  # training budget in frames (env steps before action repeat)
    eval_every: int              # frames between learning-curve evaluations


class LatentModelParams(StrictParams):
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


class TDMPCTrainParams(StrictParams):
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
    termination_coef: float = 1.0  # TD-MPC2's weight of the termination loss (tasks that terminate only)
    seed_episodes: int           # random-action episodes first: max(min_seed_steps, seed_episodes episodes)
    min_seed_steps: int


class ControlEvaluationParams(StrictParams):
    episodes: int                # final evaluation episodes per run
    curve_episodes: int          # episodes per learning-curve point
    max_frames: int | None       # episode cap in frames (None: the task's own 1000)


class PlannerStudyParams(StrictParams):
    task: str                    # the trained model the planners are compared on
    episodes: int
    ablations: list[Literal["no_simnorm", "no_two_hot"]]  # extra training runs of `task` with a switch off


class WidthStudyParams(StrictParams):
    """TD-MPC with `wide_model`'s MLPs (variant `wide`, one DVC job stage per seed) beside the default width on
    `task`."""
    task: str


class WideModelParams(StrictParams):
    """The width study's widths, replacing the scale's `model` widths (TD-MPC v1: 512 and 256)."""
    hidden: int                  # MLP width of dynamics, reward, Q and policy heads
    encoder_hidden: int


class ControlBenchmarkParams(StrictParams):
    calls: int                   # planning calls timed (median reported)
    updates: int                 # model updates timed


class DreamerModelParams(StrictParams):
    deter: int                   # GRU state size
    hidden: int                  # MLP width (encoder, decoder, heads, actor, critic)
    stoch: int                   # latent variables (categorical) or dimensions (Gaussian)
    classes: int                 # classes per categorical variable
    layers: int                  # hidden layers per MLP
    cnn_depth: int               # channels of the first conv layer, pixels only


class DreamerTrainParams(StrictParams):
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


class DreamerDiagnosticsParams(StrictParams):
    episodes: int                # held-out real episodes for the open-loop prediction error
    context: int                 # observed steps before imagining
    horizons: list[int]          # imagined steps at which the error is reported


class DreamerParams(StrictParams):
    version: Literal["v1", "v2", "v3"]  # which paper's switches (wmlib.experiments.mujoco.dreamer.VERSIONS)
    pixels: bool                 # 64x64 rendered frames instead of state vectors
    model: DreamerModelParams
    train: DreamerTrainParams
    diagnostics: DreamerDiagnosticsParams
    ablation_task: str
    ablations: list[Literal["no_kl", "deterministic", "no_reconstruction", "gaussian", "no_baseline", "tanh_actor",
                            "slow_target"]]


class MujocoParams(StrictParams):
    section: ClassVar[str] = "mujoco"  # its key in params.yaml
    seeds: list[int]                       # shared by all scales: dvc.yaml's job stages iterate over them
    device: str = Device         # auto | cpu | cuda | cuda:N: models, replay buffers and planners (SAC too)
    parallel: ParallelParams
    tasks: dict[str, ControlTaskSpec]      # shared by all scales: dvc.yaml's job stages iterate over them
    budgets: dict[str, BudgetParams]       # how long each task trains at this scale (every task in `tasks`)
    model: LatentModelParams
    wide_model: WideModelParams            # the width study's `wide` variant
    train: TDMPCTrainParams
    planner: PlannerParams
    evaluation: ControlEvaluationParams
    planner_study: PlannerStudyParams
    width_study: WidthStudyParams          # shared by all scales: dvc.yaml's width job stages run its task
    benchmark: ControlBenchmarkParams
    paper_model: LatentModelParams         # TD-MPC2's 5M-parameter model, for the benchmarks
    dreamer: DreamerParams

    @property
    def seed(self) -> int:
        return self.seeds[0]

    @model_validator(mode="after")
    def _known_tasks(self):
        if not self.seeds or len(set(self.seeds)) < len(self.seeds):
            raise ValueError(f"seeds must list at least one seed, each once, got {self.seeds}")
        if set(self.budgets) != set(self.tasks):  # one DVC job stage per task, seed and learner at every scale
            missing, unknown = sorted(set(self.tasks) - set(self.budgets)), sorted(set(self.budgets) - set(self.tasks))
            raise ValueError(f"budgets must give every task in mujoco.tasks a budget: missing {missing}, "
                             f"not in mujoco.tasks {unknown}")
        for task in [self.planner_study.task, self.dreamer.ablation_task, self.width_study.task]:
            if task not in self.tasks:
                raise ValueError(f"task {task!r} is not in mujoco.tasks ({', '.join(self.tasks)})")
        return self
