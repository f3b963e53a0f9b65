"""CMA-ES finds a known optimum, and a run killed mid-generation resumes exactly where it stopped."""
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from wmlib.control.cmaes import run_cmaes

OPTIMUM = np.array([1.0, -2.0, 0.5, 3.0])


def sphere(solutions, generation):
    return [-float(np.sum((x - OPTIMUM) ** 2)) for x in solutions], {}


def test_finds_the_optimum_of_a_shifted_sphere(tmp_path):
    run = run_cmaes(sphere, 4, popsize=8, sigma0=1.0, generations=80, checkpoint=tmp_path / "c.pkl", seed=1,
                    evaluate=lambda m, g: {"mean": -float(np.sum((m - OPTIMUM) ** 2))}, eval_every=20,
                    progress=False)
    np.testing.assert_allclose(run.best_params, OPTIMUM, atol=1e-3)
    assert [e["generation"] for e in run.evaluations] == [20, 40, 60, 80]
    assert run.history[-1]["best"] > -1e-6


SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from wmlib.control.cmaes import run_cmaes
    target = np.arange(6.0)
    kill_at = int(sys.argv[2])
    def fitness(solutions, g):
        if g == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, as with a power cut
        return [-float(np.sum((x - target) ** 2)) for x in solutions], {"extra": g}
    run_cmaes(fitness, 6, popsize=6, sigma0=0.5, generations=12, checkpoint=sys.argv[1], seed=3, progress=False)
""")


def run_script(ckpt, kill_at):
    return subprocess.run([sys.executable, "-c", SCRIPT, str(ckpt), str(kill_at)], capture_output=True, text=True)


def test_killed_run_resumes_and_matches_an_uninterrupted_one(tmp_path):
    assert run_script(tmp_path / "ref.pkl", -1).returncode == 0
    ref = pickle.loads((tmp_path / "ref.pkl").read_bytes())

    killed = run_script(tmp_path / "run.pkl", 5)
    assert killed.returncode == -signal.SIGKILL
    partial = pickle.loads((tmp_path / "run.pkl").read_bytes())
    assert partial.generation == 4  # generation 5 was lost, nothing before it

    assert run_script(tmp_path / "run.pkl", -1).returncode == 0
    resumed = pickle.loads((tmp_path / "run.pkl").read_bytes())
    assert resumed.generation == 12
    assert resumed.history == ref.history
    np.testing.assert_array_equal(resumed.es.mean, ref.es.mean)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # no half-written checkpoint left


def test_checkpoint_of_another_configuration_is_not_resumed(tmp_path, capsys):
    ckpt = tmp_path / "c.pkl"
    run_cmaes(sphere, 4, popsize=6, sigma0=1.0, generations=3, checkpoint=ckpt, seed=1, progress=False)
    run = run_cmaes(sphere, 4, popsize=8, sigma0=1.0, generations=2, checkpoint=ckpt, seed=1, progress=False)
    assert "another configuration" in capsys.readouterr().out
    assert run.generation == 2


def test_unreadable_checkpoint_is_named(tmp_path):
    ckpt = tmp_path / "c.pkl"
    ckpt.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=f"{ckpt}: unreadable CMA-ES checkpoint"):
        run_cmaes(sphere, 4, popsize=6, sigma0=1.0, generations=1, checkpoint=ckpt, seed=1, progress=False)


def test_every_seed_repeats_zero_included(tmp_path):
    """cma reads seed 0 as 'seed from the clock'; run_cmaes must not: two runs with seed 0 are identical."""
    runs = [run_cmaes(sphere, 4, popsize=6, sigma0=1.0, generations=3, checkpoint=tmp_path / f"{i}.pkl", seed=0,
                      progress=False) for i in range(2)]
    assert runs[0].history == runs[1].history
    assert np.array_equal(runs[0].es.mean, runs[1].es.mean)


def phased(tmp_path, stops, fitness=sphere):
    """One run of 12 generations split into phases ending at `stops`, each continuing the previous checkpoint."""
    run, previous = None, None
    for k, stop in enumerate(stops):
        ckpt = tmp_path / f"phase-{k}.pkl"
        run = run_cmaes(fitness, 4, popsize=6, sigma0=1.0, generations=12, checkpoint=ckpt, seed=2,
                        evaluate=lambda m, g: {"mean": -float(np.sum((m - OPTIMUM) ** 2))}, eval_every=5,
                        stop_at=stop, continues=previous, progress=False)
        previous = ckpt
    return run


def test_phases_continuing_each_other_make_the_uninterrupted_run(tmp_path):
    whole = run_cmaes(sphere, 4, popsize=6, sigma0=1.0, generations=12, checkpoint=tmp_path / "whole.pkl", seed=2,
                      evaluate=lambda m, g: {"mean": -float(np.sum((m - OPTIMUM) ** 2))}, eval_every=5,
                      progress=False)
    run = phased(tmp_path, [4, 4, 9, 12])  # an empty phase included
    assert run.history == whole.history
    assert [e["generation"] for e in run.evaluations] == [5, 10, 12]  # the schedule ignores phase ends
    assert run.evaluations == whole.evaluations
    np.testing.assert_array_equal(run.es.mean, whole.es.mean)
    np.testing.assert_array_equal(run.best_params, whole.best_params)
    assert pickle.loads((tmp_path / "phase-0.pkl").read_bytes()).generation == 4  # a phase's file stays its own


def test_a_phase_restarts_from_its_predecessor_when_that_changes(tmp_path):
    phased(tmp_path, [4, 8])

    def shifted(solutions, generation):  # the first phase rerun differently (another fitness)
        return [-float(np.sum((x - OPTIMUM - 1) ** 2)) for x in solutions], {}

    (tmp_path / "phase-0.pkl").unlink()
    first = run_cmaes(shifted, 4, popsize=6, sigma0=1.0, generations=12, checkpoint=tmp_path / "phase-0.pkl",
                      seed=2, stop_at=4, progress=False)
    second = run_cmaes(shifted, 4, popsize=6, sigma0=1.0, generations=12, checkpoint=tmp_path / "phase-1.pkl",
                       seed=2, stop_at=8, continues=tmp_path / "phase-0.pkl", progress=False)
    assert second.history[:4] == first.history  # continued the new first phase, not its own stale file
    assert second.generation == 8


def test_a_phase_refuses_a_predecessor_of_another_configuration(tmp_path):
    run_cmaes(sphere, 4, popsize=8, sigma0=1.0, generations=12, checkpoint=tmp_path / "a.pkl", seed=2, stop_at=2,
              progress=False)
    with pytest.raises(ValueError, match="a.pkl: written for another configuration"):
        run_cmaes(sphere, 4, popsize=6, sigma0=1.0, generations=12, checkpoint=tmp_path / "b.pkl", seed=2,
                  stop_at=4, continues=tmp_path / "a.pkl", progress=False)
