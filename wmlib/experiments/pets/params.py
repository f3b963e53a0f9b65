"""The PETS section of params.yaml (`pets.<scale>`, `pets.tasks`), validated."""
from typing import ClassVar, Literal

from pydantic import model_validator

from ...control.planners import PlannerParams
from ...models.ensemble import EnsembleParams
from ...params import Device, ParallelParams, StrictParams
from ..mujoco.params import BudgetParams, ControlEvaluationParams

Variant = Literal["full", "ts1", "expectation", "deterministic", "penalised"]


class PETSTaskSpec(StrictParams):
    action_repeat: int           # frames per agent step (as the other learners of wmlib.experiments.mujoco)
    published: dict[int, float]  # a published PETS return at a number of frames; {} where none exists
    source: str = ""             # where `published` comes from


class PETSTrainParams(StrictParams):
    seed_episodes: int           # random-action episodes first: max(min_seed_steps, seed_episodes episodes)
    min_seed_steps: int
    fit_every: int               # agent steps between ensemble refits (PETS: once per episode = episode length)


class PETSPlannerParams(StrictParams):
    planner: PlannerParams       # method cem (PETS) or mppi; use_prior must be false
    particles: int               # per action sequence, a multiple of ensemble.members (PETS: 20)
    propagation: Literal["ts_inf", "ts1", "expectation"] = "ts_inf"
    penalty: float = 0.0         # lambda of r - lambda x disagreement (the `penalised` variant's, if 0 here)


class UncertaintyParams(StrictParams):
    task: str                    # the task drawn in notebook 19's figure, on which the penalised planner is run
    episodes: int                # fresh episodes of the agent (in distribution) and of the other policy (OOD)
    horizons: list[int]          # open-loop steps at which multi-step error and disagreement are compared
    bins: int                    # bins of the variance reliability curve
    penalty: float               # lambda of the penalised planner compared with the plain one


class PETSParams(StrictParams):
    section: ClassVar[str] = "pets"  # its key in params.yaml
    seeds: list[int]                       # shared by all scales, as tasks and the ablations
    device: str = Device
    parallel: ParallelParams
    tasks: dict[str, PETSTaskSpec]         # shared by all scales
    budgets: dict[str, BudgetParams]       # which tasks this scale trains, and for how long (frames)
    ensemble: EnsembleParams
    train: PETSTrainParams
    plan: PETSPlannerParams
    evaluation: ControlEvaluationParams
    ablation_task: str
    ablation_seed: int
    ablations: list[Variant]               # extra runs of ablation_task with ablation_seed
    uncertainty: UncertaintyParams

    @property
    def seed(self) -> int:
        return self.seeds[0]

    def jobs(self) -> list[tuple[str, int, str]]:
        """(task, seed, variant): every task and seed (dvc.yaml's pets_job), then the ablations (pets_ablation_job)."""
        return ([(t, s, "full") for t in self.tasks for s in self.seeds]
                + [(self.ablation_task, self.ablation_seed, v) for v in self.ablations])

    @model_validator(mode="after")
    def _check(self):
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        if set(self.budgets) != set(self.tasks):
            raise ValueError(f"budgets ({', '.join(self.budgets)}) must cover exactly pets.tasks "
                             f"({', '.join(self.tasks)}): dvc.yaml runs a job per task and seed")
        if self.ablation_seed not in self.seeds:
            raise ValueError(f"ablation_seed {self.ablation_seed} is not in seeds {self.seeds}")
        named = [("budgets", t) for t in self.budgets]
        named += [("ablation_task", self.ablation_task), ("uncertainty.task", self.uncertainty.task)]
        for name, task in named:
            if task not in self.tasks:
                raise ValueError(f"{name}: task {task!r} is not in pets.tasks ({', '.join(self.tasks)})")
        if self.plan.particles % self.ensemble.members:
            raise ValueError(f"plan.particles ({self.plan.particles}) must be a multiple of ensemble.members "
                             f"({self.ensemble.members})")
        if self.plan.planner.use_prior or self.plan.planner.policy_samples:
            raise ValueError("plan.planner: PETS has no policy prior; set use_prior: false and policy_samples: 0")
        return self
