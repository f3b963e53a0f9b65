"""Runs outside DVC write to scratch/, a view of the pipeline's files that never changes them; a misspelled
papermill parameter is an error."""
import IPython
import pandas as pd
import pytest

from wmlib import paths
from wmlib.experiments import Run, check_papermill_parameters
from wmlib.experiments.carracing.params import CarRacingParams
from wmlib.io import save_csv, save_json


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setattr(paths, "SCRATCH", tmp_path / "scratch")
    pipeline = tmp_path / "data" / "smoke" / "exp"
    (pipeline / "sub").mkdir(parents=True)
    (pipeline / "a.json").write_text("pipeline a")
    (pipeline / "sub" / "b.csv").write_text("pipeline b")
    return tmp_path


def test_scratch_reads_the_pipeline_and_writes_beside_it(root):
    pipeline = root / "data" / "smoke" / "exp"
    view = paths.scratch_view(pipeline)
    assert view == root / "scratch" / "data" / "smoke" / "exp"
    assert (view / "a.json").read_text() == "pipeline a" and (view / "sub" / "b.csv").read_text() == "pipeline b"
    save_json({"mine": 1}, view / "a.json")
    save_csv(pd.DataFrame({"x": [1]}), view / "sub" / "b.csv")
    assert (pipeline / "a.json").read_text() == "pipeline a"
    assert (pipeline / "sub" / "b.csv").read_text() == "pipeline b"
    (pipeline / "new.json").write_text("made later by the pipeline")
    view = paths.scratch_view(pipeline)  # a later run: new pipeline files appear, scratch's own stay
    assert (view / "new.json").read_text() == "made later by the pipeline"
    assert (view / "a.json").read_text() == '{\n  "mine": 1\n}\n'


@pytest.mark.parametrize("env, pipeline", [({}, False), ({"DVC_STAGE": "carracing_vae"}, True),
                                           ({"WMLIB_OUTPUTS": "pipeline"}, True),
                                           ({"DVC_STAGE": "x", "WMLIB_OUTPUTS": "scratch"}, False)])
def test_only_dvc_or_an_explicit_request_writes_the_pipeline(monkeypatch, env, pipeline):
    for key in ("DVC_STAGE", "WMLIB_OUTPUTS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert paths.writes_pipeline_outputs() is pipeline


def test_bad_outputs_switch_is_named(monkeypatch):
    monkeypatch.setenv("WMLIB_OUTPUTS", "pipline")
    with pytest.raises(ValueError, match="WMLIB_OUTPUTS must be 'pipeline' or 'scratch', got 'pipline'"):
        paths.writes_pipeline_outputs()


def test_a_run_outside_dvc_works_in_scratch(root, monkeypatch):
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.delenv("WMLIB_OUTPUTS", raising=False)
    import wmlib.experiments as experiments
    monkeypatch.setattr(experiments, "data_dir", lambda scale, e: root / "data" / scale / e)
    monkeypatch.setattr(experiments, "results_dir", lambda scale, e: root / "results" / scale / e)
    run = Run.setup(CarRacingParams, "smoke")
    assert run.data == root / "scratch" / "data" / "smoke" / "carracing"
    assert run.results == root / "scratch" / "results" / "smoke" / "carracing"
    monkeypatch.setenv("DVC_STAGE", "carracing_vae")
    assert Run.setup(CarRacingParams, "smoke").data == root / "data" / "smoke" / "carracing"


class FakeKernel:
    def __init__(self, *cells):
        self.user_ns = {"In": ["", *cells]}


@pytest.mark.parametrize("injected, error", [
    ('# Parameters\nscale = "smoke"\n', None),
    ('# Parameters\nscale = "smoke"\ntau = 1.15\n', None),
    ('# Parameters\nscael = "smoke"\n',
     r"unknown notebook parameter\(s\) \['scael'\]: this notebook takes scale, tau")])
def test_papermill_parameters_the_notebook_does_not_declare_are_an_error(monkeypatch, injected, error):
    kernel = FakeKernel('scale = None  # "smoke" | "default" | "paper"\ntau = 1.0\n', injected, "run = setup(scale)")
    monkeypatch.setattr(IPython, "get_ipython", lambda: kernel)
    if error is None:
        check_papermill_parameters()
    else:
        with pytest.raises(ValueError, match=error):
            check_papermill_parameters()


def test_no_check_outside_papermill(monkeypatch):
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernel("scael = 1\n"))
    check_papermill_parameters()  # no injected cell: a notebook stepped through by hand
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    check_papermill_parameters()  # plain Python
