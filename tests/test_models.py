"""V, M and C against the paper's parameter counts and torch.distributions' likelihoods."""
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal, kl_divergence

from wmlib.control.controller import LinearController
from wmlib.models.mdnrnn import MDNRNN, imagine, mdn_nll, sample_mixture
from wmlib.models.vae import ConvVAE, frames_to_tensor, gaussian_kl, vae_loss


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_vae_parameter_count_matches_paper():
    assert n_params(ConvVAE(32)) == 4_348_547   # CarRacing
    assert n_params(ConvVAE(64)) == 4_446_915   # Doom


def test_mdnrnn_trainable_parameter_count_matches_paper():
    assert sum(p.numel() for p in MDNRNN(32, 3, 256, 5).trainable_parameters()) == 422_368
    doom = MDNRNN(64, 1, 512, 5, extra_inputs=1, done_head=True)
    assert sum(p.numel() for p in doom.trainable_parameters()) == 1_678_785


def test_controller_parameter_counts_match_paper():
    assert LinearController(32 + 256, 3).n_params == 867
    assert LinearController(64 + 512 + 512, 1, bias=False).n_params == 1_088


def test_vae_shapes_follow_the_paper():
    vae = ConvVAE(32)
    x = torch.rand(2, 3, 64, 64)
    assert vae.encoder[:-1](x).shape == (2, 256, 2, 2)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 32)
    assert 0 <= recon.min() and recon.max() <= 1


def test_frames_to_tensor_scales_uint8_to_unit_interval():
    frames = torch.randint(0, 256, (5, 64, 64, 3), dtype=torch.uint8).numpy()
    x = frames_to_tensor(frames)
    assert x.shape == (5, 3, 64, 64)
    assert x[1, 2, 3, 4].item() == pytest.approx(frames[1, 3, 4, 2] / 255.0)


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = torch.randn(16, 32), torch.randn(16, 32)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), ref)


def test_vae_loss_floors_the_kl_at_free_bits():
    x = torch.rand(4, 3, 64, 64)
    mu, logvar = torch.zeros(4, 32), torch.zeros(4, 32)  # KL = 0 < 0.5 * 32
    _, rec, kl = vae_loss(x, x.clone(), mu, logvar, kl_tolerance=0.5)
    assert rec.item() == 0 and kl.item() == pytest.approx(16.0)
    mu = torch.full((4, 32), 3.0)                         # KL = 32 * 4.5 = 144 > 16
    _, _, kl = vae_loss(x, x, mu, logvar, kl_tolerance=0.5)
    assert kl.item() == pytest.approx(144.0)


def test_mdn_nll_matches_torch_distributions():
    B, T, Z, K = 3, 5, 4, 5
    logits, mu, logstd = torch.randn(B, T, Z, K), torch.randn(B, T, Z, K), 0.5 * torch.randn(B, T, Z, K)
    target = torch.randn(B, T, Z)
    mixture = MixtureSameFamily(Categorical(logits=logits), Normal(mu, logstd.exp()))
    ref = -Independent(mixture, 1).log_prob(target).mean() / Z  # nats per z dim
    torch.testing.assert_close(mdn_nll(logits, mu, logstd, target), ref)


def test_mdn_output_layout_is_per_dimension_logits_means_logstds():
    m = MDNRNN(z_size=2, action_size=1, hidden=8, mixtures=3)
    y = torch.arange(2 * 9, dtype=torch.float32)
    logits, mu, logstd, done = m.mixture_params(y)
    assert done is None
    assert logits.tolist() == [[0, 1, 2], [9, 10, 11]]
    assert mu.tolist() == [[3, 4, 5], [12, 13, 14]]
    assert logstd.tolist() == [[6, 7, 8], [15, 16, 17]]


def test_temperature_scales_mixture_weights_and_noise():
    n = 200_000
    logits = torch.log(torch.tensor([0.8, 0.2])).expand(n, 1, 2)
    mu = torch.tensor([-5.0, 5.0]).expand(n, 1, 2)
    logstd = torch.zeros(n, 1, 2)
    for tau in (0.5, 1.0, 1.5):
        z = sample_mixture(logits, mu, logstd, tau)[:, 0]
        w = torch.softmax(torch.log(torch.tensor([0.8, 0.2])) / tau, 0)
        assert (z > 0).float().mean().item() == pytest.approx(w[1].item(), abs=0.01)
        assert z[z < 0].std().item() == pytest.approx(math.sqrt(tau), rel=0.02)


def test_lstm_cell_steps_like_the_lstm():
    m = MDNRNN().eval()
    x = torch.randn(2, 7, 35)
    _, (h, c) = m.lstm(x)
    cell, state = m.cell(), (torch.zeros(2, 256), torch.zeros(2, 256))
    for t in range(7):
        state = cell(x[:, t], state)
    torch.testing.assert_close(state[0], h[0])
    torch.testing.assert_close(state[1], c[0])


def test_frozen_forget_bias_is_not_trained():
    m = MDNRNN(z_size=4, action_size=1, hidden=8, mixtures=2)
    assert not m.lstm.bias_hh_l0.requires_grad
    assert m.lstm.bias_hh_l0.view(4, 8)[1].eq(1).all() and m.lstm.bias_hh_l0.view(4, 8)[[0, 2, 3]].eq(0).all()


def test_imagine_returns_a_trajectory_of_latents():
    m = MDNRNN(z_size=4, action_size=2, hidden=8, mixtures=2)
    z = imagine(m, torch.zeros(4), torch.zeros(6, 2), tau=1.0)
    assert z.shape == (7, 4) and torch.equal(z[0], torch.zeros(4))
    with pytest.raises(ValueError, match="tau"):
        imagine(m, torch.zeros(4), torch.zeros(1, 2), tau=0.0)


def test_controller_flat_parameters_round_trip():
    c = LinearController(10, 3)
    flat = torch.randn(c.n_params).double().numpy()
    assert (c.set_flat(flat).get_flat() == flat.astype("float32")).all()
    with pytest.raises(ValueError, match="expected 33"):
        c.set_flat(flat[:-1])
