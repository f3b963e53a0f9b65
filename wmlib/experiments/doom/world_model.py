"""Steps 7-8: V (the VAE, z = 64) and M (the MDN-RNN with a done head): train, save, load, dream.

M is trained as the authors' doomrnn code does: every episode laid end to end in one stream, a
restart flag marking each episode's first frame, windows of `seq_len` steps cut from anywhere in
it. Input [z_t, move_t, restart_t]; targets z_{t+1} (except across an episode boundary) and
done_t = 1 on an episode's last frame when the agent died (not when the frame cap cut it).
"""
import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ... import training
from ...data.rollouts import INDEX, RolloutStore
from ...envs.takecover import ACTION_TO_MOVE
from ...io import atomic_path, load_json, load_torch, save_csv, save_json, save_torch
from ...models.dream import BatchedDream, done_loss, quantize_action
from ...models.mdnrnn import MDNRNN, mdn_nll
from ...models.vae import ConvVAE
from ...training import CHECKPOINT_SECONDS, _Clock, _resume, _save
from . import Run


def encode_rollouts(run: Run, vae: ConvVAE) -> dict:
    """Every kept episode encoded and laid end to end: mu, logvar (N, z), move (N,), restart (N,),
    done (N,), all float32; saved to data/<scale>/doom/latents.npz."""
    store = RolloutStore(run.data / "rollouts")
    cap = load_json(store.root / INDEX)["meta"]["max_steps"]
    parts = {k: [] for k in ("mu", "logvar", "move", "restart", "done")}
    for ep in store:
        T = len(ep)
        mu, logvar = training.encode_frames(vae, ep.frames)
        restart, done = np.zeros(T, np.float32), np.zeros(T, np.float32)
        restart[0] = 1
        done[-1] = float(T < cap)  # the agent died; an episode that reached the cap was cut, not ended
        for k, v in zip(parts, (mu, logvar, ACTION_TO_MOVE[ep.actions.astype(int)], restart, done)):
            parts[k].append(v)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    with atomic_path(run.data / "latents.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **out)
    return out


def load_latents(run: Run) -> dict:
    with np.load(run.data / "latents.npz") as f:
        return dict(f)


def make_mdnrnn(z_size: int, hidden: int, mixtures: int) -> MDNRNN:
    """Doom's M: input [z, move, restart flag], output 5 Gaussians per z dim + a done logit."""
    return MDNRNN(z_size, action_size=1, hidden=hidden, mixtures=mixtures, extra_inputs=1, done_head=True)


def train_mdnrnn(run: Run, progress: bool = True) -> tuple[MDNRNN, list[dict]]:
    """Teacher-forced on windows of the episode stream, z re-sampled from (mu, logvar) each batch, on the run's
    device (windows and noise drawn on the CPU, the same on every device). Checkpoints about once a minute and
    resumes. Returns (M, history of {step, nll, done_loss, lr})."""
    p, seed, device = run.params.mdnrnn, run.params.seed, run.device
    lat = load_latents(run)
    N = len(lat["mu"])
    if N <= p.seq_len + 1:
        raise ValueError(f"mdnrnn.seq_len={p.seq_len}: the episode stream has only {N} frames")
    ckpt = run.data / "mdnrnn.ckpt"
    config = {**p.model_dump(), "frames": N, "seed": seed}
    torch.manual_seed(seed)
    model = make_mdnrnn(lat["mu"].shape[-1], p.hidden, p.mixtures).to(device)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=p.lr)
    step, history = _resume(ckpt, config, model, opt)
    rng = np.random.default_rng([seed, step])
    mu, logvar, done = (torch.as_tensor(lat[k], device=device) for k in ("mu", "logvar", "done"))
    extra = torch.as_tensor(np.stack([lat["move"], lat["restart"]], -1), device=device)
    bar = tqdm(total=p.steps, initial=step, desc="M (MDN-RNN) steps", disable=not progress, mininterval=10)
    clock, saved, window = _Clock(history), time.monotonic(), []
    while step < p.steps:
        lr = p.lr_min + (p.lr - p.lr_min) * p.lr_decay ** step
        for group in opt.param_groups:
            group["lr"] = lr
        t = torch.as_tensor(rng.integers(0, N - p.seq_len - 1, p.batch_size)[:, None] + np.arange(p.seq_len + 1),
                            device=device)
        z = mu[t] + (0.5 * logvar[t]).exp() * torch.randn(t.shape + (mu.shape[-1],)).to(device)
        (logits, means, logstd, done_logit), _ = model(torch.cat([z[:, :-1], extra[t[:, :-1]]], -1))
        target_done = done[t[:, :-1]]
        same_episode = target_done == 0  # the next frame belongs to the same episode
        nll = mdn_nll(logits[same_episode], means[same_episode], logstd[same_episode], z[:, 1:][same_episode])
        d_loss = done_loss(done_logit, target_done, p.done_weight)
        opt.zero_grad()
        (nll + d_loss).backward()
        torch.nn.utils.clip_grad_value_(model.trainable_parameters(), p.grad_clip)
        opt.step()
        step += 1
        window.append((nll.item(), d_loss.item()))
        if step % 10 == 0 or step == p.steps:
            m = np.mean(window, 0)
            history.append({"step": step, "nll": float(m[0]), "done_loss": float(m[1]), "lr": lr, "seconds": clock()})
            window = []
            bar.set_postfix(nll=f"{m[0]:.3f}", done=f"{m[1]:.3f}")
        if step == p.steps or time.monotonic() - saved > CHECKPOINT_SECONDS:
            _save(ckpt, config, model, opt, step, history)
            saved = time.monotonic()
        bar.update(1)
    bar.close()
    model.eval()
    first = lat["restart"] == 1
    save_torch({"z_size": model.z_size, "hidden": p.hidden, "mixtures": p.mixtures, "model": model.state_dict(),
                "initial_mu": lat["mu"][first], "initial_logvar": lat["logvar"][first]}, run.data / "mdnrnn.pt")
    ckpt.unlink(missing_ok=True)
    save_csv(pd.DataFrame(history), run.results / "mdnrnn_history.csv")
    last = history[-1]
    save_json({"steps": last["step"], "nll": last["nll"], "done_loss": last["done_loss"], "seconds": last["seconds"],
               "sequence_steps_per_second": last["step"] * p.batch_size * p.seq_len / last["seconds"]},
              run.results / "mdnrnn.json")
    return model, history


