"""95% intervals of a mean over episodes. The World Models tables: percentile bootstrap (`scipy.stats.bootstrap`,
10,000 resamples, seeded) of a mean, and of the mean difference between two agents scored on the same episodes.
`python -m wmlib.play`, which scores a handful of episodes: Student's t (`t_interval`), since a bootstrap of 3
episodes has only 10 distinct resamples and comes out too narrow.

(The MuJoCo tables resample seeds, not episodes, with rliable's stratified bootstrap:
wmlib.experiments.mujoco.comparison.)
"""
import numpy as np
from scipy import stats

RESAMPLES = 10_000


def mean_interval(x, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of x [n] (a constant x: that value, twice)."""
    x = np.asarray(x, float)
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES, method="percentile",
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


def t_interval(x, confidence: float = 0.95) -> tuple[float, float]:
    """Student's t interval of the mean of x [n] (fewer than 2 values, or all equal: the mean, twice)."""
    x = np.asarray(x, float)
    mean = float(x.mean())
    if len(x) < 2 or np.ptp(x) == 0:
        return mean, mean
    low, high = stats.t.interval(confidence, len(x) - 1, loc=mean, scale=stats.sem(x))
    return float(low), float(high)
