"""The published per-seed learning curves in reference/published/ (sources, commits and licences in its README),
and where a set of our seeds falls among them; and the World Models authors' own CMA-ES logs (`world_models_cmaes`).

    at("tdmpc.csv", "tdmpc", "states", "walker-walk", 40_000)      # each published seed's return at 40k frames
    compare([888.0, 901.0, 870.0], at(...))                         # published mean, range, our seeds' ranks

The rule for a frame count between two logged points: each seed's last logged point AT OR BEFORE `frames`, and only
if it lies within `max_lag` x frames of it (else the seed is left out). No interpolation: every value compared with
is a return a published seed actually logged, after no more training than ours had, so the published range is a
range of real runs (an interpolated min or max is no run's return) and the comparison never credits the published
method with frames it had not yet trained on. Frames count DMC control steps with the action repeat included.
"""
import functools
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .paths import ROOT

REFERENCE = ROOT / "reference" / "published"
COLUMNS = ["source", "commit", "method", "observations", "task", "seed", "frames", "return"]


@functools.cache
def load(file: str) -> pd.DataFrame:
    """One file of reference/published/ (e.g. 'tdmpc.csv') as a DataFrame with COLUMNS."""
    path = REFERENCE / file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such published curve file (have: "
                                f"{', '.join(sorted(p.name for p in REFERENCE.glob('*.csv')))})")
    df = pd.read_csv(path, dtype={"source": str, "commit": str, "seed": int, "frames": int, "return": float})
    if list(df.columns) != COLUMNS:
        raise ValueError(f"{path}: columns {list(df.columns)}, expected {COLUMNS}")
    return df


@dataclass(frozen=True)
class Point:
    """Each published seed's return at (or just before) `frames` on `task`."""
    file: str
    source: str                  # GitHub owner/name
    commit: str
    method: str
    observations: str            # states | pixels
    task: str                    # DMC domain-task, e.g. walker-walk
    frames: int                  # the frame count asked for
    seeds: dict[int, float]      # seed label -> return
    logged: dict[int, int]       # seed label -> the frames of the point used

    @property
    def returns(self) -> np.ndarray:
        return np.array(list(self.seeds.values()))

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def min(self) -> float:
        return float(self.returns.min())

    @property
    def max(self) -> float:
        return float(self.returns.max())


def at(file: str, method: str, observations: str, task: str, frames: int, max_lag: float = 0.25) -> Point | None:
    """The published seeds of (method, observations, task) in `file` at `frames`: per seed the last logged point at
    or before `frames`, if no more than max_lag x frames earlier. None where no seed has such a point."""
    df = load(file)
    rows = df[(df.method == method) & (df.observations == observations) & (df.task == task)]
    if rows.empty:
        return None
    near = rows[(rows.frames <= frames) & (rows.frames >= frames - max_lag * frames)]
    last = near.sort_values("frames").groupby("seed").tail(1).sort_values("seed")
    if last.empty:
        return None
    return Point(file, rows.source.iloc[0], rows.commit.iloc[0], method, observations, task, frames,
                 dict(zip(last.seed.tolist(), last["return"].tolist())),
                 dict(zip(last.seed.tolist(), last.frames.tolist())))


def ranks(ours: Sequence[float], point: Point) -> list[int]:
    """For each of our returns, how many published seeds it beats (0: below all of them; len(seeds): above all)."""
    return [int((point.returns < x).sum()) for x in ours]


def compare(ours: Sequence[float], point: Point | None) -> dict:
    """A table row: the published mean, min and max over seeds, the frames logged, and our seeds' ranks among them
    (see `ranks`); NaN and empty where nothing is published at these frames."""
    if point is None:
        return {"published": "", "published_mean": np.nan, "published_min": np.nan, "published_max": np.nan,
                "published_seeds": 0, "published_frames": "", "ranks": "", "inside_range": np.nan}
    logged = sorted(set(point.logged.values()))
    mean = float(np.mean(ours))
    return {"published": f"{point.method} ({point.observations}), {point.source}@{point.commit[:8]}",
            "published_mean": point.mean, "published_min": point.min, "published_max": point.max,
            "published_seeds": len(point.seeds),
            "published_frames": "/".join(str(f) for f in logged),
            "ranks": " ".join(f"{r}/{len(point.seeds)}" for r in ranks(ours, point)),
            "inside_range": bool(point.min <= mean <= point.max)}


WORLD_MODELS = REFERENCE / "worldmodels"
WM_POPULATION, WM_EPISODES = 64, 16  # the logs' names: <game>.cma.<episodes>.<population>
WM_HISTORY = ["generation", "seconds", "mean", "worst", "best", "std", "sigma", "mean_steps", "max_steps"]


def world_models_cmaes(game: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The World Models authors' CMA-ES run, read from their logs (reference/published/worldmodels/, one seed):
    `game` 'carracing', or 'doomrnn' (TakeCover, trained and evaluated in the dream at their code's tau 1.25).
    Returns (per generation: WM_HISTORY as their train.py writes it, the fitness being the mean return of a
    candidate's 16 episodes, plus `episodes`: training episodes so far, 64 x 16 per generation;
    every 25 generations: generation, episodes, mean = the distribution's mean evaluated on 1,024 episodes)."""
    paths = [WORLD_MODELS / f"{game}.cma.{WM_EPISODES}.{WM_POPULATION}.{kind}.json" for kind in ("hist", "hist_best")]
    if not all(p.is_file() for p in paths):
        raise FileNotFoundError(f"{paths[0].parent}: no CMA-ES log of game {game!r} (have: "
                                f"{', '.join(sorted({p.name.split('.')[0] for p in WORLD_MODELS.glob('*.json')}))})")
    hist = pd.DataFrame(json.loads(paths[0].read_text()), columns=WM_HISTORY)
    evals = pd.DataFrame([(row[0], row[5]) for row in json.loads(paths[1].read_text())], columns=["generation", "mean"])
    for df in (hist, evals):
        df.insert(1, "episodes", df.generation * WM_POPULATION * WM_EPISODES)
    return hist, evals


def world_models_at(hist: pd.DataFrame, episodes: int) -> pd.Series | None:
    """The authors' last generation (a row of world_models_cmaes's first frame) after at most `episodes` training
    episodes, so never credited with more training than ours had; None before their first generation ended."""
    done = hist[hist.episodes <= episodes]
    return None if done.empty else done.iloc[-1]
