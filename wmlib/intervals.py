"""95% intervals for the World Models tables: percentile bootstrap (`scipy.stats.bootstrap`, 10,000 resamples,
seeded) of a mean over episodes, and of the mean difference between two agents scored on the same episodes.

(The MuJoCo tables resample seeds, not episodes, with rliable's stratified bootstrap:
wmlib.experiments.mujoco.comparison.)
"""
import numpy as np
from scipy.stats import bootstrap

RESAMPLES = 10_000


def mean_interval(x, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of x [n] (a constant x: that value, twice)."""
    x = np.asarray(x, float)
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES, method="percentile",
                    random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_difference(x, y, confidence: float = 0.95, seed: int = 0) -> dict:
    """Two agents' returns x, y [n] on the same n episodes (same seeds, same order): the mean of x - y, its
    percentile-bootstrap interval (episodes resampled as pairs, so what the two share cancels), n, and the share
    of episodes where x scored higher."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_difference needs two returns of the same episodes, got shapes {x.shape} and "
                         f"{y.shape}")
    low, high = mean_interval(x - y, confidence, seed)
    return {"mean_difference": float(np.mean(x - y)), "low": low, "high": high, "n": len(x),
            "share_higher": float(np.mean(x > y))}
