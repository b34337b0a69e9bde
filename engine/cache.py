"""A small disk cache for model runs the judge reuses: per (model weights, prompts, engine).

Every entry is one file under ``engine.paths.cache_dir()/runs``, named
``<kind>-v<CACHE_VERSION>-<key>.pt``, where ``key`` hashes everything the content depends on
(the model's weight fingerprint, the prompts and roles, the judge's own version).

A file carries what it is, so a file in the wrong place is never trusted (issue 14: the
effects side file copied over the runs file, a wrong tensor shape, a NaN metric, a truncated
write). Layout::

    LINEUP-CACHE 1\\n
    {"kind": ..., "key": ..., "version": CACHE_VERSION, "size": N, "sha256": ...,
     "schema": {name: {"tensor": [shape], "dtype": "float32"} | "float" | "str" | ...}}\\n
    <N bytes: torch.save of the entry>

``load`` checks, before anything is used: the header reads; kind, key and version are the ones
asked for; the payload has exactly ``size`` bytes and its sha256; ``torch.load`` with
``weights_only=True`` (a cache file can never run code) gives back the schema the header
promised; every float and floating tensor is finite; and the caller's ``expect`` (shapes and
types, optional) holds. Any failure counts as ``corrupt``: the file is deleted and the caller
rebuilds. Files are written atomically (temp file + ``os.replace``). Files of another
``CACHE_VERSION`` are deleted whenever an entry is saved; ``clear()`` (``lineup doctor
--clear-cache``) deletes everything.

``load(..., memo=True)`` keeps the entry in a small in-process memo (``MEMO_SIZE`` entries),
so the game and ``lineup grade`` do not re-read a large file for every check. A memoised
entry is used only while its file is unchanged on disk (same size, modification time and
inode). Memoised entries are shared: callers must not modify them.

The cache is bounded (issue 22: one session of play left 1.19 GB that nothing shrank). Its
cap, 500 MB unless ``LINEUP_CACHE_MB`` or ``cache_mb`` in the config file says otherwise
(``cap()``), holds for the files together: before and after each write the least recently used
entries are deleted until the rest fits. Every load that is used marks its file as used (its
access time). An entry larger than the cap is not written. Eviction never breaks a check: a
check keeps what it loaded in memory, and a file that has gone is a miss, rebuilt when asked.

``STATS`` counts hits (``memo_hits`` of them from the memo), misses, rebuilt (corrupt) files,
writes, pruned (other-version) and evicted (over the cap) files, for tests and benchmarks;
``LAST_REJECTED`` says why the last corrupt file was refused or an entry not written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import stat
import tempfile
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_VERSION = 4
MEMO_SIZE = 4
MAGIC = b"LINEUP-CACHE 1\n"
MAX_HEADER = 1 << 20
STALE_TMP_S = 60.0
DEFAULT_CAP_MB = 500
CAP_ENV = "LINEUP_CACHE_MB"
MB = 1_000_000
STATS = {"hits": 0, "memo_hits": 0, "misses": 0, "corrupt": 0, "writes": 0, "pruned": 0,
         "evicted": 0}
LAST_REJECTED: list[str] = []  # the reason the last corrupt file was refused (tests, doctor)

_NAME = re.compile(r"^.+-v(?P<version>\d+)-[0-9a-f]+\.pt$")
_TMP = re.compile(r"^\..+?-(?:(?P<pid>\d+)-)?[^.]*\.tmp$")
_MEMO: OrderedDict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = OrderedDict()

# What callers may pass as ``expect``: name -> a shape (tuple, ``None`` for any size on that
# axis), or one of these type names.
Expect = Mapping[str, "tuple[int | None, ...] | str"]


class Rejected(ValueError):
    """A cache file that is not what it says, or not what was asked for."""


def key_of(*parts: Any) -> str:
    """A stable hash of JSON-able parts (lists, dicts, numbers, strings)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Cap:
    """How many bytes the cache may hold, who said so, and what was wrong with a setting
    that was ignored (shown by ``lineup cache`` and ``lineup doctor``)."""

    bytes: int
    source: str
    problem: str | None = None


