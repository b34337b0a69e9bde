"""The player's saved progress: stars and the last circuit of each puzzle.

One JSON file, ``data_dir()/progress.json``::

    {"version": 1, "puzzles": {"<id>": {"stars": N, "circuit": [{round, asker, card, responder}]}}}

Every write is atomic (a temp file in the same folder, fsync, ``os.replace``, then an fsync of
the folder), so a kill in the middle of a save leaves the previous file whole. A file that
cannot be read is renamed ``progress.json.damaged-<timestamp>`` and play goes on from nothing;
the caller gets a message to show. Never imports Textual or torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
MAX_STARS = 3
FILE_NAME = "progress.json"


def progress_path() -> Path:
    from engine.paths import data_dir

    return data_dir() / FILE_NAME


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@dataclass
class Progress:
    """Stars and circuits per puzzle id; ``message`` says if a damaged file was set aside."""

    puzzles: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None
    message: str | None = None

    # ------------------------------------------------------------------ reading

    @classmethod
    def load(cls, path: Path | None = None) -> Progress:
        path = path or progress_path()
        if not path.exists():
            return cls(path=path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            puzzles = _check(data)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                os.replace(path, aside)
                where = f"moved to {aside.name}"
            except OSError:
                where = "left in place"
            return cls(path=path, message=f"Your save file could not be read ({exc}); it was "
                                          f"{where} and play starts fresh.")
        return cls(puzzles=puzzles, path=path)

    def stars(self, puzzle_id: str) -> int:
        return int(self.puzzles.get(puzzle_id, {}).get("stars", 0))

    def circuit(self, puzzle_id: str) -> list[dict[str, str]]:
        return list(self.puzzles.get(puzzle_id, {}).get("circuit", []))

    @property
    def total_stars(self) -> int:
        return sum(self.stars(pid) for pid in self.puzzles)

    # ------------------------------------------------------------------ writing

    def record(self, puzzle_id: str, *, stars: int | None = None,
               circuit: list[dict[str, str]] | None = None) -> None:
        """Keep the best stars ever earned and the latest circuit, and save at once."""
        entry = self.puzzles.setdefault(puzzle_id, {"stars": 0, "circuit": []})
        if stars is not None:
            entry["stars"] = max(int(entry.get("stars", 0)), max(0, min(MAX_STARS, stars)))
        if circuit is not None:
            entry["circuit"] = [dict(q) for q in circuit]
        self.save()

    def save(self) -> None:
        payload = {"version": VERSION, "puzzles": self.puzzles}
        atomic_write(self.path or progress_path(), json.dumps(payload, indent=2) + "\n")


def _check(data: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("puzzles"), dict):
        raise ValueError("no `puzzles` table")
    if data.get("version", VERSION) != VERSION:
        raise ValueError(f"unknown version {data.get('version')!r}")
    out: dict[str, dict[str, Any]] = {}
    for pid, entry in data["puzzles"].items():
        if not isinstance(entry, dict):
            raise TypeError(f"entry for {pid!r} is not an object")
        stars = entry.get("stars", 0)
        if not isinstance(stars, int) or isinstance(stars, bool):
            raise TypeError(f"stars for {pid!r} are not a number")
        circuit = entry.get("circuit", [])
        if not isinstance(circuit, list) or not all(isinstance(q, dict) for q in circuit):
            raise TypeError(f"circuit for {pid!r} is not a list of questions")
        out[str(pid)] = {"stars": max(0, min(MAX_STARS, stars)),
                         "circuit": [{str(k): str(v) for k, v in q.items()} for q in circuit]}
    return out


def export_circuit(puzzle_id: str, questions: list[dict[str, str]], path: Path,
                   model: str | None = None) -> Path:
    """Write a circuit file that `lineup check` reads (atomically)."""
    from engine.puzzle import Circuit, Question

    circuit = Circuit(puzzle_id, [Question(**q) for q in questions], model=model)
    atomic_write(path, circuit.to_yaml())
    return path


def circuits_dir() -> Path:
    from engine.paths import data_dir

    return data_dir() / "circuits"
