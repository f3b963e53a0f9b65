"""The World Models steps CarRacing and TakeCover share: V trained on a stage's rollouts, saved and loaded (steps 2
and 7), and the compute each stage used."""
import pandas as pd
import torch

from .. import training
from ..data.rollouts import RolloutStore, load_frames
from ..io import load_json, load_torch, save_csv, save_json, save_torch
from ..models.vae import ConvVAE
from . import Run


def train_vae(run: Run) -> tuple[ConvVAE, list[dict]]:
    """V on every `vae.frame_stride`-th stored frame, resumable; saves data/.../vae.pt, vae_history.csv and vae.json.
    Its checkpoint (vae.ckpt) stays: a rerun finds V trained and only loads it, so a stage killed after this (Doom's
    encoding) does not train V again. Returns (V, history)."""
    p = run.params.vae
    frames = load_frames(RolloutStore(run.data / "rollouts"), p.frame_stride)
    vae, history = training.train_vae(frames, p, run.data / "vae.ckpt", run.params.seed, device=run.device)
    save_torch({"z_size": p.z_size, "model": vae.state_dict()}, run.data / "vae.pt")
    save_csv(pd.DataFrame(history), run.results / "vae_history.csv")
    last = history[-1]
    save_json({"frames": len(frames), "epochs": p.epochs, "steps": last["step"], "loss": last["loss"],
               "reconstruction": last["rec"], "kl": last["kl"], "seconds": last["seconds"],
               "images_per_second": last["step"] * p.batch_size / last["seconds"]}, run.results / "vae.json")
    return vae, history


def load_vae(run: Run, device=None) -> ConvVAE:
    """The trained V in eval mode, on `device` (default: the run's)."""
    ckpt = load_torch(run.data / "vae.pt")
    vae = ConvVAE(ckpt["z_size"])
    vae.load_state_dict(ckpt["model"])
    return vae.to(device or run.device).eval()


def compute_used(run: Run, controllers: dict[str, str]) -> dict:
    """Core-hours per stage, from the times each stage recorded: rollouts (process time), V and M (wall time x
    torch threads) and each CMA-ES run (wall time x workers; `controllers`: name -> its controller.json,
    relative to the results folder). Saved to results/.../compute.json."""
    w, threads = run.params.parallel.workers, torch.get_num_threads()
    hours = {
        "rollouts": load_json(run.results / "rollouts.json")["core_seconds"] / 3600,
        "vae": load_json(run.results / "vae.json")["seconds"] * threads / 3600,
        "mdnrnn": load_json(run.results / "mdnrnn.json")["seconds"] * threads / 3600,
        **{name: load_json(run.results / path)["seconds"] * w / 3600 for name, path in controllers.items()},
    }
    save_json({"core_hours": hours, "total_core_hours": sum(hours.values())}, run.results / "compute.json")
    return hours
