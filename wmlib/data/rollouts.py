"""Rollouts on disk: one compressed `.npz` per episode plus `index.json` with lengths and SHA-256s.

Frames are uint8 (T, 64, 64, 3); actions float32 (T, A); rewards float32 (T,). Every load checks
the file against the index, so a truncated or corrupt file raises `CorruptRolloutError` naming it.
"""
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import atomic_path, load_json, save_json

INDEX = "index.json"
ENTRY_FIELDS = ("file", "seed", "steps", "return", "sha256")  # an index entry (RolloutStore._entry)


class CorruptRolloutError(RuntimeError):
    """A rollout file is missing, truncated, corrupt or disagrees with index.json."""


@dataclass
class Episode:
    seed: int
    frames: np.ndarray   # uint8 (T, 64, 64, 3): observation before each action
    actions: np.ndarray  # float32 (T, A): env actions
    rewards: np.ndarray  # float32 (T,)

    def __len__(self):
        return len(self.frames)


class RolloutStore:
    """A folder of episodes indexed by position; `store[i]` is a verified `Episode`."""

    def __init__(self, root):
        self.root = Path(root)

    @property
    def index(self) -> list[dict]:
        return load_json(self.root / INDEX)["episodes"]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i: int) -> Episode:
        return self.load(self.index[i])

    def __iter__(self):
        for entry in self.index:
            yield self.load(entry)

    def write(self, episode: Episode, meta: dict) -> dict:
        """Write one episode file atomically; returns its index entry (index.json is written later)."""
        name = f"ep_{episode.seed:07d}.npz"
        with atomic_path(self.root / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, seed=episode.seed, frames=episode.frames, actions=episode.actions,
                                    rewards=episode.rewards, meta=json.dumps(meta, sort_keys=True))
        return self._entry(name, episode)

    def existing(self, seed: int, meta: dict) -> dict | None:
        """The entry of an episode file already written for `seed` with the same `meta`, if it reads
        back intact; lets an interrupted collection resume."""
        name = f"ep_{seed:07d}.npz"
        try:
            with np.load(self.root / name) as z:
                if str(z["meta"]) != json.dumps(meta, sort_keys=True):
                    return None
                ep = Episode(int(z["seed"]), z["frames"], z["actions"], z["rewards"])
        except (FileNotFoundError, zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError):
            return None
        return self._entry(name, ep)

    def write_index(self, entries: list[dict], meta: dict):
        """index.json: per episode only what identifies its data (ENTRY_FIELDS), not how it was collected (time,
        restarts), so that the same episodes give the same bytes and a rerun leaves the stages after it current."""
        save_json({"meta": meta, "episodes": [{k: e[k] for k in ENTRY_FIELDS} for e in entries]}, self.root / INDEX)

    def load(self, entry: dict) -> Episode:
        path = self.root / entry["file"]
        if not path.exists():
            raise CorruptRolloutError(f"{path}: listed in {INDEX} but missing")
        if _sha256(path) != entry["sha256"]:
            raise CorruptRolloutError(f"{path}: checksum does not match {INDEX} (truncated or corrupt)")
        try:
            with np.load(path) as z:
                ep = Episode(int(z["seed"]), z["frames"], z["actions"], z["rewards"])
        except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as e:
            raise CorruptRolloutError(f"{path}: unreadable rollout file ({e})") from e
        if not (len(ep.frames) == len(ep.actions) == len(ep.rewards) == entry["steps"]):
            raise CorruptRolloutError(f"{path}: arrays disagree with the {entry['steps']} steps in {INDEX}")
        return ep

    def _entry(self, name: str, ep: Episode) -> dict:
        return {"file": name, "seed": ep.seed, "steps": len(ep), "return": float(ep.rewards.sum()),
                "sha256": _sha256(self.root / name)}


def collect_episode(env, policy, seed: int) -> Episode:
    """Run `policy(obs) -> action` for one episode of `env` reset with `seed`."""
    obs, _ = env.reset(seed=seed)
    frames, actions, rewards = [], [], []
    done = False
    while not done:
        action = policy(obs)
        frames.append(obs)
        actions.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        done = terminated or truncated
    return Episode(seed, np.stack(frames), np.stack(actions).astype(np.float32),
                   np.asarray(rewards, np.float32))


def load_frames(store: RolloutStore, stride: int = 1) -> np.ndarray:
    """Every `stride`-th frame of every episode, in order, uint8 (N, 64, 64, 3), copied into one array episode by
    episode: peak memory is the result plus one episode, not every whole episode (~20 GB for 5,000 Doom episodes)."""
    index = store.index
    frames, i = np.empty((sum(-(-e["steps"] // stride) for e in index), 64, 64, 3), np.uint8), 0
    for entry in index:
        f = store.load(entry).frames[::stride]
        frames[i:i + len(f)] = f
        i += len(f)
    return frames


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
