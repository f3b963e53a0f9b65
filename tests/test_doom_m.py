"""Doom's M training: the episode-boundary mask, and each switch that departs from the authors' doomrnn.py
(done target, LSTM reset at the restart flag, stream windows with the state carried on, action input), each
against a direct computation."""
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from wmlib.experiments.doom import Run
from wmlib.experiments.doom import world_model as wm
from wmlib.experiments.doom.params import DoomParams
from wmlib.models.dream import done_loss
from wmlib.params import load_params

Z, H = 4, 8
LENGTHS, DIED = (4, 6, 3), (1, 0, 1)  # the 6-frame episode reached the cap: it ends without a death


def params(**switches):
    p = load_params(DoomParams, "smoke").mdnrnn
    return p.model_copy(update={"action_input": "move", "reset_state": False, "windows": "random",
                                "done_target": "deaths", **switches})


def stream():
    """Three episodes end to end as encode_rollouts lays them out, and each frame's episode id."""
    episode = np.repeat(np.arange(len(LENGTHS)), LENGTHS)
    restart = np.r_[1, (np.diff(episode) != 0)].astype(np.float32)
    died = np.zeros(len(episode), np.float32)
    died[np.cumsum(LENGTHS)[np.array(DIED) == 1] - 1] = 1
    return episode, restart, died


def tiny_m():
    torch.manual_seed(0)
    return wm.make_mdnrnn(Z, H, 3)


def whole_window(restart, died, p, seed=0):
    """The whole stream as one window: (loss pieces, the inputs)."""
    g = torch.Generator().manual_seed(seed)
    N = len(restart)
    z, action = torch.randn(1, N, Z, generator=g), torch.randint(-1, 2, (1, N), generator=g).float()
    tensors = [torch.as_tensor(x)[None] for x in (restart, wm.episode_ends(restart), died)]
    return z, action, tensors


def test_episode_ends_mark_every_last_frame():
    episode, restart, _ = stream()
    ends = wm.episode_ends(restart)
    np.testing.assert_array_equal(ends, np.r_[episode[1:] != episode[:-1], True])


@pytest.mark.parametrize("reset_state", [False, True])
def test_no_transition_crosses_an_episode_end_capped_or_not(reset_state):
    """The MDN loss averages log-likelihoods over the transitions t -> t + 1 inside one episode only: a capped
    episode's last frame -> the next episode's first is not a transition (nor is a death's)."""
    episode, restart, died = stream()
    m, p = tiny_m(), params(reset_state=reset_state)
    z, action, (r, e, d) = whole_window(restart, died, p)
    nll, _, _ = wm.window_loss(m, z, action, r, e, d, p)
    x = torch.cat([z[:, :-1], action[:, :-1, None], r[:, :-1, None]], -1)
    (logits, mu, logstd, _), _ = wm.run_m(m, x, r[:, :-1] if reset_state else None)
    within = torch.as_tensor(episode[1:] == episode[:-1])
    mixture = MixtureSameFamily(Categorical(logits=logits[0, within]), Normal(mu[0, within], logstd[0, within].exp()))
    ref = -mixture.log_prob(z[0, 1:][within]).mean()
    assert within.sum() == len(episode) - len(LENGTHS)
    torch.testing.assert_close(nll, ref)


@pytest.mark.parametrize("target", ["deaths", "episode_ends"])
def test_done_target_is_deaths_or_every_episode_end(target):
    episode, restart, died = stream()
    m, p = tiny_m(), params(done_target=target)
    z, action, (r, e, d) = whole_window(restart, died, p)
    _, d_loss, _ = wm.window_loss(m, z, action, r, e, d, p)
    last = np.r_[episode[1:] != episode[:-1], True]
    expected = last & np.repeat(np.array(DIED) == 1, LENGTHS) if target == "deaths" else last
    x = torch.cat([z[:, :-1], action[:, :-1, None], r[:, :-1, None]], -1)
    (_, _, _, logit), _ = m(x)
    ref = done_loss(logit, torch.as_tensor(expected[:-1], dtype=torch.float32)[None], p.done_weight)
    torch.testing.assert_close(d_loss, ref)
    assert expected[:-1].sum() == (1 if target == "deaths" else 2)  # in the window: the first death; + the cap


def test_reset_state_starts_each_episode_from_a_zero_state():
    """With reset_state, M's outputs over an episode are those of M run on that episode alone from a zero state
    (as in a dream); without it, the state carries over from the episode before."""
    episode, restart, _ = stream()
    m = tiny_m()
    x = torch.randn(1, len(restart), Z + 2)
    x[..., -1] = torch.as_tensor(restart)
    r = torch.as_tensor(restart)[None]
    with torch.no_grad():
        (reset, *_), _ = wm.run_m(m, x, r)
        (kept, *_), _ = wm.run_m(m, x)
        for e in range(len(LENGTHS)):
            own = torch.as_tensor(episode == e)
            (alone, *_), _ = m(x[:, own])
            torch.testing.assert_close(reset[:, own], alone)
            if e > 0:
                assert not torch.allclose(kept[:, own], alone, atol=1e-4)


