"""CMA-ES (the `cma` package) with a checkpoint after every generation.

Kill the process at any point and call `run_cmaes` again with the same arguments: it resumes
from the last completed generation (at most one generation is lost) and, because numpy's global
random state, which `cma` samples from, is checkpointed too, continues exactly as an
uninterrupted run would. A long run can also be split into phases (`stop_at`, `continues`), each
writing its own checkpoint: phase k continues phase k-1's, and all phases together make the same
run as one uninterrupted call.
"""
import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import cma
import numpy as np
from tqdm.auto import tqdm

from ..io import atomic_path


@dataclass
class CMAESRun:
    config: dict
    es: cma.CMAEvolutionStrategy
    rng_state: tuple
    history: list[dict] = field(default_factory=list)      # one record per generation
    evaluations: list[dict] = field(default_factory=list)  # periodic evaluations of the mean
    best_params: np.ndarray | None = None                  # mean with the best evaluation so far
    origin: str | None = None                              # sha256 of the earlier phase's checkpoint it continues

    @property
    def generation(self) -> int:
        return len(self.history)


def run_cmaes(fitness, dim: int, *, popsize: int, sigma0: float, generations: int, checkpoint,
              seed: int, config: dict | None = None, evaluate=None, eval_every: int = 0,
              stop_at: int | None = None, continues=None, progress: bool = True) -> CMAESRun:
    """Maximise `fitness` from x0 = 0, for `generations` generations (or up to `stop_at`, one phase of them).

    fitness(solutions: list[(dim,)], generation) -> (scores: list[float], info: dict merged into the record)
    evaluate(mean: (dim,), generation) -> dict with at least "mean" (run every `eval_every`
    generations and after the last); the evaluated mean with the highest "mean" is `best_params`.
    `config` identifies the run: a checkpoint written under another config is not resumed.
    `continues`: the checkpoint of the run's previous phase, which this call extends to `stop_at` in its own
    `checkpoint` (resumed only while it still continues that same file).
    """
    checkpoint = Path(checkpoint)
    stop_at = generations if stop_at is None else stop_at
    if not 0 <= stop_at <= generations:
        raise ValueError(f"stop_at must be in [0, generations={generations}], got {stop_at}")
    config = {"dim": dim, "popsize": popsize, "sigma0": sigma0, "seed": seed, **(config or {})}
    run = _load(checkpoint, config)
    if continues is not None:
        origin = hashlib.sha256(Path(continues).read_bytes()).hexdigest()
        if run is None or run.origin != origin:
            run = _read(Path(continues))
            if run.config != config:
                raise ValueError(f"{continues}: written for another configuration than the phase that continues it")
            run.origin = origin
            _save(checkpoint, run)  # this phase's checkpoint exists from here on, even if it adds no generation
    if run is None:
        # cma reads seed 0 (and None) as "seed from the clock": shift ours by one so that every seed repeats
        es = cma.CMAEvolutionStrategy(np.zeros(dim), sigma0, {"popsize": popsize, "seed": seed + 1, "verbose": -9})
        run = CMAESRun(config, es, np.random.get_state())
    np.random.set_state(run.rng_state)
    bar = tqdm(total=stop_at, initial=min(run.generation, stop_at), desc="CMA-ES generations",
               disable=not progress, mininterval=5)
    while run.generation < stop_at:
        g = run.generation + 1
        solutions = run.es.ask()
        scores, info = fitness(solutions, g)
        scores = np.asarray(scores, dtype=np.float64)
        run.es.tell(solutions, (-scores).tolist())  # cma minimises
        run.history.append({"generation": g, "best": float(scores.max()), "mean": float(scores.mean()),
                            "worst": float(scores.min()), "sigma": float(run.es.sigma), **info})
        if evaluate is not None and (g == generations or (eval_every and g % eval_every == 0)):
            mean = np.array(run.es.mean)
            result = {"generation": g, **evaluate(mean, g)}
            if not run.evaluations or result["mean"] > max(e["mean"] for e in run.evaluations):
                run.best_params = mean
            run.evaluations.append(result)
        run.rng_state = np.random.get_state()
        _save(checkpoint, run)
        bar.update(1)
        bar.set_postfix(best=f"{scores.max():.1f}", mean=f"{scores.mean():.1f}")
    bar.close()
    if run.best_params is None:
        run.best_params = np.array(run.es.mean)
    return run


def _save(path: Path, run: CMAESRun):
    with atomic_path(path) as tmp:
        tmp.write_bytes(pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL))


def _load(path: Path, config: dict) -> CMAESRun | None:
    if not path.exists():
        return None
    run = _read(path)
    if run.config != config:
        print(f"{path}: written for another configuration, starting a new run")
        return None
    return run


def _read(path: Path) -> CMAESRun:
    try:
        return pickle.loads(path.read_bytes())
    except Exception as e:
        raise ValueError(f"{path}: unreadable CMA-ES checkpoint ({e}); delete it to start over") from e
