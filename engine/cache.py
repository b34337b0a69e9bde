"""A small disk cache for model runs the judge reuses: per (model weights, prompts, engine).

Every entry is one file under ``engine.paths.cache_dir()/runs``, named
``<kind>-v<CACHE_VERSION>-<key>.pt``, where ``key`` hashes everything the content depends on
(the model's weight fingerprint, the prompts and roles, the judge's own version). Files are
written atomically (temp file + ``os.replace``) and read with ``torch.load(weights_only=True)``,
so a cache file can never run code. A file that is missing, truncated or otherwise unreadable
is treated as absent (and deleted): the caller rebuilds it. Nothing in a cache file is ever
trusted over a rebuild. Files of another ``CACHE_VERSION`` are deleted whenever an entry is
saved; ``clear()`` (``lineup doctor --clear-cache``) deletes everything.

``load(..., memo=True)`` keeps the entry in a small in-process memo (``MEMO_SIZE`` entries),
so the game and ``lineup grade`` do not re-read a large file for every check. A memoised
entry is used only while its file is unchanged on disk (same size, modification time and
inode); otherwise the file is read (and, if damaged, rebuilt) as usual. Memoised entries are
shared: callers must not modify them.

``STATS`` counts hits (``memo_hits`` of them from the memo), misses, rebuilt (corrupt) files,
writes and pruned (other-version) files, for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

CACHE_VERSION = 3
MEMO_SIZE = 4
STATS = {"hits": 0, "memo_hits": 0, "misses": 0, "corrupt": 0, "writes": 0, "pruned": 0}

_NAME = re.compile(r"^.+-v(?P<version>\d+)-[0-9a-f]+\.pt$")
_MEMO: OrderedDict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = OrderedDict()


def key_of(*parts: Any) -> str:
    """A stable hash of JSON-able parts (lists, dicts, numbers, strings)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def runs_dir() -> Path:
    from engine.paths import cache_dir

    return cache_dir() / "runs"


def path_for(kind: str, key: str) -> Path:
    return runs_dir() / f"{kind}-v{CACHE_VERSION}-{key}.pt"


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _remember(path: Path, data: dict[str, Any]) -> None:
    try:
        _MEMO[path] = (_signature(path), data)
    except OSError:
        _MEMO.pop(path, None)
        return
    _MEMO.move_to_end(path)
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)


def forget() -> None:
    """Empty the in-process memo (the files stay)."""
    _MEMO.clear()


def load(kind: str, key: str, *, memo: bool = False) -> dict[str, Any] | None:
    """The cached entry, or None when absent or unreadable (an unreadable file is removed).
    With ``memo``, an entry read before is returned from memory while its file is unchanged."""
    path = path_for(kind, key)
    if not path.is_file():
        _MEMO.pop(path, None)
        STATS["misses"] += 1
        return None
    if memo:
        hit = _MEMO.get(path)
        with contextlib.suppress(OSError):
            if hit is not None and hit[0] == _signature(path):
                _MEMO.move_to_end(path)
                STATS["hits"] += 1
                STATS["memo_hits"] += 1
                return hit[1]
    _MEMO.pop(path, None)
    import torch

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
    if memo:
        _remember(path, data)
    return data


def save(kind: str, key: str, data: dict[str, Any], *, memo: bool = False) -> Path | None:
    """Write an entry atomically (and, with ``memo``, keep it in the memo), then delete the
    files of other cache versions. A read-only or full disk is not an error: the cache is
    only a speed-up, so failures are swallowed and None is returned."""
    import torch

    path = path_for(kind, key)
    _MEMO.pop(path, None)
    entry = {**data, "__key__": key}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(entry, handle)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return None
    STATS["writes"] += 1
    if memo:
        _remember(path, entry)
    prune()
    return path


def prune() -> int:
    """Delete the entries of other cache versions; returns how many files went."""
    n = 0
    folder = runs_dir()
    if not folder.is_dir():
        return 0
    for p in folder.glob("*.pt"):
        match = _NAME.match(p.name)
        if match and int(match["version"]) != CACHE_VERSION:
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
    STATS["pruned"] += n
    return n


def size() -> tuple[int, int]:
    """(number of cache files, their total bytes)."""
    files = total = 0
    folder = runs_dir()
    if folder.is_dir():
        for p in folder.glob("*.pt"):
            with contextlib.suppress(OSError):
                total += p.stat().st_size
                files += 1
    return files, total


def clear() -> int:
    """Delete every cache entry (and the memo); returns how many files went."""
    forget()
    n = 0
    folder = runs_dir()
    if folder.is_dir():
        for p in [*folder.glob("*.pt"), *folder.glob(".*.tmp")]:
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
    return n
