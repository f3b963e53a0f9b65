"""Dreamer: the RSSM's latents and KL, lambda-returns, discrete regression, the world model and diagnostics."""
import numpy as np
import pytest
import torch
import torch.distributions as D

from wmlib.control.actor_critic import ActorCritic, lambda_returns
from wmlib.models.rssm import RSSM, kl_loss
from wmlib.models.twohot import bins, symexp, symlog, two_hot, two_hot_decode
from wmlib.models.world_model import WorldModel, WorldModelConfig


def test_lambda_returns_equal_the_weighted_average_of_n_step_returns():
    """R_t = (1 - lam) sum_n lam^(n-1) G_t^(n) + lam^(H-t-1) G_t^(H-t), with n-step returns G that stop at
    discount-weighted continues and bootstrap from the value: the definition, not the recursion."""
    torch.manual_seed(0)
    H, N, gamma, lam = 6, 4, 0.9, 0.7
    reward, value = torch.randn(H, N), torch.randn(H + 1, N)
    cont = (torch.rand(H, N) > 0.2).float()
    cont[2, 0] = 0.0  # an episode end inside the horizon

    def n_step(t, n):
        g, disc = torch.zeros(N), torch.ones(N)
        for k in range(n):
            g = g + disc * reward[t + k]
            disc = disc * gamma * cont[t + k]
        return g + disc * value[t + n]

    expected = torch.stack([
        (1 - lam) * sum(lam ** (n - 1) * n_step(t, n) for n in range(1, H - t)) + lam ** (H - t - 1) * n_step(t, H - t)
        for t in range(H)])
    torch.testing.assert_close(lambda_returns(reward, cont, value, gamma, lam), expected)


def test_lambda_returns_with_lam_one_are_discounted_sums_and_with_lam_zero_td_targets():
    reward, value, cont = torch.ones(3, 1), torch.full((4, 1), 10.0), torch.ones(3, 1)
    assert lambda_returns(reward, cont, value, 0.5, 1.0)[0].item() == pytest.approx(1 + 0.5 + 0.25 + 0.125 * 10)
    torch.testing.assert_close(lambda_returns(reward, cont, value, 0.5, 0.0), torch.full((3, 1), 6.0))


def test_straight_through_categorical_has_one_hot_values_and_the_gradient_of_the_probabilities():
    torch.manual_seed(0)
    rssm = RSSM(action_dim=1, embed_dim=1, stoch=3, classes=5, latent="categorical", unimix=0.0)
    logits = torch.randn(4, 15, requires_grad=True)
    z = rssm.sample(logits)
    groups = z.unflatten(-1, (3, 5))
    assert set(groups.unique().tolist()) <= {0.0, 1.0} and torch.all(groups.sum(-1) == 1)
    w = torch.randn(4, 15)
    (grad,) = torch.autograd.grad((w * z).sum(), logits)
    (expected,) = torch.autograd.grad((w * logits.unflatten(-1, (3, 5)).softmax(-1).flatten(-2)).sum(), logits)
    torch.testing.assert_close(grad, expected)


def test_unimix_puts_a_floor_under_every_class():
    rssm = RSSM(action_dim=1, embed_dim=1, stoch=2, classes=4, latent="categorical", unimix=0.01)
    probs = rssm.dist(torch.tensor([[1e3, 0, 0, 0, 0, 0, 0, 0.0]])).base_dist.probs
    assert probs.min().item() == pytest.approx(0.01 / 4)
    assert probs.sum(-1).flatten().tolist() == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
def test_kl_balancing_equals_its_definition(latent):
    torch.manual_seed(0)
    rssm = RSSM(action_dim=1, embed_dim=1, stoch=4, classes=3, latent=latent, unimix=0.0)
    size = 12 if latent == "categorical" else 8
    post = torch.randn(5, size, requires_grad=True)
    prior = torch.randn(5, size, requires_grad=True)
    loss, value = kl_loss(rssm, post, prior, dyn_scale=0.5, rep_scale=0.1, free_nats=0.0)

    def dists(stats):
        if latent == "categorical":
            return D.Independent(D.Categorical(logits=stats.unflatten(-1, (4, 3))), 1)
        mean, std = stats.chunk(2, -1)
        return D.Independent(D.Normal(mean, torch.nn.functional.softplus(std) + 0.1), 1)

    kl = D.kl_divergence(dists(post), dists(prior))
    torch.testing.assert_close(loss, 0.6 * kl.mean())
    torch.testing.assert_close(value, kl.mean().detach())
    # the dynamics term trains only the prior, the representation term only the posterior
    dyn_only, _ = kl_loss(rssm, post, prior, 1.0, 0.0, 0.0)
    g_post, g_prior = torch.autograd.grad(dyn_only, (post, prior))
    assert g_post.abs().max() == 0 and g_prior.abs().max() > 0
    rep_only, _ = kl_loss(rssm, post, prior, 0.0, 1.0, 0.0)
    g_post, g_prior = torch.autograd.grad(rep_only, (post, prior))
    assert g_post.abs().max() > 0 and g_prior.abs().max() == 0


