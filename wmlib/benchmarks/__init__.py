"""Speed on this machine, one module per experiment, each writing results/<scale>/benchmarks/<experiment>.json
(with the scale whose sizes it timed) and its table beside it (<experiment>.md; in the README too at the committed
scale):

    python -m wmlib.benchmarks.carracing   the agent's overhead against CarRacing's own step; rollout collection;
                                           V and M training throughput
    python -m wmlib.benchmarks.doom        dream steps/s at the paper's CMA-ES batch; the real-game agent's cost
    python -m wmlib.benchmarks.mujoco      one MPPI planning call (TDMPC.act) and TDMPC.update, the scale's and 5M sizes
    python -m wmlib.benchmarks.dreamer     Dreamer's world-model and actor-critic updates and imagination

Every measure times the code the pipeline runs (an agent's `act` / `update`, the training loops, the dream's
CMA-ES batch), not a copy of it. Where a CUDA GPU is present, the GPU-relevant measures (V training, the dream,
paper-size TD-MPC and Dreamer) are also taken on it, beside the same measure on the CPU. Run on an idle machine.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from ..io import atomic_path, save_json
from ..params import COMMITTED_SCALE, resolve_scale
from ..paths import ROOT
from ..summary import update_readme

WALKER_DIMS = (24, 6)  # walker-walk's observation and action sizes: the MuJoCo benchmarks' agent dimensions


def machine() -> dict:
    """What the numbers were measured on."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(), "torch": torch.__version__, "gpu": gpu}


def gpu_devices() -> list[str]:
    """['cuda'] where a CUDA GPU is present, else []: the extra device the GPU measures run on."""
    return ["cuda"] if torch.cuda.is_available() else []


def timed(fn, n: int, device="cpu", warmup: int = 1) -> float:
    """Mean wall seconds of fn() over n calls after `warmup` calls (CUDA work synchronised)."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - start) / n


def time_agent_and_env(env, agent, steps: int) -> dict:
    """Agent step and env step timed separately on the same observations, over `steps` steps."""
    obs, _ = env.reset(seed=0)
    env_s = agent_s = 0.0
    for i in range(steps):
        t0 = time.perf_counter()
        action = agent(obs)
        t1 = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(action)
        t2 = time.perf_counter()
        agent_s, env_s = agent_s + t1 - t0, env_s + t2 - t1
        if terminated or truncated:
            obs, _ = env.reset(seed=i + 1)
            agent.reset()
    return {"steps": steps, "env_ms_per_step": 1e3 * env_s / steps, "agent_ms_per_step": 1e3 * agent_s / steps,
            "overhead_fraction": agent_s / env_s}


def parse_scale(doc: str) -> str:
    """The `--scale` argument of a benchmark's command line (default: params.yaml's)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default=None, help="smoke | default | paper: the sizes to time, where to write")
    return resolve_scale(ap.parse_args().scale)


def out_path(scale: str, experiment: str) -> Path:
    """results/<scale>/benchmarks/<experiment>.json"""
    return ROOT / "results" / scale / "benchmarks" / f"{experiment}.json"


def write(result: dict, experiment: str, scale: str, table: str, begin: str, end: str):
    """Save the JSON and its table beside it; at the committed scale, also rewrite the README table between its
    markers. Print the JSON."""
    out = out_path(scale, experiment)
    save_json(result, out)
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(table + "\n")
    if scale == COMMITTED_SCALE:
        update_readme(table, begin=begin, end=end)
    print(json.dumps(result, indent=2))
