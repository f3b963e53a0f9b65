"""results/<scale>/summary.csv has the agreed columns, and the README's table is generated from the committed
scale's."""
import json

import pandas as pd
import pytest

from wmlib import summary
from wmlib.benchmarks import out_path
from wmlib.evaluation import EvalResult
from wmlib.params import COMMITTED_SCALE


def test_readme_table_is_generated_from_summary_csv():
    path = summary.summary_path(COMMITTED_SCALE)
    if not path.exists():
        pytest.skip(f"no {path} yet")
    df = pd.read_csv(path)
    assert list(df.columns) == summary.COLUMNS
    assert f"{summary.BEGIN}\n{summary.markdown_table(df)}\n{summary.END}" in summary.README.read_text()


def test_update_readme_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{summary.BEGIN}\nold\n{summary.END}\noutro\n")
    summary.update_readme("| new |", readme)
    assert readme.read_text() == f"intro\n{summary.BEGIN}\n| new |\n{summary.END}\noutro\n"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="missing the markers"):
        summary.update_readme("x", readme)


def test_markdown_table_leaves_paper_columns_empty_where_the_paper_has_no_number():
    df = pd.DataFrame([{"experiment": "e", "method": "random policy", "metric": "return", "mean": -50.2, "std": 3.1,
                        "n": 100, "ci_low": None, "ci_high": None, "env_steps": 0, "paper_mean": None,
                        "paper_std": None, "scale": "default",
                        "train_episodes": 0, "core_hours": 0.0}])
    last = summary.markdown_table(df).splitlines()[-1]
    assert last == "| e | random policy | return | -50 +- 3 | 100 |  | 0 | 0 | 0.00 | default |"


def test_eval_result_round_trip(tmp_path):
    r = EvalResult("full", [1, 2, 3], [10.0, 20.0, 60.0], [1000, 1000, 500])
    r.save(tmp_path / "r.json")
    back = EvalResult.load(tmp_path / "r.json")
    assert back == r and back.mean == 30.0 and back.std == pytest.approx(21.602, abs=1e-3)


@pytest.mark.parametrize("experiment", ["carracing", "doom", "mujoco", "dreamer"])
def test_readme_benchmark_tables_are_generated_from_the_benchmark_json(experiment):
    import importlib
    b = importlib.import_module(f"wmlib.benchmarks.{experiment}")
    out = out_path(COMMITTED_SCALE, experiment)
    if not out.exists():
        pytest.skip(f"no {out} yet")
    result = json.loads(out.read_text())
    assert result["scale"] == COMMITTED_SCALE
    assert f"{b.BEGIN}\n{b.markdown_table(result)}\n{b.END}" in summary.README.read_text()


def test_markdown_table_shows_a_published_mean_without_spread_alone():
    df = pd.DataFrame([{"experiment": "dmc/walker-walk", "method": "TD-MPC (MPPI)", "metric": "return", "mean": 887.5,
                        "std": 39.8, "n": 10, "ci_low": None, "ci_high": None, "env_steps": 40000, "paper_mean": 954.0,
                        "paper_std": float("nan"), "scale": "default", "train_episodes": 40, "core_hours": 0.7}])
    assert "| 888 +- 40 | 10 | 954 | 40,000 |" in summary.markdown_table(df)


def test_markdown_table_shows_the_interval_over_seeds_where_there_is_one():
    df = pd.DataFrame([{"experiment": "dmc/walker-walk", "method": "TD-MPC (MPPI)", "metric": "return", "mean": 887.5,
                        "std": 39.8, "n": 3, "ci_low": 850.2, "ci_high": 921.7, "env_steps": 40000,
                        "paper_mean": 953.6, "paper_std": 6.5, "scale": "default", "train_episodes": 120,
                        "core_hours": 2.1}])
    assert "| 888 +- 40 [850, 922] | 3 | 954 +- 6 | 40,000 |" in summary.markdown_table(df)
