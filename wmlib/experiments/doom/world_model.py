"""Steps 7-8: every frame encoded by V (the VAE, z = 64, trained by wmlib.experiments.world_models); M (the MDN-RNN
with a done head): train, save, load, dream.

M learns from every episode laid end to end in one stream, a restart flag marking each episode's first frame. Input
[z_t, action_t, restart_t]; targets z_{t+1} within an episode (never across an episode's end, capped or not) and the
done flag. Where this departs from the authors' doomrnn.py is a switch in `mdnrnn` (see params.py): the action input
(quantised move or continuous action), the LSTM state at a restart flag (kept or zeroed), the windows (random, each
from a zero state, or the authors' consecutive stream, the state carried on), and the done target (deaths only, or
every episode end).
"""
import hashlib
import inspect
import sys
import time

import numpy as np
import pandas as pd
import torch
from filelock import FileLock
from tqdm.auto import tqdm

from ... import training
from ...data import rollouts as rollouts_module
from ...data.rollouts import INDEX, RolloutStore
from ...envs import takecover
from ...envs.takecover import ACTION_TO_MOVE, HeldRandomPolicy
from ...io import atomic_path, load_json, load_torch, save_csv, save_json, save_torch
from ...models import vae as vae_module
from ...models.dream import BatchedDream, done_loss, quantize_action
from ...models.mdnrnn import MDNRNN, mdn_nll
from ...models.vae import ConvVAE
from ...training import CHECKPOINT_SECONDS, _Clock, _resume, _save
from ..world_models import load_vae
from . import Run

LATENTS = "latents.npz"  # encode_rollouts' arrays, beside the rollouts; see load_latents


def held_actions(seed: int, hold, moves: np.ndarray) -> np.ndarray:
    """The continuous actions (T,) the random data policy drew in the episode of `seed`, replayed from its seed
    (the rollouts store only the TakeCover actions); checked against the stored moves (T,)."""
    policy = HeldRandomPolicy(np.random.default_rng(seed), hold)
    values = np.empty(len(moves))
    for t in range(len(moves)):
        policy(None)
        values[t] = policy.value
    if not np.array_equal((values > 1 / 3).astype(np.float32) - (values < -1 / 3), moves):
        raise ValueError(f"episode {seed}: replaying the random policy does not give its stored actions")
    return values.astype(np.float32)


def encode_rollouts(run: Run, vae: ConvVAE) -> dict:
    """Every kept episode encoded and laid end to end: mu, logvar (N, z), move (N,) in {-1, 0, 1}, action (N,)
    the continuous action in [-1, 1] (= move where the rollouts' policy cannot be replayed), restart (N,) 1 on
    each first frame, done (N,) 1 on a frame where the agent died, all float32. About 30 minutes on one core at
    `default` (1.6 million frames): M's stages call load_latents, which encodes once for all of them."""
    store = RolloutStore(run.data / "rollouts")
    meta = load_json(store.root / INDEX)["meta"]
    parts = {k: [] for k in ("mu", "logvar", "move", "action", "restart", "done")}
    for ep in store:
        T = len(ep)
        mu, logvar = training.encode_frames(vae, ep.frames)
        move = ACTION_TO_MOVE[ep.actions.astype(int)]
        action = held_actions(ep.seed, meta["hold"], move) if meta.get("policy") == "held_uniform" else move
        restart, done = np.zeros(T, np.float32), np.zeros(T, np.float32)
        restart[0] = 1
        done[-1] = float(T < meta["max_steps"])  # the agent died; an episode that reached the cap was cut
        for k, v in zip(parts, (mu, logvar, move, action, restart, done)):
            parts[k].append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def encoding_digest(run: Run) -> str:
    """sha256 of everything encode_rollouts' output depends on: V's weights (vae.pt), the rollouts (their
    index.json, which holds every episode file's sha256, checked on each load), and the code that reads and
    encodes them (this module, wmlib.training, the VAE, TakeCover's actions, the rollout store)."""
    h = hashlib.sha256((run.data / "vae.pt").read_bytes())
    h.update((run.data / "rollouts" / INDEX).read_bytes())
    for module in (sys.modules[__name__], training, vae_module, takecover, rollouts_module):
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()


