"""Speed of the CarRacing pieces on this machine -> results/benchmarks/carracing.json.

    python -m wmlib.benchmarks

Measures: the agent's overhead per real step (V encode + M step + C) against the env's own step
time; rollout collection throughput with 1 and 2 workers against the bare env; V and M training
throughput. Run it on an otherwise idle machine.
"""
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch

from .control import LinearController
from .control.agent import WorldModelAgent
from .envs import carracing_action, episode_seeds, make_carracing
from .experiments.carracing.rollouts import _rollout_task
from .io import save_json
from .models import MDNRNN, ConvVAE, mdn_nll, vae_loss
from .parallel import WorkerPool
from .paths import ROOT

OUT = ROOT / "results" / "benchmarks" / "carracing.json"


def agent_overhead(steps: int = 1000) -> dict:
    """Env step and agent step timed separately, one thread, on the same observations."""
    torch.set_num_threads(1)
    env = make_carracing(steps)
    agent = WorldModelAgent(ConvVAE(32), LinearController(32 + 256, 3), carracing_action, MDNRNN())
    obs, _ = env.reset(seed=0)
    env_s = agent_s = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        action = agent(obs)
        t1 = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(action)
        t2 = time.perf_counter()
        agent_s, env_s = agent_s + t1 - t0, env_s + t2 - t1
        if terminated or truncated:
            obs, _ = env.reset(seed=1)
    return {"steps": steps, "env_ms_per_step": 1e3 * env_s / steps, "agent_ms_per_step": 1e3 * agent_s / steps,
            "overhead_fraction": agent_s / env_s}


def bare_env_steps_per_second(steps: int = 1000) -> float:
    env = make_carracing(steps)
    env.reset(seed=0)
    action = np.array([0.0, 0.3, 0.0], np.float32)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    return steps / (time.perf_counter() - start)


def collection_throughput(workers: int, episodes: int = 4, max_steps: int = 500) -> float:
    """Env steps per second collecting `episodes` Brownian episodes to a scratch folder, files included."""
    with tempfile.TemporaryDirectory() as tmp, WorkerPool("local", workers) as pool:
        shared = {"root": tmp, "meta": {"policy": "brownian", "max_steps": max_steps}}
        pool.map(_rollout_task, episode_seeds("rollouts", 1), shared, progress=False)  # warm the workers up
        start = time.perf_counter()
        entries = pool.map(_rollout_task, episode_seeds("rollouts", episodes, offset=1), shared, progress=False)
        return sum(e["steps"] for e in entries) / (time.perf_counter() - start)


def vae_training_throughput(batch: int = 100, steps: int = 10) -> float:
    vae = ConvVAE(32)
    opt = torch.optim.Adam(vae.parameters(), 1e-4)
    x = torch.rand(batch, 3, 64, 64)
    start = None
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        recon, mu, logvar = vae(x)
        loss, _, _ = vae_loss(x, recon, mu, logvar)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - start)


def mdnrnn_training_throughput(batch: int = 32, seq_len: int = 200, steps: int = 10) -> float:
    model = MDNRNN()
    opt = torch.optim.Adam(model.trainable_parameters(), 1e-3)
    x, target = torch.randn(batch, seq_len, 35), torch.randn(batch, seq_len, 32)
    start = None
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        (logits, mu, logstd, _), _ = model(x)
        loss = mdn_nll(logits, mu, logstd, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * seq_len * steps / (time.perf_counter() - start)


def main():
    threads = torch.get_num_threads()
    result = {"machine": {"cpu_count": os.cpu_count(), "torch_threads": threads,
                          "processor": platform.processor() or platform.machine(), "torch": torch.__version__}}
    result["agent_overhead"] = agent_overhead()
    result["bare_env_steps_per_second"] = bare_env_steps_per_second()
    result["collection_steps_per_second"] = {str(w): collection_throughput(w) for w in (1, 2)}
    torch.set_num_threads(threads)
    result["vae_training_images_per_second"] = vae_training_throughput()
    result["mdnrnn_training_steps_per_second"] = mdnrnn_training_throughput()
    save_json(result, OUT)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
