"""The dream environment: temperature sampling, the done head's loss, and episode accounting,
each against an independent computation; and gymnasium's own checker on the one-dream env."""
import math

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch.distributions import Bernoulli

from wmlib.experiments.doom.world_model import make_mdnrnn
from wmlib.models.dream import BatchedDream, DreamEnv, done_loss, linear_policy, quantize_action, sample_next_z

Z, H = 4, 8


def tiny_m(done_bias: float):
    """A small Doom-style M whose done logit is the constant `done_bias`."""
    m = make_mdnrnn(Z, H, 3)
    with torch.no_grad():
        m.head.weight[-1] = 0
        m.head.bias[-1] = done_bias
    return m.eval()


def dream(done_bias, tau=1.0, max_steps=50):
    return BatchedDream(tiny_m(done_bias), torch.zeros(3, Z), torch.zeros(3, Z), tau, max_steps)


def test_done_loss_matches_weighted_bernoulli_likelihood():
    logit, target = torch.randn(64), (torch.rand(64) < 0.2).float()
    log_p = Bernoulli(logits=logit).log_prob(target)
    ref = -(torch.where(target == 1, 10.0, 1.0) * log_p).mean()
    torch.testing.assert_close(done_loss(logit, target, 10.0), ref)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 1.3])
def test_temperature_sampling_matches_its_definition(tau):
    """Component ~ softmax(logits / tau); Gaussian noise scaled by sqrt(tau)."""
    n = 200_000
    log_w = torch.log(torch.tensor([0.6, 0.3, 0.1]))
    logits, logstd = log_w.expand(n, 1, 3), torch.log(torch.tensor([1.0, 2.0, 0.5])).expand(n, 1, 3)
    mu = torch.tensor([-50.0, 0.0, 50.0]).expand(n, 1, 3)
    z = sample_next_z(logits, mu, logstd, tau)[:, 0]
    w = torch.softmax(log_w / tau, 0)
    comp = torch.bucketize(z, torch.tensor([-25.0, 25.0]))
    freq = torch.bincount(comp, minlength=3).float() / n
    torch.testing.assert_close(freq, w, atol=0.005, rtol=0)
    assert z[comp == 0].std().item() == pytest.approx(math.sqrt(tau), rel=0.03)  # the likeliest component


def test_moves_are_quantized_at_one_third():
    a = torch.tensor([-1.0, -0.34, -0.33, 0.0, 0.33, 0.34, 1.0])
    assert quantize_action(a).tolist() == [-1, -1, 0, 0, 0, 1, 1]


def test_dream_ends_at_the_first_predicted_death():
    survived = dream(done_bias=5.0).rollout(lambda obs, alive: torch.zeros(len(alive)), 7)
    assert survived.tolist() == [1] * 7   # done probability sigmoid(5) > 0.5 after the first step


def test_dream_is_capped_at_max_steps_and_scores_one_per_frame():
    d = dream(done_bias=-5.0, max_steps=23)
    assert d.rollout(lambda obs, alive: torch.zeros(len(alive)), 5).tolist() == [23] * 5
    obs = d.reset(2)
    total, done = torch.zeros(2), torch.zeros(2, dtype=torch.bool)
    while not done.all():
        obs, reward, done = d.step(torch.zeros(2))
        total += reward
    assert total.tolist() == [23, 23]


def test_batched_rollout_counts_each_dream_to_its_own_end():
    """Dreams that die (moving right raises the done logit) leave the batch; the others go on."""
    m = tiny_m(done_bias=-5.0)
    with torch.no_grad():  # done logit = -5 + 20 * move input (LSTM off: h = 0 except through the input)
        m.lstm.weight_ih_l0.zero_(), m.lstm.weight_hh_l0.zero_(), m.lstm.bias_ih_l0.zero_()
        m.lstm.bias_ih_l0[3 * H:] = 10.0       # output gate open
        m.lstm.weight_ih_l0[2 * H, Z] = 10.0   # cell input follows the move
        m.lstm.bias_ih_l0[:H] = 10.0           # input gate open
        m.head.weight[-1].zero_()
        m.head.weight[-1, 0] = 20.0
    d = BatchedDream(m, torch.zeros(1, Z), torch.zeros(1, Z), 1.0, 30)
    die_at = torch.tensor([3, 10, 100, 5])  # step at which each dream moves right (100: never)
    survived = d.rollout(lambda obs, alive: (d.steps + 1 >= die_at[alive]).float(), 4)
    assert survived.tolist() == [3, 10, 30, 5]