def _megabytes(value: object) -> int | None:
    """A cap in bytes from a number of megabytes (0 or more), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return int(value * MB)
    return None


def cap() -> Cap:
    """The cache's cap: ``LINEUP_CACHE_MB`` if set, else ``cache_mb`` in the config file, else
    500 MB. A setting that is not a number of megabytes is ignored, and said so."""
    from engine.paths import config_file

    default = Cap(DEFAULT_CAP_MB * MB, "default")
    raw = os.environ.get(CAP_ENV)
    if raw is not None and raw.strip():
        value = _megabytes(raw)
        if value is None:
            return Cap(default.bytes, "default",
                       f"{CAP_ENV}={raw!r} is not a number of megabytes")
        return Cap(value, CAP_ENV)
    path = config_file()
    if not path.is_file():
        return default
    import tomllib

    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return Cap(default.bytes, "default", f"{path} does not read as TOML ({exc})")
    if "cache_mb" not in settings:
        return default
    value = _megabytes(settings["cache_mb"])
    if value is None:
        return Cap(default.bytes, "default",
                   f"cache_mb = {settings['cache_mb']!r} in {path} is not a number of megabytes")
    return Cap(value, str(path))


def runs_dir() -> Path:
    from engine.paths import cache_dir

    return cache_dir() / "runs"


def path_for(kind: str, key: str) -> Path:
    return runs_dir() / f"{kind}-v{CACHE_VERSION}-{key}.pt"


# --------------------------------------------------------------------------- what a value is


def describe(value: Any, depth: int = 0) -> Any:
    """A JSON description of an entry's structure: tensors by shape and dtype, scalars by
    type, dicts and lists recursively. Equal descriptions mean the same layout."""
    import torch

    if depth > 20:
        raise Rejected("nested too deeply")
    if isinstance(value, torch.Tensor):
        return {"tensor": list(value.shape), "dtype": str(value.dtype).replace("torch.", "")}
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if value is None:
        return "none"
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise Rejected("a table with keys that are not text")
        return {"map": {k: describe(v, depth + 1) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"list": [describe(v, depth + 1) for v in value]}
    raise Rejected(f"cannot cache a {type(value).__name__}")


def _check_finite(value: Any, where: str = "") -> None:
    import torch

    if isinstance(value, torch.Tensor):
        floating = value.is_floating_point() or value.is_complex()
        if floating and value.numel() and not bool(torch.isfinite(value).all()):
            raise Rejected(f"{where or 'a tensor'} holds NaN or infinity")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Rejected(f"{where or 'a number'} is NaN or infinite")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, (list, tuple)):
        for k, v in enumerate(value):
            _check_finite(v, f"{where}[{k}]")


def _check_expect(data: dict[str, Any], expect: Expect) -> None:
    import torch

    kinds = {"float": float, "int": int, "str": str, "bool": bool, "dict": dict, "list": list}
    for name, want in expect.items():
        if name not in data:
            raise Rejected(f"no {name!r} in the entry")
        value = data[name]
        if isinstance(want, str):
            if want == "tensor":
                ok = isinstance(value, torch.Tensor)
            else:
                cls = kinds.get(want)
                ok = cls is not None and isinstance(value, cls) and not (
                    cls in (int, float) and isinstance(value, bool))
            if not ok:
                raise Rejected(f"{name!r} is {type(value).__name__}, not {want}")
            continue
        if not isinstance(value, torch.Tensor):
            raise Rejected(f"{name!r} is {type(value).__name__}, not a tensor")
        shape = tuple(value.shape)
        if len(shape) != len(want) or any(
                w is not None and w != s for w, s in zip(want, shape, strict=True)):
            raise Rejected(f"{name!r} has shape {list(shape)}, not {list(want)}")


# --------------------------------------------------------------------------- file format


def encode(kind: str, key: str, data: dict[str, Any]) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(data, buf)
    payload = buf.getvalue()
    header = {"kind": kind, "key": key, "version": CACHE_VERSION, "size": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest(), "schema": describe(data)}
    return MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


def _decode(kind: str, key: str, raw: bytes, expect: Expect | None) -> dict[str, Any]:
    import torch

    if not raw.startswith(MAGIC):
        raise Rejected("not a Lineup cache file (no header)")
    end = raw.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER)
    if end < 0:
        raise Rejected("the header is cut off")
    try:
        header = json.loads(raw[len(MAGIC):end])
    except (ValueError, RecursionError):
        raise Rejected("the header is not JSON") from None
    if not isinstance(header, dict):
        raise Rejected("the header is not a table")
    for field, want in (("kind", kind), ("key", key), ("version", CACHE_VERSION)):
        if header.get(field) != want:
            raise Rejected(f"it is {field} {header.get(field)!r}, not {want!r}")
    payload = memoryview(raw)[end + 1:]
    if header.get("size") != len(payload):
        raise Rejected(f"{len(payload)} bytes of content, the header says {header.get('size')}")
    if header.get("sha256") != hashlib.sha256(payload).hexdigest():
        raise Rejected("the content does not match its checksum")
    try:
        data = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure: never trusted
        raise Rejected(f"the content does not load ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise Rejected("the content is not a table")
    if describe(data) != header.get("schema"):
        raise Rejected("the content's shapes differ from the header's")
    _check_finite(data)
    if expect:
        _check_expect(data, expect)
    return data


def _read(path: Path) -> bytes | None:
    """The file's bytes, or None when it is not a regular file (never opened then). The
    header is read first: a file whose length is not what its header says (truncated, or
    something else entirely) is refused without reading the rest."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            head = handle.read(len(MAGIC) + MAX_HEADER + 1)
            if not head.startswith(MAGIC):
                raise Rejected("not a Lineup cache file (no header)")
            end = head.find(b"\n", len(MAGIC))
            if end < 0:
                raise Rejected("the header is cut off")
            try:
                size = json.loads(head[len(MAGIC):end]).get("size")
            except (ValueError, RecursionError, AttributeError):
                raise Rejected("the header is not a JSON table") from None
            if not isinstance(size, int) or st.st_size != end + 1 + size:
                raise Rejected(f"the file has {st.st_size} bytes, its header says "
                               f"{end + 1}+{size!r}")
            return head + handle.read()
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- memo


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


