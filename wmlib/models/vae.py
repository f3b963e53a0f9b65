"""V: the convolutional VAE of World Models (Ha & Schmidhuber 2018, appendix A.1)."""
import torch
from torch import nn


class ConvVAE(nn.Module):
    """64x64x3 frame in [0, 1] <-> z (z_size). 4,348,547 parameters at z_size = 32."""

    def __init__(self, z_size: int = 32):
        super().__init__()
        self.z_size = z_size
        self.encoder = nn.Sequential(  # 64 -> 31 -> 14 -> 6 -> 2
            nn.Conv2d(3, 32, 4, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 128, 4, stride=2), nn.ReLU(),
            nn.Conv2d(128, 256, 4, stride=2), nn.ReLU(),
            nn.Flatten(),
        )
        self.mu = nn.Linear(1024, z_size)
        self.logvar = nn.Linear(1024, z_size)
        self.decoder_in = nn.Linear(z_size, 1024)
        self.decoder = nn.Sequential(  # 1 -> 5 -> 13 -> 30 -> 64
            nn.ConvTranspose2d(1024, 128, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 6, stride=2), nn.Sigmoid(),
        )

    def encode(self, x):
        """x: (B, 3, 64, 64) in [0, 1] -> mu, logvar: (B, z_size)."""
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        """z: (B, z_size) -> (B, 3, 64, 64) in [0, 1]."""
        return self.decoder(self.decoder_in(z).view(-1, 1024, 1, 1))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decode(z), mu, logvar


def frames_to_tensor(frames) -> torch.Tensor:
    """uint8 frames (..., 64, 64, 3) -> float (..., 3, 64, 64) in [0, 1], contiguous: on the channels-last strides a
    bare movedim leaves, the CPU convolutions run 3-4x slower (one frame: 5.6 ms against 1.9 ms)."""
    x = torch.as_tensor(frames)
    return x.movedim(-1, -3).contiguous().float().div_(255.0)


def gaussian_kl(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the last dim (nats)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)


def vae_loss(x, recon, mu, logvar, kl_tolerance: float = 0.5):
    """Paper loss: per-image summed squared error + KL floored at kl_tolerance * z_size; batch means."""
    rec = (recon - x).pow(2).flatten(1).sum(1).mean()
    kl = gaussian_kl(mu, logvar).clamp(min=kl_tolerance * mu.shape[-1]).mean()
    return rec + kl, rec, kl
