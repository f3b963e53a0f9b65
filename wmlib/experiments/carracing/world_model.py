"""Step 3: every frame encoded by V (trained in wmlib.experiments.world_models), and M (the MDN-RNN): train, save,
load, dream. The latents live in memory only (about a minute to compute at `default`): M's stage reads the rollouts
and vae.pt, both reproducible or kept in git, so losing the DVC cache never makes M's stage stale."""
import numpy as np
import pandas as pd
import torch

from ... import training
from ...data.rollouts import RolloutStore
from ...envs.carracing import CARRACING_ACTION_SIZE
from ...io import load_torch, save_csv, save_json, save_torch
from ...models.mdnrnn import MDNRNN, imagine
from ...models.vae import ConvVAE
from . import Run


def encode_rollouts(run: Run, vae: ConvVAE) -> dict:
    """Every stored frame encoded: mu, logvar (E, T, z), actions (E, T, A), lengths (E,), padded."""
    store = RolloutStore(run.data / "rollouts")
    lengths = np.array([e["steps"] for e in store.index])
    E, T, z = len(lengths), lengths.max(), vae.z_size
    out = {"mu": np.zeros((E, T, z), np.float32), "logvar": np.zeros((E, T, z), np.float32),
           "actions": np.zeros((E, T, CARRACING_ACTION_SIZE), np.float32), "lengths": lengths}
    for i, ep in enumerate(store):
        out["mu"][i, :len(ep)], out["logvar"][i, :len(ep)] = training.encode_frames(vae, ep.frames)
        out["actions"][i, :len(ep)] = ep.actions
    return out


# 3. M: the MDN-RNN --------------------------------------------------------------------------

def train_mdnrnn(run: Run, lat: dict) -> tuple[MDNRNN, list[dict]]:
    """M on `lat` (encode_rollouts'), resumable; saves data/.../mdnrnn.pt, mdnrnn_history.csv and mdnrnn.json."""
    p = run.params.mdnrnn
    ckpt = run.data / "mdnrnn.ckpt"
    model, history = training.train_mdnrnn(lat["mu"], lat["logvar"], lat["actions"], lat["lengths"], p,
                                           ckpt, run.params.seed, device=run.device)
    save_torch({"z_size": lat["mu"].shape[-1], "hidden": p.hidden, "mixtures": p.mixtures,
                "model": model.state_dict()}, run.data / "mdnrnn.pt")
    ckpt.unlink(missing_ok=True)
    save_csv(pd.DataFrame(history), run.results / "mdnrnn_history.csv")
    last = history[-1]
    save_json({"steps": last["step"], "nll": last["nll"], "seconds": last["seconds"],
               "sequence_steps_per_second": last["step"] * p.batch_size * p.seq_len / last["seconds"]},
              run.results / "mdnrnn.json")
    return model, history


def load_mdnrnn(run: Run, device=None) -> MDNRNN:
    """The trained M in eval mode, on `device` (default: the run's)."""
    ckpt = load_torch(run.data / "mdnrnn.pt")
    model = MDNRNN(ckpt["z_size"], CARRACING_ACTION_SIZE, ckpt["hidden"], ckpt["mixtures"])
    model.load_state_dict(ckpt["model"])
    return model.to(device or run.device).eval()


@torch.inference_mode()
def dream(vae: ConvVAE, mdnrnn: MDNRNN, latents: dict, taus, episode: int = 0, start: int = 60,
          steps: int = 40) -> dict[str, np.ndarray]:
    """Real frames of one stored episode next to M's dreams from the same first frame and actions,
    decoded by V (V and M on one device): label -> uint8 frames (steps + 1, 64, 64, 3), numpy."""
    length = int(latents["lengths"][episode])
    start = min(start, max(length - steps - 1, 0))
    steps = min(steps, length - start - 1)
    device = next(vae.parameters()).device
    mu = torch.as_tensor(latents["mu"][episode, start:start + steps + 1], device=device)
    actions = torch.as_tensor(latents["actions"][episode, start:start + steps], device=device)
    to_uint8 = lambda z: (vae.decode(z).movedim(1, -1) * 255).round().byte().cpu().numpy()  # noqa: E731
    out = {"real (V's reconstruction)": to_uint8(mu)}
    for tau in taus:
        out[f"dream, tau={tau:g}"] = to_uint8(imagine(mdnrnn, mu[0], actions, tau))
    return out