# --------------------------------------------------------------------------- the API


def load(kind: str, key: str, *, memo: bool = False,
         expect: Expect | None = None) -> dict[str, Any] | None:
    """The cached entry, or None when absent or not exactly what was asked for (then the file
    is removed and the caller rebuilds). ``expect`` optionally names entries and their shapes
    (``{"att": (12, 12, None, None), "build": "str"}``; ``None`` is any size). With ``memo``,
    an entry read (and checked) before is returned from memory while its file is unchanged."""
    path = path_for(kind, key)
    if not path.is_file():
        _MEMO.pop(path, None)
        STATS["misses"] += 1
        return None
    if memo:
        hit = _MEMO.get(path)
        with contextlib.suppress(OSError):
            if hit is not None and hit[0] == _signature(path):
                try:
                    if expect:
                        _check_expect(hit[1], expect)
                except Rejected:
                    pass
                else:
                    _MEMO.move_to_end(path)
                    STATS["hits"] += 1
                    STATS["memo_hits"] += 1
                    _mark_used(path)
                    return hit[1]
    _MEMO.pop(path, None)
    try:
        raw = _read(path)
        if raw is None:
            raise Rejected("not a regular file")
        data = _decode(kind, key, raw, expect)
    except (Rejected, OSError, MemoryError) as exc:  # rebuild, never trust
        LAST_REJECTED[:] = [f"{path.name}: {exc}"]
        STATS["corrupt"] += 1
        STATS["misses"] += 1
        with contextlib.suppress(OSError):
            if path.is_file():
                path.unlink()
        return None
    STATS["hits"] += 1
    _mark_used(path)
    if memo:
        _remember(path, data)
    return data


def save(kind: str, key: str, data: dict[str, Any], *, memo: bool = False) -> Path | None:
    """Write an entry atomically (and, with ``memo``, keep it in the memo), then delete the
    files of other cache versions. A read-only or full disk is not an error: the cache is
    only a speed-up, so failures are swallowed and None is returned. An entry that cannot be
    described (an object that is not a tensor, number, text, list or table) or that holds NaN
    is not written either: it would be refused on load."""
    path = path_for(kind, key)
    _MEMO.pop(path, None)
    try:
        _check_finite(data)
        blob = encode(kind, key, data)
    except Rejected as exc:
        LAST_REJECTED[:] = [f"{path.name}: not saved: {exc}"]
        return None
    limit = cap().bytes
    if len(blob) > limit:
        LAST_REJECTED[:] = [f"{path.name}: not saved: {len(blob) / MB:.0f} MB is more than the "
                            f"cache's cap of {limit / MB:.0f} MB"]
        with contextlib.suppress(OSError):
            path.unlink()  # an older entry under this name is stale now
        return None
    evict(limit - len(blob), spare=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}-{os.getpid()}-", suffix=".tmp",
                                   dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return None
    STATS["writes"] += 1
    if memo:
        _remember(path, data)
    prune()
    evict(limit, keep=path)  # another process may have written meanwhile
    return path


def _mark_used(path: Path) -> None:
    """Record a use in the file's access time (its modification time, which the memo
    compares, stays)."""
    with contextlib.suppress(OSError):
        st = path.stat()
        os.utime(path, ns=(max(time.time_ns(), st.st_atime_ns), st.st_mtime_ns))


def evict(limit: int, *, spare: Path | None = None, keep: Path | None = None) -> int:
    """Delete the least recently used entries until the entries fit in ``limit`` bytes;
    ``spare`` is not counted (it is about to be replaced), ``keep`` is never deleted. Returns
    how many files went."""
    folder = runs_dir()
    if not folder.is_dir():
        return 0
    entries = []
    for p in folder.glob("*.pt"):
        if p == spare:
            continue
        with contextlib.suppress(OSError):
            st = p.stat()
            entries.append((max(st.st_atime_ns, st.st_mtime_ns), st.st_size, p))
    total = sum(size for _, size, _ in entries)
    n = 0
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if p == keep:
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            continue
        _MEMO.pop(p, None)
        total -= size
        n += 1
    STATS["evicted"] += n
    return n


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def prune() -> int:
    """Delete the entries of other cache versions, and temp files a killed save left (a
    minute old, or their owner gone); returns how many files went."""
    n = 0
    folder = runs_dir()
    if not folder.is_dir():
        return 0
    now = time.time()
    for p in folder.iterdir():
        match = _NAME.match(p.name)
        tmp = _TMP.match(p.name)
        try:
            if match and int(match["version"]) != CACHE_VERSION:
                p.unlink()
                n += 1
            elif tmp:
                pid = int(tmp["pid"]) if tmp["pid"] else None
                old = now - p.lstat().st_mtime > STALE_TMP_S
                if old or (pid is not None and pid != os.getpid() and not _pid_alive(pid)):
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