def load_latents(run: Run) -> dict:
    """encode_rollouts(run, V) of the run's rollouts and vae.pt, encoded once and then read back: kept in
    latents.npz beside the rollouts (the main run's folder, shared by the ablation's variants) with
    `encoding_digest`, and encoded again whenever the digest differs, so a stale file is never read. It is a
    memo, not a DVC output: the stages that read it depend on the rollouts, vae.pt and this code, exactly what
    the digest covers, so their results are the same with or without it, and a lost file costs one encoding
    (never a stale stage). Concurrent callers (the ablation's stages, two at a time) wait for one encoding."""
    path = (run.data / "rollouts").resolve().parent / LATENTS
    digest = encoding_digest(run)
    with FileLock(f"{path}.lock"):
        if path.exists():
            with np.load(path) as stored:
                if "digest" in stored.files and str(stored["digest"]) == digest:
                    return {k: stored[k] for k in stored.files if k != "digest"}
        lat = encode_rollouts(run, load_vae(run))
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, digest=np.array(digest), **lat)
    return lat


def episode_ends(restart: np.ndarray) -> np.ndarray:
    """1 on each episode's last frame of the stream (the frame before a restart flag, and the stream's last)."""
    return np.append(restart[1:], 1).astype(np.float32)


def make_mdnrnn(z_size: int, hidden: int, mixtures: int) -> MDNRNN:
    """Doom's M: input [z, move, restart flag], output 5 Gaussians per z dim + a done logit."""
    return MDNRNN(z_size, action_size=1, hidden=hidden, mixtures=mixtures, extra_inputs=1, done_head=True)


def run_m(model: MDNRNN, x, restart=None, state=None):
    """M over windows x (B, L, z + 2) from LSTM state (h, c), each (B, hidden) (zero if None). With `restart`
    (B, L), the state is zeroed before each step whose flag is 1, as a dream starts an episode.
    Returns ((logits, mu, logstd, done_logit), final (h, c))."""
    B, L, _ = x.shape
    if state is None:
        state = (x.new_zeros(B, model.hidden),) * 2
    if restart is None or not restart.any():
        out, (h, c) = model.lstm(x, tuple(s[None] for s in state))
        return model.mixture_params(model.head(out)), (h[0], c[0])
    cell, (h, c), out = model.cell(), state, []
    for t in range(L):
        keep = 1 - restart[:, t, None]
        h, c = cell(x[:, t], (h * keep, c * keep))
        out.append(h)
    return model.mixture_params(model.head(torch.stack(out, 1))), (h, c)


def window_loss(model: MDNRNN, z, action, restart, end, died, p, state=None):
    """Teacher-forced loss on windows of the stream, each L + 1 frames: z (B, L + 1, z); action, restart, end
    (episode ends), died (B, L + 1). Returns (MDN nll over the transitions within an episode, done loss against
    `p.done_target`, final LSTM state)."""
    x = torch.cat([z[:, :-1], action[:, :-1, None], restart[:, :-1, None]], -1)
    (logits, mu, logstd, done_logit), state = run_m(model, x, restart[:, :-1] if p.reset_state else None, state)
    same = end[:, :-1] == 0  # frame t + 1 follows frame t in its episode
    nll = mdn_nll(logits[same], mu[same], logstd[same], z[:, 1:][same])
    target = (end if p.done_target == "episode_ends" else died)[:, :-1]
    return nll, done_loss(done_logit, target, p.done_weight), state


