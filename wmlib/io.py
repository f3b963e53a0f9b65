"""Atomic, byte-stable writes: a file is either the old version or the complete new one, never half-written,
and the same object always gives the same bytes (no temporary names or timestamps inside)."""
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename.

    The temporary file is created like any other file (its mode follows the umask), and its name is
    unique per process and thread, so concurrent writers of different files never collide."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_torch(obj, path):
    """torch.save through a file object: given a path, torch names the archive's root folder after the file,
    which would store the temporary name inside and make every checkpoint differ."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def load_torch(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found (run the stage that produces it first)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated or foreign file
        raise ValueError(f"{path}: unreadable checkpoint ({e})") from e


def save_json(obj, path):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def save_csv(df, path, index: bool = False):
    """A pandas DataFrame as CSV (with its index if `index`)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index)


def load_json(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found (run the stage that produces it first)")
    return json.loads(path.read_text())