def load_mdnrnn(run: Run, device=None) -> tuple[MDNRNN, dict]:
    """M on `device` (default: the run's) and the stored first frames dreams start from:
    (model, {"initial_mu", "initial_logvar"}), those numpy."""
    ckpt = load_torch(run.data / "mdnrnn.pt")
    model = make_mdnrnn(ckpt["z_size"], ckpt["hidden"], ckpt["mixtures"]).to(device or run.device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), {"initial_mu": ckpt["initial_mu"], "initial_logvar": ckpt["initial_logvar"]}


@torch.inference_mode()
def dream_frames(vae: ConvVAE, mdnrnn: MDNRNN, initial: dict, tau: float, steps: int, seed: int = 0,
                 move: float = 0.0) -> np.ndarray:
    """One dream at temperature tau, the agent holding `move`, decoded by V (V and M on one device):
    uint8 (T, 64, 64, 3) numpy, T <= steps + 1 (the dream ends early if M predicts death)."""
    torch.manual_seed(seed)
    dream = BatchedDream(mdnrnn, initial["initial_mu"], initial["initial_logvar"], tau, steps)
    dream.reset(1)
    zs = [dream.z]
    for _ in range(steps):
        _, _, done = dream.step(quantize_action(torch.tensor([move], device=dream.device)))
        zs.append(dream.z)
        if done[0]:
            break
    return (vae.decode(torch.cat(zs)).movedim(1, -1) * 255).round().byte().cpu().numpy()