def test_linear_policy_gives_each_dream_its_own_weights():
    w = torch.stack([torch.ones(6), -torch.ones(6)])
    obs = torch.ones(2, 6)
    assert linear_policy(w)(obs, torch.tensor([0, 1])).tolist() == [1, -1]
    assert linear_policy(w)(obs[:1], torch.tensor([1])).tolist() == [-1]


def test_dream_env_passes_gymnasiums_checker():
    env = DreamEnv(tiny_m(-5.0), torch.zeros(3, Z), torch.zeros(3, Z), tau=1.15, max_steps=20)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (Z + 2 * H,)
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    assert steps == 20 and truncated and not terminated


def test_bad_temperature_is_named():
    with pytest.raises(ValueError, match="tau must be positive"):
        dream(0.0, tau=0.0)


def test_dream_fitness_is_reproducible_from_its_seed():
    """CMA-ES in the dream resumes exactly: a generation's dreams depend only on its seed."""
    from wmlib.benchmarks.doom import doom_weights
    from wmlib.experiments.doom.controller import _dream_task
    shared = doom_weights()
    shared["mdnrnn"]["model"]["head.weight"][-1] *= 50  # deaths that depend on the sampled dream
    shared["mdnrnn"]["model"]["head.bias"][-1] = -3.0
    weights = 0.1 * np.random.default_rng(0).standard_normal((3, 64 + 2 * 512))
    a = _dream_task(shared, (weights, 4, 1.15, 300, 5))
    assert a.shape == (3, 4) and len(np.unique(a)) > 3  # dreams of varied length
    np.testing.assert_array_equal(a, _dream_task(shared, (weights, 4, 1.15, 300, 5)))
    assert not np.array_equal(a, _dream_task(shared, (weights, 4, 1.15, 300, 6)))


def test_death_on_the_capped_step_is_a_termination():
    """M predicts death on the last allowed step: the episode ends as terminated, not as truncated only."""
    env = DreamEnv(tiny_m(5.0), torch.zeros(3, Z), torch.zeros(3, Z), tau=1.0, max_steps=1)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step(0)
    assert terminated and not truncated
    env = DreamEnv(tiny_m(-5.0), torch.zeros(3, Z), torch.zeros(3, Z), tau=1.0, max_steps=1)
    env.reset(seed=0)
    assert env.step(0)[2:4] == (False, True)  # no death: cut by the cap


def play_dream(env, seed, steps=5):
    obs = [env.reset(seed=seed)[0]]
    obs += [env.step(t % 3)[0] for t in range(steps)]
    return np.stack(obs)


def test_dream_env_seeds_its_own_generator():
    """reset(seed) makes the dream reproducible through the env's own generator: torch's global generator is
    neither reseeded nor advanced, and two envs stepped in turn do not disturb each other."""
    make = lambda: DreamEnv(make_mdnrnn(Z, H, 3), torch.randn(5, Z), torch.zeros(5, Z), 1.15, 50)  # noqa: E731
    a, b = make(), make()
    b.dream.model.load_state_dict(a.dream.model.state_dict())
    torch.manual_seed(123)
    global_state = torch.get_rng_state()
    alone = play_dream(a, 7)
    assert torch.equal(torch.get_rng_state(), global_state)
    a.reset(seed=7), b.reset(seed=8)
    interleaved = [a.dream.obs()[0].numpy().copy()]
    for t in range(5):
        interleaved.append(a.step(t % 3)[0])
        b.step(1)
    np.testing.assert_array_equal(np.stack(interleaved), alone)
    assert not np.array_equal(play_dream(b, 8), alone)


def test_linear_policy_gives_the_continuous_action_when_m_takes_it():
    w, obs = 0.1 * torch.randn(3, 6), torch.randn(3, 6)
    a = torch.tanh((w * obs).sum(-1))
    alive = torch.arange(3)
    torch.testing.assert_close(linear_policy(w, quantize=False)(obs, alive), a)
    assert linear_policy(w)(obs, alive).tolist() == quantize_action(a).tolist()


