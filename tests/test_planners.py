"""Planners against a problem with a known optimum: a linear system with quadratic cost (Riccati)."""
import pytest
import torch

from wmlib.control.planners import PlannerParams, draw_elite, plan, shift
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
    cfg = planner(method=method, use_prior=prior, action="mean")  # the optimiser's result; the elite draw: below
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


class ScoreByAction:
    """A model whose score is a known function of the first action: reward = -(a - 0.3)^2 from a latent that
    never moves, no value; so every sequence's score is computable directly."""

    def next(self, z, a):
        return z

    def reward(self, z, a):
        return -((a - 0.3) ** 2).sum(-1)

    def value(self, z):
        return torch.zeros(len(z))


def test_elite_action_is_drawn_as_tdmpc2_draws_it():
    """One MPPI iteration recomputed directly with the same random stream: Gaussian samples, scores, the top
    `elites`, softmax(temperature * score) and the drawn elite's first action."""
    cfg = planner(horizon=1, iterations=1, samples=16, policy_samples=0, elites=4, use_prior=False, temperature=2.0)
    model, z0 = ScoreByAction(), torch.zeros(2)
    action, mean, std = plan(model, z0, cfg, action_dim=1, discount=1.0, generator=torch.Generator().manual_seed(3))

    g = torch.Generator().manual_seed(3)
    actions = (cfg.max_std * torch.randn(1, 16, 1, generator=g)).clamp(-1, 1)
    score = -((actions[0, :, 0] - 0.3) ** 2)
    top, idx = score.topk(4)
    w = torch.exp(2.0 * (top - top.max()))
    w = w / w.sum()
    drawn = idx[torch.multinomial(w, 1, generator=g)[0]]
    assert torch.allclose(action, actions[0, drawn])
    assert torch.allclose(mean[0], (w * actions[0, idx, 0]).sum()[None])
    assert not torch.allclose(action, mean[0])  # the elite, not the mean, is executed


def test_elite_draw_frequencies_follow_the_softmax_weights():
    elites = torch.arange(4.0).reshape(1, 4, 1).expand(2, 4, 1)  # first actions 0, 1, 2, 3
    w = torch.softmax(0.5 * torch.tensor([3.0, 1.0, 0.0, -2.0]), 0)
    g = torch.Generator().manual_seed(0)
    n = 20_000
    counts = torch.bincount(torch.stack([draw_elite(elites, w, g) for _ in range(n)]).long().flatten(), minlength=4)
    assert torch.allclose(counts / n, w, atol=4 * (0.25 / n) ** 0.5)  # 4 binomial standard deviations


def test_mean_switch_executes_the_final_means_first_action():
    cfg = planner(horizon=2, iterations=2, samples=16, policy_samples=0, elites=4, use_prior=False, action="mean")
    action, mean, _ = plan(ScoreByAction(), torch.zeros(2), cfg, 1, 1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(action, mean[0])


def test_tdmpc_explores_with_the_planners_std_and_evaluates_without_noise(monkeypatch):
    """TD-MPC2's act: the drawn elite's action plus std[0] x N(0, 1) while training, the bare action in eval_mode."""
    from wmlib.experiments.mujoco import tdmpc

    a0, std = torch.tensor([0.1, -0.2]), torch.tensor([[0.05, 0.3]])
    monkeypatch.setattr(tdmpc, "plan", lambda *args, **kw: (a0.clone(), torch.zeros(1, 2), std))
    agent = tdmpc.TDMPC.__new__(tdmpc.TDMPC)
    agent.model = type("M", (), {"eval": lambda self: None, "encode": lambda self, o: o})()
    agent.device, agent.action_dim, agent.planner, agent.discount = torch.device("cpu"), 2, None, 0.9
    agent.prev_mean = None
    assert torch.equal(torch.as_tensor(agent.act(torch.zeros(2), explore=False)), a0)
    noise = torch.stack([torch.as_tensor(agent.act(torch.zeros(2), explore=True)) - a0 for _ in range(4000)])
    assert torch.allclose(noise.mean(0), torch.zeros(2), atol=0.02)
    assert torch.allclose(noise.std(0), std[0], rtol=0.05)
