from .rollouts import (CorruptRolloutError, Episode, RolloutStore, collect_episode, load_frames)

__all__ = ["CorruptRolloutError", "Episode", "RolloutStore", "collect_episode", "load_frames"]