def test_free_nats_clip_each_kl_from_below_and_stop_its_gradient():
    rssm = RSSM(action_dim=1, embed_dim=1, stoch=2, classes=2, latent="categorical", unimix=0.0)
    post = torch.zeros(3, 4, requires_grad=True)
    prior = (torch.zeros(3, 4) + torch.tensor([0.1, 0.0, 0.0, 0.1])).requires_grad_()
    loss, value = kl_loss(rssm, post, prior, 0.5, 0.1, free_nats=1.0)
    assert value.item() < 1.0 and loss.item() == pytest.approx(0.6)
    assert torch.autograd.grad(loss, prior)[0].abs().max() == 0


def test_deterministic_latent_is_the_mean_and_its_kl_half_the_squared_distance():
    rssm = RSSM(action_dim=1, embed_dim=1, stoch=3, latent="deterministic")
    post, prior = torch.randn(2, 6), torch.randn(2, 6)
    torch.testing.assert_close(rssm.sample(post), post[:, :3])
    _, value = kl_loss(rssm, post, prior, 1.0, 1.0, 0.0)
    torch.testing.assert_close(value, (0.5 * (post[:, :3] - prior[:, :3]) ** 2).sum(-1).mean())


def test_symlog_two_hot_round_trip_over_dreamer_bins():
    centres = bins(255, -20.0, 20.0)
    x = torch.tensor([-1e4, -37.5, -1.0, 0.0, 0.3, 2.0, 123.4, 5e5])
    torch.testing.assert_close(symexp(symlog(x)), x)
    target = two_hot(x, centres)
    assert torch.all((target > 0).sum(-1) <= 2) and torch.allclose(target.sum(-1), torch.ones(len(x)))
    torch.testing.assert_close(two_hot_decode(target.log(), centres), x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(7,), (64, 64, 3)])
def test_world_model_loss_and_posterior_shapes(shape):
    torch.manual_seed(0)
    cfg = WorldModelConfig(deter=16, hidden=16, stoch=4, classes=4, layers=1, cnn_depth=4)
    wm = WorldModel(shape, 2, cfg)
    T, B = 5, 3
    obs = torch.randint(0, 256, (T + 1, B, *shape), dtype=torch.uint8) if len(shape) == 3 else torch.randn(T + 1, B, 7)
    loss, metrics, (h, z) = wm.loss(obs, torch.rand(T, B, 2) * 2 - 1, torch.randn(T, B))
    loss.backward()
    assert h.shape == (T + 1, B, 16) and z.shape == (T + 1, B, 16)
    assert set(metrics) == {"recon", "reward", "cont", "kl"}
    assert wm.decode(torch.cat([h, z], -1)).shape == wm.target(obs).shape
    assert all(p.grad is not None for p in wm.parameters())


def test_world_model_rejects_frames_of_the_wrong_size():
    with pytest.raises(ValueError, match="64x64x3"):
        WorldModel((84, 84, 3), 2)


def test_actor_gradient_flows_through_the_frozen_dynamics_into_the_actor_only():
    torch.manual_seed(0)
    cfg = WorldModelConfig(deter=16, hidden=16, stoch=4, classes=4, layers=1)
    wm = WorldModel((5,), 2, cfg).requires_grad_(False)
    ac = ActorCritic(wm.rssm.feature_size, 2, 16, 1, True, 255, 20.0, 0.99, 0.95, 3e-4, True, 0.02, 1e-3, 1e-3, 100.0)
    before = [p.clone() for p in ac.actor.parameters()]
    h, z = wm.rssm.initial(8)
    metrics = ac.update(wm, h, z, horizon=4)
    assert all(not torch.equal(a, b) for a, b in zip(before, ac.actor.parameters()))
    assert all(p.grad is None for p in wm.parameters())
    assert np.isfinite(list(metrics.values())).all()


def _tiny_params():
    from wmlib.experiments.mujoco.params import MujocoParams
    from wmlib.params import load_params
    return load_params(MujocoParams, "smoke")


def test_open_loop_predictions_depend_only_on_actions_already_taken():
    """Imagined step k uses the actions up to the one before it: changing a later action leaves it unchanged."""
    from wmlib.experiments.mujoco.diagnostics import open_loop
    torch.manual_seed(0)
    wm = WorldModel((3,), 1, WorldModelConfig(deter=8, hidden=8, stoch=2, classes=3, layers=1))
    obs, action = torch.randn(31, 3), torch.rand(30, 1)
    context, horizon, start, k = 4, 6, 2, 3
    torch.manual_seed(1)
    pred, real, last = open_loop(wm, obs, action, [start], context, horizon)
    changed = action.clone()
    changed[start + context - 1 + k] = -5.0  # the action after imagined step k (1-based)
    torch.manual_seed(1)
    pred2, _, _ = open_loop(wm, obs, changed, [start], context, horizon)
    torch.testing.assert_close(pred[:k], pred2[:k])
    assert not torch.allclose(pred[k:], pred2[k:])
    torch.testing.assert_close(real[:, 0], wm.target(obs[start + context:start + context + horizon]))
    torch.testing.assert_close(last[0], wm.target(obs[start + context - 1]))


