"""Training loops for V and M. Both checkpoint atomically about once a minute and resume from
their checkpoint when called again with the same configuration."""
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .device import autocast, resolve_device
from .io import load_torch, save_torch
from .models.mdnrnn import MDNRNN, mdn_nll
from .models.vae import ConvVAE, frames_to_tensor, vae_loss

CHECKPOINT_SECONDS = 60


def train_vae(frames: np.ndarray, p, checkpoint, seed: int, progress: bool = True, device="cpu"):
    """frames: uint8 (N, 64, 64, 3), kept on the CPU; each batch goes to `device` as uint8 and is scaled there.
    Forward and loss run under bf16 autocast when `p.bf16`. Returns (ConvVAE on `device`, history of
    {step, loss, rec, kl})."""
    config = {**p.model_dump(), "frames": len(frames), "seed": seed}
    device = resolve_device(device)
    torch.manual_seed(seed)
    vae = ConvVAE(p.z_size).to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=p.lr)
    steps_per_epoch = len(frames) // p.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"vae.batch_size={p.batch_size} exceeds the {len(frames)} training frames")
    total = p.epochs * steps_per_epoch
    step, history = _resume(checkpoint, config, vae, opt)
    bar = tqdm(total=total, initial=step, desc="V (VAE) steps", disable=not progress, mininterval=10)
    clock = _Clock(history)
    saved, window = time.monotonic(), []
    while step < total:
        epoch, i = divmod(step, steps_per_epoch)
        perm = torch.randperm(len(frames), generator=torch.Generator().manual_seed(seed + epoch))
        batch = frames[np.sort(perm[i * p.batch_size:(i + 1) * p.batch_size].numpy())]
        x = frames_to_tensor(_to_device(torch.from_numpy(batch), device))
        with autocast(device, getattr(p, "bf16", False)):
            recon, mu, logvar = vae(x)
            loss, rec, kl = vae_loss(x, recon, mu, logvar, p.kl_tolerance)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        window.append((loss.item(), rec.item(), kl.item()))
        if step % 50 == 0 or step == total:
            history.append({"step": step, **dict(zip(("loss", "rec", "kl"), np.mean(window, 0).tolist())),
                            "seconds": clock()})
            window = []
            bar.set_postfix(loss=f"{history[-1]['loss']:.1f}")
        if step == total or time.monotonic() - saved > CHECKPOINT_SECONDS:
            _save(checkpoint, config, vae, opt, step, history)
            saved = time.monotonic()
        bar.update(1)
    bar.close()
    return vae.eval(), history


@torch.inference_mode()
def encode_frames(vae: ConvVAE, frames: np.ndarray, batch: int = 1000):
    """uint8 (T, 64, 64, 3) -> mu, logvar float32 (T, z), numpy; encoded on V's device."""
    device = next(vae.parameters()).device
    out = [vae.encode(frames_to_tensor(_to_device(torch.as_tensor(frames[i:i + batch]), device)))
           for i in range(0, len(frames), batch)]
    return (torch.cat([m for m, _ in out]).cpu().numpy(), torch.cat([lv for _, lv in out]).cpu().numpy())


def train_mdnrnn(mu: np.ndarray, logvar: np.ndarray, actions: np.ndarray, lengths: np.ndarray, p,
                 checkpoint, seed: int, progress: bool = True, device="cpu"):
    """Teacher-forced M on windows of `p.seq_len` steps, z re-sampled from (mu, logvar) each batch.

    mu, logvar: (E, T, z); actions: (E, T, A); lengths: (E,) valid steps per episode. Windows and noise are drawn
    on the CPU (the same on every device); the latents, batches and M live on `device`.
    Predicts z[t+1] from (z[t], a[t]). Returns (MDNRNN on `device`, history of {step, nll}).
    """
    eligible = np.flatnonzero(lengths > p.seq_len)
    if len(eligible) == 0:
        raise ValueError(f"mdnrnn.seq_len={p.seq_len}: no episode has more than {p.seq_len} steps "
                         f"(longest: {lengths.max()})")
    config = {**p.model_dump(), "episodes": len(lengths), "seed": seed}
    device = resolve_device(device)
    torch.manual_seed(seed)
    model = MDNRNN(mu.shape[-1], actions.shape[-1], p.hidden, p.mixtures).to(device)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=p.lr)
    step, history = _resume(checkpoint, config, model, opt)
    rng = np.random.default_rng([seed, step])
    mu, logvar, actions = (torch.as_tensor(x, device=device) for x in (mu, logvar, actions))
    bar = tqdm(total=p.steps, initial=step, desc="M (MDN-RNN) steps", disable=not progress, mininterval=10)
    clock = _Clock(history)
    saved, window = time.monotonic(), []
    while step < p.steps:
        ep = rng.choice(eligible, p.batch_size)
        start = rng.integers(0, lengths[ep] - p.seq_len)
        ep, t = (torch.as_tensor(x, device=device) for x in (ep[:, None], start[:, None] + np.arange(p.seq_len + 1)))
        m, lv = mu[ep, t], logvar[ep, t]
        z = m + (0.5 * lv).exp() * torch.randn(m.shape).to(device)
        a = actions[ep, t[:, :-1]]
        (logits, means, logstd, _), _ = model(torch.cat([z[:, :-1], a], -1))
        loss = mdn_nll(logits, means, logstd, z[:, 1:])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.trainable_parameters(), p.grad_clip)
        opt.step()
        step += 1
        window.append(loss.item())
        if step % 10 == 0 or step == p.steps:
            history.append({"step": step, "nll": float(np.mean(window)), "seconds": clock()})
            window = []
            bar.set_postfix(nll=f"{history[-1]['nll']:.3f}")
        if step == p.steps or time.monotonic() - saved > CHECKPOINT_SECONDS:
            _save(checkpoint, config, model, opt, step, history)
            saved = time.monotonic()
        bar.update(1)
    bar.close()
    return model.eval(), history


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch (B, ...) to `device`: through pinned memory, asynchronously, when that is a GPU."""
    return x.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else x


class _Clock:
    """Training seconds so far, counting those of the runs a checkpoint was resumed from."""

    def __init__(self, history):
        self.before, self.start = (history[-1]["seconds"] if history else 0.0), time.monotonic()

    def __call__(self) -> float:
        return self.before + time.monotonic() - self.start


def _save(path, config, model, opt, step, history):
    """The training state, with the RNG streams (z's noise), so that a resumed run continues exactly."""
    rng = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda_rng"] = torch.cuda.get_rng_state_all()
    save_torch({"config": config, "model": model.state_dict(), "opt": opt.state_dict(),
                "step": step, "history": history, **rng}, path)


def _resume(path, config, model, opt):
    """Load a matching checkpoint into model/opt and the RNGs; returns (step, history), (0, []) if none."""
    path = Path(path)
    if not path.exists():
        return 0, []
    ckpt = load_torch(path)
    if ckpt["config"] != config or "rng" not in ckpt:
        print(f"{path}: written for another configuration (or by an older wmlib), starting over")
        return 0, []
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["opt"])
    torch.set_rng_state(ckpt["rng"])
    if "cuda_rng" in ckpt and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    print(f"{path}: resuming at step {ckpt['step']}")
    return ckpt["step"], ckpt["history"]
