"""reference/published/ against the source files it was copied from, and wmlib.published's lookup against a direct
reading of the CSV text."""
import csv
import hashlib
import re

import numpy as np
import pytest

from wmlib import published
from wmlib.paths import ROOT

SOURCE = ROOT.parent / "shared" / "reference" / "published"  # the project's shared reference folder, if present
FILES = sorted(p.name for p in published.REFERENCE.glob("*.csv"))
TASKS = {"cartpole-swingup", "walker-walk", "cheetah-run"}
ONLY_METHOD = {"dreamerv3.csv": "dreamerv3"}  # the model-free pixel baselines of that file are left out
needs_source = pytest.mark.skipif(not SOURCE.is_dir(), reason=f"{SOURCE} (the source files) is not here")


def rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_file_is_there():
    assert FILES == ["dreamer.csv", "dreamerv3.csv", "dreamerv3_2023.csv", "tdmpc.csv", "tdmpc2.csv"]


@needs_source
@pytest.mark.parametrize("file", FILES)
def test_round_trip_against_the_source_file(file):
    """The source file is the one the README names (sha256), and the stored lines are exactly its lines for the kept
    tasks: none changed, none added, none left out; wmlib.published.load reads back the same values."""
    source = SOURCE / file
    readme = (published.REFERENCE / "README.md").read_text()
    assert re.search(rf"\| {re.escape(file)} \| {hashlib.sha256(source.read_bytes()).hexdigest()} \|", readme)
    header, *lines = source.read_text().splitlines()
    keep = [ln for ln in lines if ln.split(",")[4] in TASKS and ONLY_METHOD.get(file, ln.split(",")[2]) ==
            ln.split(",")[2]]
    stored_header, *stored = (published.REFERENCE / file).read_text().splitlines()
    assert stored_header == header and stored == keep and len(stored) > 100
    df = published.load(file)
    raw = rows(published.REFERENCE / file)
    assert len(df) == len(raw)
    for col in ("source", "commit", "method", "observations", "task"):
        assert df[col].tolist() == [r[col] for r in raw]
    assert df.seed.tolist() == [int(r["seed"]) for r in raw]
    assert df.frames.tolist() == [int(r["frames"]) for r in raw]
    assert df["return"].tolist() == [float(r["return"]) for r in raw]


def direct(file, method, obs, task, frames) -> dict[int, float]:
    return {int(r["seed"]): float(r["return"]) for r in rows(published.REFERENCE / file)
            if (r["method"], r["observations"], r["task"], int(r["frames"])) == (method, obs, task, frames)}


def test_between_two_logged_points_the_point_at_or_before_is_used():
    """TD-MPC v1 logs walker-walk every 20k frames: at 50k each seed's 40k point is used (not 60k, no
    interpolation); mean, min and max are those of the five 40k returns (943-963, the issue's numbers)."""
    at40 = direct("tdmpc.csv", "tdmpc", "states", "walker-walk", 40_000)
    assert len(at40) == 5 and min(at40.values()) == 943 and max(at40.values()) == 963
    for frames in (40_000, 45_000, 50_000):
        p = published.at("tdmpc.csv", "tdmpc", "states", "walker-walk", frames)
        assert p.seeds == at40 and set(p.logged.values()) == {40_000}
        assert (p.mean, p.min, p.max) == (np.mean(list(at40.values())), 943, 963)
    p = published.at("tdmpc.csv", "tdmpc", "states", "walker-walk", 60_000)
    assert p.seeds == direct("tdmpc.csv", "tdmpc", "states", "walker-walk", 60_000)


def test_a_point_too_far_before_is_not_used():
    """TD-MPC2 logs every 100k frames: at 40k the last point (0 frames) is more than 25% of 40k before, so nothing
    is published there; a seed with a missing point is left out rather than read from an older point."""
    assert published.at("tdmpc2.csv", "tdmpc2", "states", "walker-walk", 40_000) is None
    p = published.at("tdmpc2.csv", "dreamerv3", "states", "walker-walk", 200_000)
    assert p.seeds == direct("tdmpc2.csv", "dreamerv3", "states", "walker-walk", 200_000) and 3 not in p.seeds
    assert published.at("tdmpc.csv", "tdmpc", "states", "no-such-task", 40_000) is None


def test_compare_ranks_our_seeds_among_the_published_ones():
    p = published.at("tdmpc.csv", "tdmpc", "states", "walker-walk", 40_000)
    ours = [888.0, 950.0, 970.0]
    row = published.compare(ours, p)
    assert row["ranks"] == " ".join(f"{sum(v < x for v in p.seeds.values())}/5" for x in ours) == "0/5 1/5 5/5"
    assert row["inside_range"] == (943 <= np.mean(ours) <= 963)
    assert published.compare(ours, None)["published_seeds"] == 0


def test_unknown_file_is_named():
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        published.load("nope.csv")


# The World Models authors' CMA-ES logs (reference/published/worldmodels/), stored verbatim


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content: sha1 of 'blob <size>\\0<content>'."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.parametrize("path", sorted(published.WORLD_MODELS.glob("*.json")), ids=lambda p: p.name)
def test_world_models_logs_are_the_authors_files(path):
    """Each file is byte for byte the blob the README names, i.e. the file in the authors' git tree."""
    readme = (published.REFERENCE / "README.md").read_text()
    assert re.search(rf"\| worldmodels/{re.escape(path.name)} \| {git_blob_id(path.read_bytes())} \|", readme)


@pytest.mark.parametrize("game", ["carracing", "doomrnn"])
def test_world_models_columns_read_as_their_train_py_writes_them(game):
    """Column order checked by what must hold between the columns: worst <= mean <= best, steps at most the cap,
    sigma starting just under their sigma_init 0.1 and shrinking, 64 x 16 episodes per generation."""
    hist, evals = published.world_models_cmaes(game)
    assert len(hist) == 1800 and list(hist.generation) == list(range(1, 1801))
    assert ((hist.worst <= hist["mean"]) & (hist["mean"] <= hist.best)).all()
    assert (hist.mean_steps <= hist.max_steps).all() and (hist.max_steps <= 2101).all()
    assert 0.09 < hist.sigma.iloc[0] < 0.1 and hist.sigma.iloc[-1] < hist.sigma.iloc[0]
    assert (hist.episodes == hist.generation * 1024).all()
    assert list(evals.generation) == list(range(25, 1801, 25)) and (evals.episodes == evals.generation * 1024).all()


def test_world_models_carracing_first_evaluation():
    """The number issue 15 quotes from this log: the mean scored 823 at generation 25 (25,600 episodes)."""
    _, evals = published.world_models_cmaes("carracing")
    assert (evals.generation[0], evals.episodes[0], round(evals["mean"][0])) == (25, 25_600, 823)


def test_world_models_at_never_credits_more_episodes():
    hist, _ = published.world_models_cmaes("carracing")
    assert published.world_models_at(hist, 10_240).generation == 10
    assert published.world_models_at(hist, 10_239).generation == 9
    assert published.world_models_at(hist, 1_023) is None


def test_world_models_unknown_game_is_named():
    with pytest.raises(FileNotFoundError, match=r"'doom'.*have: carracing, doomrnn"):
        published.world_models_cmaes("doom")
