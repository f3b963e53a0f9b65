"""The worker pool gives the same ordered results on every backend, Ray included."""
import os
import sys

import pytest

from wmlib.parallel import WorkerPool


def scaled_pid(shared, item):
    return item * shared["factor"], os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_local_pool_maps_in_order_with_shared_data(workers):
    with WorkerPool("local", workers) as pool:
        out = pool.map(scaled_pid, range(8), {"factor": 3}, progress=False)
        again = pool.map(scaled_pid, range(3), {"factor": -1}, progress=False)  # new shared data, same pool
    assert [v for v, _ in out] == [3 * i for i in range(8)]
    assert [v for v, _ in again] == [0, -1, -2]
    pids = {pid for _, pid in out}
    assert (pids == {os.getpid()}) if workers == 1 else (os.getpid() not in pids)


def test_ray_backend_on_a_local_instance():
    ray = pytest.importorskip("ray")
    # Ray's workers cannot import this test module: ship its functions by value
    pytest.importorskip("ray.cloudpickle").register_pickle_by_value(sys.modules[__name__])
    pool = WorkerPool("ray", workers=2)
    try:
        out = pool.map(scaled_pid, range(6), {"factor": 2}, progress=False)
        assert [v for v, _ in out] == [0, 2, 4, 6, 8, 10]
        assert os.getpid() not in {pid for _, pid in out}
    finally:
        ray.shutdown()


def test_bad_backend_and_worker_count_are_named():
    with pytest.raises(ValueError, match="backend"):
        WorkerPool("dask", 2)
    with pytest.raises(ValueError, match="workers"):
        WorkerPool("local", 0)
