from .mdnrnn import MDNRNN, imagine, mdn_nll, sample_mixture
from .vae import ConvVAE, gaussian_kl, vae_loss

__all__ = ["ConvVAE", "MDNRNN", "gaussian_kl", "imagine", "mdn_nll", "sample_mixture", "vae_loss"]