def test_stream_windows_follow_the_authors_layout():
    """Each epoch: the episodes in a seeded random order, end to end, in batch_size rows; consecutive windows of a
    row share their boundary frame, so every transition is trained once; the LSTM state carries over except at
    an epoch's first window."""
    lengths = np.array([30, 45, 25, 60, 40])
    restart = np.zeros(lengths.sum(), np.float32)
    restart[np.r_[0, np.cumsum(lengths)[:-1]]] = 1
    p = params(windows="stream", batch_size=2, seq_len=10)
    sampler = wm.WindowSampler(restart, p, seed=3)
    rows = len(restart) // 2
    assert sampler.per_epoch == (rows - 1) // 10
    order = np.random.default_rng([3, 0]).permutation(len(lengths))
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    shuffled = np.concatenate([np.arange(starts[e], starts[e] + lengths[e]) for e in order])
    windows = [sampler(k) for k in range(sampler.per_epoch)]
    assert all(w.shape == (2, 11) for w in windows)
    for b in range(2):
        row = np.concatenate([windows[0][b]] + [w[b, 1:] for w in windows[1:]])
        np.testing.assert_array_equal(row, shuffled[b * rows:b * rows + len(row)])
    assert [sampler.carries(k) for k in range(sampler.per_epoch + 1)] == [False] + [True] * (sampler.per_epoch - 1) \
        + [False]
    assert not np.array_equal(sampler(sampler.per_epoch), windows[0])  # a new epoch, a new order


def test_carried_state_continues_the_row():
    """Two consecutive windows with the state carried give M's outputs over the row run in one go."""
    m, x = tiny_m(), torch.randn(2, 20, Z + 2)
    with torch.no_grad():
        (whole, *_), _ = m(x)
        (first, *_), state = wm.run_m(m, x[:, :10])
        (second, *_), _ = wm.run_m(m, x[:, 10:], state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_stream_that_is_too_short_is_named():
    with pytest.raises(ValueError, match="mdnrnn.batch_size"):
        wm.WindowSampler(np.r_[1, np.zeros(99)].astype(np.float32), params(windows="stream", batch_size=8,
                                                                             seq_len=20), seed=0)


@pytest.mark.parametrize("action_input", ["move", "continuous"])
def test_m_is_fed_the_move_or_the_continuous_action(tmp_path, monkeypatch, action_input):
    """train_mdnrnn gives M the latents' `move` or `action` column at the sampled frames; M's file records it."""
    run = Run("smoke", load_params(DoomParams, "smoke"), tmp_path, tmp_path)
    run = Run("smoke", run.params.model_copy(update={"mdnrnn": params(action_input=action_input, steps=2,
                                                                     hidden=H, seq_len=5, batch_size=3)}),
              tmp_path, tmp_path)
    episode, restart, died = stream()
    N = len(restart)
    rng = np.random.default_rng(0)
    action = rng.uniform(-1, 1, N).astype(np.float32)
    move = ((action > 1 / 3).astype(np.float32) - (action < -1 / 3))
    lat = {"mu": rng.standard_normal((N, Z)).astype(np.float32), "logvar": np.full((N, Z), -2, np.float32),
           "move": move, "action": action, "restart": restart, "done": died}
    seen, loss = [], wm.window_loss

    def spy(model, z, a, *args, **kwargs):
        seen.append(a.clone())
        return loss(model, z, a, *args, **kwargs)
    monkeypatch.setattr(wm, "window_loss", spy)
    wm.train_mdnrnn(run, lat, progress=False)
    sampler = wm.WindowSampler(restart, run.params.mdnrnn, run.params.seed)
    column = lat["action" if action_input == "continuous" else "move"]
    for step, a in enumerate(seen):
        np.testing.assert_array_equal(a.numpy(), column[sampler(step)])
    assert wm.load_mdnrnn(run, "cpu")[1]["action_input"] == action_input


def small_run(tmp_path, **switches):
    """A Run and a synthetic latent stream of four episodes (180 frames) for it, M of H units."""
    p = load_params(DoomParams, "smoke")
    run = Run("smoke", p.model_copy(update={"mdnrnn": params(**switches, hidden=H, seq_len=10, batch_size=2,
                                                             steps=6)}), tmp_path, tmp_path)
    tmp_path.mkdir()
    lengths = (40, 60, 30, 50)
    N, rng = sum(lengths), np.random.default_rng(0)
    restart = np.zeros(N, np.float32)
    restart[np.r_[0, np.cumsum(lengths)[:-1]]] = 1
    move = rng.integers(-1, 2, N).astype(np.float32)
    lat = {"mu": rng.standard_normal((N, Z)).astype(np.float32), "logvar": np.full((N, Z), -2, np.float32),
           "move": move, "action": move, "restart": restart, "done": wm.episode_ends(restart)}
    return run, lat


def test_stream_training_killed_mid_epoch_resumes_with_its_carried_state(tmp_path, monkeypatch, interrupt):
    """Stopped after step 3 (checkpoints every step), then rerun: the same M as an uninterrupted run, which needs
    the LSTM state carried into step 4 restored along with the checkpoint."""
    monkeypatch.setattr(wm, "CHECKPOINT_SECONDS", 0)
    ref, _ = wm.train_mdnrnn(*small_run(tmp_path / "ref", windows="stream", reset_state=True), progress=False)
    run, lat = small_run(tmp_path / "run", windows="stream", reset_state=True)
    interrupt(wm, "window_loss", 4, lambda: wm.train_mdnrnn(run, lat, progress=False))  # dies computing step 4
    resumed, history = wm.train_mdnrnn(run, lat, progress=False)
    assert history[-1]["step"] == 6
    for a, b in zip(ref.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
