"""Same seed and code, same bytes: rerunning a stage whose results come out the same leaves the stages that read
them up to date (DVC compares file hashes)."""
import subprocess
import sys
import textwrap

VAE_STAGE = textwrap.dedent("""
    # the carracing_vae stage's steps (notebook 02) on a small store of rollouts, in the folder argv[1]
    import sys
    from pathlib import Path
    import numpy as np
    from wmlib.data.rollouts import Episode, RolloutStore
    from wmlib.experiments.carracing import Run
    from wmlib.experiments.world_models import train_vae
    from wmlib.experiments.carracing.params import CarRacingParams
    from wmlib.params import load_params

    root = Path(sys.argv[1])
    run = Run("smoke", load_params(CarRacingParams, "smoke"), root / "data", root / "results")
    run.data.mkdir(parents=True), run.results.mkdir(parents=True)
    store, rng, meta = RolloutStore(run.data / "rollouts"), np.random.default_rng(0), {"policy": "brownian"}
    entries = [store.write(Episode(s, rng.integers(0, 256, (20, 64, 64, 3), dtype=np.uint8),
                                   rng.uniform(-1, 1, (20, 3)).astype(np.float32), np.zeros(20, np.float32)), meta)
               for s in range(3)]
    store.write_index(entries, meta)
    train_vae(run)
""")


def test_rerunning_the_vae_stage_gives_byte_identical_outputs(tmp_path):
    """Two runs, two processes (temporary file names differ between processes), the same bytes."""
    for run in ("a", "b"):
        subprocess.run([sys.executable, "-c", VAE_STAGE, str(tmp_path / run)], check=True)
    for name in ("vae.pt", "rollouts/index.json", "rollouts/ep_0000000.npz"):
        assert (tmp_path / "a/data" / name).read_bytes() == (tmp_path / "b/data" / name).read_bytes(), name
