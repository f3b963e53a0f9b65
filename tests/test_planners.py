"""Planners against a problem with a known optimum: a linear system with quadratic cost (Riccati)."""
import pytest
import torch

from wmlib.control.planners import PlannerParams, plan, shift
from wmlib.experiments.mujoco.lqr import LinearQuadratic

TDMPC2 = {"horizon": 3, "iterations": 6, "samples": 512, "policy_samples": 24, "elites": 64, "temperature": 0.5,
          "min_std": 0.05, "max_std": 2.0}  # TD-MPC2's planner


def planner(**changes) -> PlannerParams:
    return PlannerParams(**{**TDMPC2, **changes})

# tolerances on the first action (the optimum is -0.224) and on the plan's return (optimum -3.993)
TOLERANCE = {"mppi": 0.01, "cem": 0.01, "shooting": 0.1}


@pytest.mark.parametrize("prior", [False, True])
@pytest.mark.parametrize("method", ["mppi", "cem", "shooting"])
def test_planner_finds_the_lqr_optimum(method, prior):
    lq, z0 = LinearQuadratic.double_integrator(), torch.tensor([1.0, 0.0])
    optimum = lq.optimal_plan(z0, 3)
    best = lq.plan_return(z0, optimum)
    cfg = planner(method=method, use_prior=prior)
    action, mean, _ = plan(lq, z0, cfg, action_dim=1, discount=1.0, generator=torch.Generator().manual_seed(0))
    assert abs(action.item() - optimum[0, 0].item()) < TOLERANCE[method]
    assert lq.plan_return(z0, mean) <= best + 1e-5                  # nothing beats the optimum...
    assert lq.plan_return(z0, mean) > best - 1e-3 * abs(best)     # ...and the planner comes close


def test_riccati_plan_is_optimal_against_perturbations():
    """The independent reference itself: every perturbation of the Riccati plan does worse."""
    lq, z0 = LinearQuadratic.double_integrator(), torch.tensor([1.0, 0.0])
    optimum = lq.optimal_plan(z0, 3)
    best = lq.plan_return(z0, optimum)
    for _ in range(50):
        assert lq.plan_return(z0, optimum + 0.05 * torch.randn_like(optimum)) < best


def test_more_iterations_do_not_hurt_mppi():
    lq, z0 = LinearQuadratic.double_integrator(), torch.tensor([0.5, -0.5])
    gaps = []
    for iterations in (1, 6):
        cfg = planner(iterations=iterations, use_prior=False)
        _, mean, _ = plan(lq, z0, cfg, 1, 1.0, generator=torch.Generator().manual_seed(1))
        gaps.append(lq.plan_return(z0, lq.optimal_plan(z0, 3)) - lq.plan_return(z0, mean))
    assert gaps[1] <= gaps[0]


def test_all_planners_score_the_same_number_of_sequences():
    counts = {planner(method=m, use_prior=p).evaluations for m in ("mppi", "cem", "shooting") for p in (False, True)}
    assert counts == {(512 + 24) * 6}


def test_warm_start_shifts_the_plan():
    mean = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(shift(mean), torch.tensor([[2.0, 3.0], [4.0, 5.0], [0.0, 0.0]]))


def test_bad_planner_config_names_the_field():
    with pytest.raises(ValueError, match="method"):
        planner(method="ilqr")
    with pytest.raises(ValueError, match="elites"):
        planner(samples=8, policy_samples=0, elites=16)