def test_persistence_error_is_zero_on_constant_episodes():
    from wmlib.experiments.mujoco.diagnostics import open_loop_error
    wm = WorldModel((3,), 1, WorldModelConfig(deter=8, hidden=8, stoch=2, classes=3, layers=1))
    episodes = [(torch.ones(26, 3), torch.zeros(25, 1))]
    torch.manual_seed(0)  # imagination samples latents
    errors = open_loop_error(wm, episodes, context=5, horizon=20)
    assert errors.step.tolist() == list(range(1, 21)) and (errors.persistence == 0).all()
    too_short = open_loop_error(wm, episodes, context=5, horizon=21)  # an episode that ended early: no window
    assert (too_short.windows == 0).all() and too_short.model.isna().all() and len(too_short) == 21
    torch.manual_seed(0)
    both = open_loop_error(wm, episodes + [(torch.ones(10, 3), torch.zeros(9, 1))], context=5, horizon=20)
    assert both.equals(errors)  # the short episode is left out


def test_dreamer_unknown_variant_is_named():
    from wmlib.experiments.mujoco.dreamer import variant_config
    with pytest.raises(ValueError, match="no_decoder"):
        variant_config(_tiny_params().dreamer, "no_decoder")


def test_pixel_env_renders_64x64_frames():
    from wmlib.envs.mujoco_tasks import make_env
    env = make_env("dmc/cartpole-swingup", action_repeat=8, max_frames=16, pixels=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and obs.std() > 0
    _, _, _, truncated, _ = env.step(env.action_space.sample())
    _, _, _, truncated, _ = env.step(env.action_space.sample())
    assert truncated  # 2 agent steps x 8 frames = the 16-frame cap
    env.close()


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_every_version_builds_and_updates(version):
    from wmlib.experiments.mujoco.dreamer import VERSIONS, Dreamer
    torch.manual_seed(0)
    d = _tiny_params().dreamer.model_copy(update={"version": version})
    agent = Dreamer((5,), 2, d)
    assert agent.wm.rssm.latent == VERSIONS[version]["latent"] and agent.gamma == VERSIONS[version]["gamma"]
    assert (agent.ac.scale is not None) == VERSIONS[version]["return_norm"]
    T, B = d.train.seq_len, d.train.batch_size
    metrics = agent.update(torch.randn(T + 1, B, 5), torch.rand(T, B, 2) * 2 - 1, torch.randn(T, B))
    assert np.isfinite(list(metrics.values())).all()
    assert agent.act(np.zeros(5, np.float32), explore=True).shape == (2,)


def test_a_dreamer_job_from_pixels_trains_and_imagines_frames(tmp_path):
    """The paper scale's pixel path end to end, at smoke size (smoke's Dreamer sees state vectors): a job on 64x64
    frames trains and evaluates, its checkpoint loads, and its imagined frames are plotted beside the real ones."""
    import matplotlib.pyplot as plt

    from wmlib import plotting
    from wmlib.experiments.mujoco import diagnostics, dreamer
    p = _tiny_params()
    p = p.model_copy(update={"device": "cpu", "dreamer": p.dreamer.model_copy(update={"pixels": True})})
    task, d = "gym/Hopper-v5", p.dreamer  # its falls end episodes early: updates begin within 200 frames
    result = dreamer.train_dreamer((p, tmp_path / "data", tmp_path / "results"), (task, 0, "full"))
    assert result["frames"] >= p.budgets[task].frames and result["updates"] == d.train.updates
    agent = dreamer.load_agent(p, tmp_path / "data", task, 0)
    assert agent.wm.encoder is not None
    (obs, action), = diagnostics.collect_episodes(agent, dreamer.make_task_env(p, task), 1)
    assert obs.shape[1:] == (64, 64, 3) and obs.dtype == torch.uint8
    horizons = [h for h in d.diagnostics.horizons if d.diagnostics.context + h <= len(action)]  # Hopper falls
    assert horizons, len(action)
    pred, real, _ = diagnostics.open_loop(agent.wm, obs, action, [0], d.diagnostics.context, max(horizons))
    assert pred.shape == real.shape == (max(horizons), 1, *real.shape[2:]) and torch.isfinite(pred).all()
    fig = plotting.imagined_vs_real([(task, pred[:, 0], real[:, 0])], horizons, pixels=True)
    assert len(fig.axes) >= 2 * len(horizons)  # a real and an imagined frame per horizon
    plt.close(fig)
