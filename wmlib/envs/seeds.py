"""Disjoint seed ranges, so no evaluation track was ever seen in data collection or training."""

SEED_RANGES = {  # purpose -> [start, stop)
    "rollouts": (0, 10**6),
    "train": (10**6, 10**9),
    "eval": (10**9, 2**31),
}


def episode_seeds(purpose: str, n: int, offset: int = 0) -> list[int]:
    """n consecutive environment seeds for `purpose` (rollouts | train | eval), starting at `offset`."""
    if purpose not in SEED_RANGES:
        raise ValueError(f"purpose must be one of {sorted(SEED_RANGES)}, got {purpose!r}")
    start, stop = SEED_RANGES[purpose]
    if offset < 0 or start + offset + n > stop:
        raise ValueError(f"{purpose} seeds [{offset}, {offset + n}) overflow the range of {stop - start}")
    return list(range(start + offset, start + offset + n))