def stream_rows(restart: np.ndarray, rows: int, seed: int, epoch: int) -> np.ndarray:
    """The authors' layout for one epoch: the episodes shuffled, laid end to end and cut into `rows` rows of
    frame indices (rows, N // rows); the last N % rows frames of the shuffled stream are left out."""
    starts = np.flatnonzero(restart)
    bounds = np.append(starts, len(restart))
    order = np.random.default_rng([seed, epoch]).permutation(len(starts))
    idx = np.concatenate([np.arange(bounds[e], bounds[e + 1]) for e in order])
    return idx[:len(idx) // rows * rows].reshape(rows, -1)


class WindowSampler:
    """Frame indices (B, L + 1) of M's training batch at `step`: `random` windows from anywhere in the stream,
    or the `stream` layout's consecutive windows (sharing a frame, so every transition is trained), which
    `carries` says continue the last batch's rows (the LSTM state carried on)."""

    def __init__(self, restart: np.ndarray, p, seed: int):
        self.restart, self.p, self.seed, self.N = restart, p, seed, len(restart)
        L, B = p.seq_len, p.batch_size
        if self.N <= L + 1:
            raise ValueError(f"mdnrnn.seq_len={L}: the episode stream has only {self.N} frames")
        if p.windows == "stream":
            self.per_epoch, self.epoch = (self.N // B - 1) // L, None
            if self.per_epoch == 0:
                raise ValueError(f"mdnrnn.windows=stream: {self.N} frames in {B} rows (mdnrnn.batch_size) are "
                                 f"shorter than mdnrnn.seq_len + 1 = {L + 1} frames")

    def __call__(self, step: int) -> np.ndarray:
        L, B = self.p.seq_len, self.p.batch_size
        if self.p.windows == "random":
            start = np.random.default_rng([self.seed, step]).integers(0, self.N - L - 1, B)
            return start[:, None] + np.arange(L + 1)
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self.epoch:
            self.rows, self.epoch = stream_rows(self.restart, B, self.seed, epoch), epoch
        return self.rows[:, k * L:(k + 1) * L + 1]

    def carries(self, step: int) -> bool:
        return self.p.windows == "stream" and step % self.per_epoch != 0


def train_mdnrnn(run: Run, lat: dict, progress: bool = True) -> tuple[MDNRNN, list[dict]]:
    """On `lat` (encode_rollouts', read by load_latents): teacher-forced on windows of the episode stream
    (`mdnrnn.windows`), z re-sampled from (mu, logvar) each batch, on the run's device (windows and noise drawn on
    the CPU, the same on every device). Checkpoints about once a minute and resumes (with the carried LSTM state).
    Returns (M, history of {step, nll, done_loss, lr})."""
    p, seed, device = run.params.mdnrnn, run.params.seed, run.device
    N = len(lat["mu"])
    sampler = WindowSampler(lat["restart"], p, seed)
    ckpt, state_file = run.data / "mdnrnn.ckpt", run.data / "mdnrnn.state.pt"
    config = {**p.model_dump(), "frames": N, "seed": seed}
    torch.manual_seed(seed)
    model = make_mdnrnn(lat["mu"].shape[-1], p.hidden, p.mixtures).to(device)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=p.lr)
    step, history = _resume(ckpt, config, model, opt)
    carried = load_torch(state_file) if step and state_file.exists() else {}
    state = tuple(s.to(device) for s in carried["state"]) if carried.get("step") == step else None
    mu, logvar = (torch.as_tensor(lat[k], device=device) for k in ("mu", "logvar"))
    action = torch.as_tensor(lat["action" if p.action_input == "continuous" else "move"], device=device)
    restart, died = (torch.as_tensor(lat[k], device=device) for k in ("restart", "done"))
    end = torch.as_tensor(episode_ends(lat["restart"]), device=device)
    bar = tqdm(total=p.steps, initial=step, desc="M (MDN-RNN) steps", disable=not progress, mininterval=10)
    clock, saved, window = _Clock(history), time.monotonic(), []
    while step < p.steps:
        lr = p.lr_min + (p.lr - p.lr_min) * p.lr_decay ** step
        for group in opt.param_groups:
            group["lr"] = lr
        t = torch.as_tensor(sampler(step), device=device)
        z = mu[t] + (0.5 * logvar[t]).exp() * torch.randn(t.shape + (mu.shape[-1],)).to(device)
        nll, d_loss, state = window_loss(model, z, action[t], restart[t], end[t], died[t], p,
                                         state if sampler.carries(step) else None)
        state = tuple(s.detach() for s in state)
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
            save_torch({"step": step, "state": [s.cpu() for s in state]}, state_file)
            _save(ckpt, config, model, opt, step, history)
            saved = time.monotonic()
        bar.update(1)
    bar.close()
    model.eval()
    first = lat["restart"] == 1
    save_torch({"z_size": model.z_size, "hidden": p.hidden, "mixtures": p.mixtures, "model": model.state_dict(),
                "action_input": p.action_input, "initial_mu": lat["mu"][first],
                "initial_logvar": lat["logvar"][first]}, run.data / "mdnrnn.pt")
    ckpt.unlink(missing_ok=True)
    state_file.unlink(missing_ok=True)
    save_csv(pd.DataFrame(history), run.results / "mdnrnn_history.csv")
    last = history[-1]
    save_json({"steps": last["step"], "nll": last["nll"], "done_loss": last["done_loss"], "seconds": last["seconds"],
               "sequence_steps_per_second": last["step"] * p.batch_size * p.seq_len / last["seconds"]},
              run.results / "mdnrnn.json")
    return model, history


def load_mdnrnn(run: Run, device=None) -> tuple[MDNRNN, dict]:
    """M on `device` (default: the run's), the stored first frames dreams start from and M's action input:
    (model, {"initial_mu", "initial_logvar" (numpy), "action_input" ("move" or "continuous")})."""
    ckpt = load_torch(run.data / "mdnrnn.pt")
    model = make_mdnrnn(ckpt["z_size"], ckpt["hidden"], ckpt["mixtures"]).to(device or run.device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), {"initial_mu": ckpt["initial_mu"], "initial_logvar": ckpt["initial_logvar"],
                          "action_input": ckpt.get("action_input", "move")}


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
