"""The player's saved progress: stars and the last circuit of each puzzle.

One JSON file, ``data_dir()/progress.json``::

    {"version": 1, "puzzles": {"<id>": {"stars": N, "circuit": [{round, asker, card, responder}]}}}

Every write is atomic (a temp file in the same folder, fsync, ``os.replace``, then an fsync of
the folder), so a kill in the middle of a save leaves the previous file whole. Reading loses as
little as it can (see ``Progress.load``): a bad entry is left out by itself; a file that cannot
be opened, or one from a newer Lineup, is kept and not written over; only a file that is not a
progress file at all is renamed ``progress.json.damaged-<timestamp>`` and play goes on from
nothing. The caller gets a message to show. Never imports Textual or torch.
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
    """Stars and circuits per puzzle id; ``message`` says what went wrong reading the file, if
    anything; ``keep`` (a reason) when the file on disk must not be written over."""

    puzzles: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None
    message: str | None = None
    keep: str | None = None

    # ------------------------------------------------------------------ reading

    @classmethod
    def load(cls, path: Path | None = None, *, read_only: bool = False) -> Progress:
        """Read the save file. What cannot be used never costs the rest:

        - a file that cannot be opened right now (``OSError``: permissions, a flaky disk) is
          left exactly where it is, and this session does not write over it;
        - a file from a newer Lineup (a higher ``version``) is read as far as it can be, and
          kept as it is: this session does not write over it;
        - an entry that does not read is left out, by itself, with a message;
        - only a file that is not a progress file at all (not JSON, no ``puzzles`` table) is
          renamed ``progress.json.damaged-<timestamp>`` and play starts fresh; with
          ``read_only`` (``lineup list``) it is left alone and reads as empty.
        """
        path = path or progress_path()
        try:
            if not path.exists():
                return cls(path=path)
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            why = exc.strerror or str(exc)
            return cls(path=path, keep=f"it could not be read ({why})",
                       message=f"Your save file {path} could not be read ({why}). It is left as "
                               "it is, and nothing from this session will be saved over it; "
                               "fix the problem and restart Lineup to see your progress.")
        try:
            data = json.loads(text)
            version = _version(data)
        except ValueError as exc:
            if read_only:
                return cls(path=path, keep="it could not be read",
                           message=f"Your save file {path} is damaged ({exc}); it is left "
                                   "as it is, and no stars are shown from it.")
            return cls._set_aside(path, exc)
        puzzles, problems = _read_puzzles(data["puzzles"])
        messages = []
        keep = None
        if version > VERSION:
            keep = f"it was written by a newer Lineup (save file version {version})"
            messages.append(f"Your save file was written by a newer version of Lineup (version "
                            f"{version}; this one knows version {VERSION}). It is kept as it "
                            "is and nothing from this session will be saved over it; update "
                            "Lineup to go on from it.")
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more"
                                                if len(problems) > 3 else "")
            one = len(problems) == 1
            messages.append(f"{len(problems)} entr{'y' if one else 'ies'} of your save file "
                            f"could not be read and {'was' if one else 'were'} left out: "
                            f"{shown}.")
        return cls(puzzles=puzzles, path=path, message=" ".join(messages) or None, keep=keep)

    @classmethod
    def _set_aside(cls, path: Path, exc: Exception) -> Progress:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, aside)
        except OSError as err:  # cannot move it: keep it, and do not write over it either
            return cls(path=path, keep="it could not be read",
                       message=f"Your save file could not be read ({exc}) nor moved aside "
                               f"({err.strerror or err}); it is left as it is and nothing "
                               "from this session will be saved over it.")
        return cls(path=path, message=f"Your save file could not be read ({exc}); it was "
                                      f"moved to {aside.name} and play starts fresh.")

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
        """Write the file, unless it must be kept (see ``load``): then progress stays in
        memory for this session only (the player was told when the file was read)."""
        if self.keep is not None:
            return
        payload = {"version": VERSION, "puzzles": self.puzzles}
        atomic_write(self.path or progress_path(), json.dumps(payload, indent=2) + "\n")


def _version(data: Any) -> int:
    """The file's version; ``ValueError`` when it is not a progress file at all."""
    if not isinstance(data, dict) or not isinstance(data.get("puzzles"), dict):
        raise ValueError("no `puzzles` table")
    version = data.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"unknown version {version!r}")
    return version


def _read_puzzles(raw: dict[Any, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The entries that read, and a note for each that does not (left out)."""
    out: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for pid, entry in raw.items():
        try:
            out[str(pid)] = _read_entry(entry)
        except (TypeError, ValueError) as exc:
            problems.append(f"{pid!r} ({exc})")
    return out, problems


def _read_entry(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    stars = entry.get("stars", 0)
    if not isinstance(stars, int) or isinstance(stars, bool):
        raise TypeError("stars are not a number")
    circuit = entry.get("circuit", [])
    if not isinstance(circuit, list) or not all(isinstance(q, dict) for q in circuit):
        raise TypeError("the circuit is not a list of questions")
    return {"stars": max(0, min(MAX_STARS, stars)),
            "circuit": [{str(k): str(v) for k, v in q.items()} for q in circuit]}


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
