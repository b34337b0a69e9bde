"""A small disk cache for model runs the judge reuses: per (model weights, prompts, engine).

Every entry is one file under ``engine.paths.cache_dir()/runs``, named
``<kind>-v<CACHE_VERSION>-<key>.pt``, where ``key`` hashes everything the content depends on
(the model's weight fingerprint, the prompts and roles, the judge's own version). Files are
written atomically (temp file + ``os.replace``) and read with ``torch.load(weights_only=True)``,
so a cache file can never run code. A file that is missing, from another version, truncated or
otherwise unreadable is treated as absent (and deleted): the caller rebuilds it. Nothing in a
cache file is ever trusted over a rebuild.

``STATS`` counts hits, misses and rebuilt (corrupt) files for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

CACHE_VERSION = 3
STATS = {"hits": 0, "misses": 0, "corrupt": 0, "writes": 0}


def key_of(*parts: Any) -> str:
    """A stable hash of JSON-able parts (lists, dicts, numbers, strings)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def runs_dir() -> Path:
    from engine.paths import cache_dir

    return cache_dir() / "runs"


def path_for(kind: str, key: str) -> Path:
    return runs_dir() / f"{kind}-v{CACHE_VERSION}-{key}.pt"


def load(kind: str, key: str) -> dict[str, Any] | None:
    """The cached entry, or None when absent or unreadable (an unreadable file is removed)."""
    import torch

    path = path_for(kind, key)
    if not path.is_file():
        STATS["misses"] += 1
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or data.get("__key__") != key:
            raise ValueError("not this cache entry")
    except Exception:  # truncated, garbage, another format: rebuild, never trust
        STATS["corrupt"] += 1
        STATS["misses"] += 1
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    STATS["hits"] += 1
    return data


def save(kind: str, key: str, data: dict[str, Any]) -> Path | None:
    """Write an entry atomically. A read-only or full disk is not an error: the cache is
    only a speed-up, so failures are swallowed and None is returned."""
    import torch

    path = path_for(kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save({**data, "__key__": key}, handle)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return None
    STATS["writes"] += 1
    return path


def clear() -> int:
    """Delete every cache entry; returns how many files went."""
    n = 0
    folder = runs_dir()
    if folder.is_dir():
        for p in folder.glob("*.pt"):
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
    return n
