"""One interface for running episodes in parallel: local worker processes, or a Ray cluster.

`pool.map(fn, items, shared)` calls `fn(shared, item)` for every item and returns the results in
order. `shared` (model weights, say) is shipped once per call: a file the local workers read once,
or one object in Ray's store. `fn` must be importable (defined in wmlib, not in a notebook).
"""
import os
import pickle
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import lru_cache
from multiprocessing import get_context

from tqdm.auto import tqdm

from .params import ParallelParams


class WorkerPool:
    def __init__(self, backend: str = "local", workers: int = 2, address: str | None = None, gpus: float = 0.0):
        """`gpus`: GPUs each Ray task requests (fractions share one), if the cluster has any; local workers
        see every GPU of the machine."""
        if backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.backend, self.workers, self.address = backend, workers, address
        self._executor = None
        if backend == "ray":
            import ray
            if not ray.is_initialized():
                ray.init(address=address, num_cpus=None if address else workers,
                         include_dashboard=False, log_to_driver=False)
            gpus = gpus if ray.cluster_resources().get("GPU", 0) > 0 else 0.0  # a CPU cluster: no task could start
            self._remote = ray.remote(num_cpus=1, num_gpus=gpus)(_call)
        elif workers > 1:
            self._executor = ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                                 initializer=_init_worker)

    @classmethod
    def from_params(cls, p: ParallelParams, gpus: float = 0.0) -> "WorkerPool":
        return cls(p.backend, p.workers, p.address, gpus)

    def map(self, fn, items, shared=None, desc: str | None = None, progress: bool = True) -> list:
        items = list(items)
        bar = tqdm(total=len(items), desc=desc, disable=not progress, mininterval=5)
        try:
            if self.backend == "ray":
                return self._map_ray(fn, items, shared, bar)
            if self._executor is None:
                return [_tick(bar, fn(shared, item)) for item in items]
            return self._map_local(fn, items, shared, bar)
        finally:
            bar.close()

    def _map_local(self, fn, items, shared, bar):
        fd, path = tempfile.mkstemp(prefix="wmlib-shared-", suffix=".pkl")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(shared, f, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            futures = {self._executor.submit(_call_with_file, fn, path, item): i for i, item in enumerate(items)}
            results = [None] * len(items)
            for fut in as_completed(futures):
                results[futures[fut]] = _tick(bar, fut.result())
            return results
        finally:
            os.remove(path)

    def _map_ray(self, fn, items, shared, bar):
        import ray
        ref = ray.put(shared)
        pending = {self._remote.remote(fn, ref, item): i for i, item in enumerate(items)}
        results = [None] * len(items)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            results[pending.pop(done[0])] = _tick(bar, ray.get(done[0]))
        return results

    def close(self):
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _tick(bar, result):
    bar.update(1)
    return result


def _init_worker():
    import torch
    torch.set_num_threads(1)


def _call(fn, shared, item):
    _init_worker()
    return fn(shared, item)


@lru_cache(maxsize=2)
def _load_shared(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def _call_with_file(fn, path, item):
    return fn(_load_shared(path), item)