@pytest.mark.parametrize("action_input", ["move", "continuous"])
def test_real_game_agent_feeds_m_what_m_was_trained_on(action_input):
    """DoomAgent acts with quantize(a) and feeds M the move or C's continuous a, per M's `action_input`."""
    from wmlib.benchmarks.doom import doom_weights
    from wmlib.envs.takecover import MOVE_TO_ACTION
    from wmlib.experiments.doom.controller import DoomAgent
    shared = doom_weights()
    shared["mdnrnn"]["action_input"] = action_input
    agent = DoomAgent(shared, np.random.default_rng(0).standard_normal(64 + 2 * 512).astype(np.float32))
    seen, cell = [], agent.cell
    agent.cell = lambda x, state: (seen.append(x.clone()), cell(x, state))[1]
    frame = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for _ in range(3):
        c, h = agent.c, agent.h
        action = agent(frame)
        x = seen[-1]
        a = agent.controller(torch.cat([x[:, :64], c, h], -1)).item()
        assert action == MOVE_TO_ACTION[int(quantize_action(torch.tensor(a)).item())]
        expected = a if action_input == "continuous" else quantize_action(torch.tensor(a)).item()
        assert x[0, 64].item() == pytest.approx(expected, abs=1e-6)


def test_dreams_start_from_the_given_first_frames():
    mu = torch.arange(5.0)[:, None].expand(5, Z)
    d = BatchedDream(tiny_m(-5.0), mu, torch.full((5, Z), -40.0), 1.0, 10)
    d.reset(4, starts=[3, 0, 4, 3])
    torch.testing.assert_close(d.z[:, 0], torch.tensor([3.0, 0.0, 4.0, 3.0]))


@pytest.mark.parametrize("done_bias, dream", [(-10.0, 40), (10.0, 1)])
def test_exploitation_pairs_real_and_dream_survival_per_episode(tmp_path, monkeypatch, done_bias, dream):
    """Per controller, each real evaluation episode's survival beside the dreams from its first frame: with M
    never predicting death every dream lasts to the cap; always predicting it, one frame."""
    from wmlib.benchmarks.doom import doom_weights
    from wmlib.evaluation import EvalResult
    from wmlib.experiments.doom import Run, table
    from wmlib.experiments.doom.params import DoomParams
    from wmlib.io import save_torch
    from wmlib.params import load_params
    p = load_params(DoomParams, "smoke")
    run = Run("smoke", p.model_copy(update={"taus": [0.5, 1.15], "evaluation": p.evaluation.model_copy(
        update={"max_steps": 40})}), tmp_path / "data", tmp_path / "results")
    shared = doom_weights()
    shared["mdnrnn"]["model"]["head.bias"][-1] = done_bias
    save_torch(shared["vae"], run.data / "vae.pt")
    save_torch({**shared["mdnrnn"], "action_input": "move"}, run.data / "mdnrnn.pt")
    real = {0.5: [30.0, 12.0, 40.0], 1.15: [5.0, 25.0, 17.0]}
    for tau in run.params.taus:
        c = np.zeros(64 + 2 * 512, np.float32)
        save_torch({"tau": tau, "params": c}, run.tau_dir(tau, "data") / "controller.pt")
        EvalResult(f"tau={tau}", [7, 8, 9], real[tau], real[tau]).save(run.tau_dir(tau) / "eval_real.json")
    monkeypatch.setattr(table, "first_frames", lambda run, seeds: np.zeros((len(seeds), 64, 64, 3), np.uint8))
    episodes, per_tau = table.exploitation(run, dreams=2)
    assert episodes.seed.tolist() == [7, 8, 9] * 2 and episodes.real.tolist() == real[0.5] + real[1.15]
    assert (episodes.dream == dream).all()
    np.testing.assert_allclose(per_tau.real_mean, [np.mean(real[0.5]), np.mean(real[1.15])])
    np.testing.assert_allclose(per_tau.real_std, [np.std(real[0.5]), np.std(real[1.15])])
    np.testing.assert_allclose(per_tau.gap, dream - per_tau.real_mean)
    assert (run.results / "exploitation.csv").exists()
