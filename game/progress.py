"""The player's saved progress: stars and the last circuit of each puzzle, per model.

One JSON file, ``data_dir()/progress.json`` (version 2)::

    {"version": 2,
     "models": {"<model>": {"<puzzle id>": {"stars": N, "circuit": [{round, asker, card,
                                                                     responder}], "saved": T}}}}

``<model>`` is the model block a puzzle was played with (``gpt2``, ``toy``, ...), so stars won
on the toy never show on GPT-2's menu. A version-1 file (``{"puzzles": {...}}``, no model) is
migrated on load: its entries go under ``legacy_model`` (by default GPT-2 when it is cached,
else the toy: the models version 1 could play).

Why it is built this way (issue 14: nothing lost, nothing crashes):

- The file is read as bytes from a regular file only (never a FIFO or a device: opening one
  could hang), at most ``MAX_BYTES``; then decoded and parsed defensively. Whatever cannot be
  read is *set aside*, never deleted: moved (a whole unreadable file) or copied (a file with
  some bad entries) to ``progress.json.broken-<time>``, with a ``.reason`` file beside it.
- Every field of every entry is validated here, so no screen ever sees a missing ``card``, a
  string for stars or an extra field; what is dropped is named in ``problems``.
- Every save takes a lock, re-reads the file and merges (best stars per puzzle per model, the
  newest circuit), so two games on one home both keep their stars.
- Writes are atomic (temp file, fsync, ``os.replace``, fsync of the folder); temp files left by
  a killed save are removed once they are a minute old or their owner is gone.

Never imports Textual or torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.limits import usable_name
from engine.pack import FileTooLarge, NotRegularFile, read_regular

VERSION = 2
MAX_STARS = 3
FILE_NAME = "progress.json"
LEGACY_MODEL = "toy"
MAX_BYTES = 8 * 1024 * 1024  # a save of every puzzle on every model is a few kilobytes
MAX_QUESTIONS = 200  # per circuit
LOCK_WAIT_S = 5.0
STALE_TMP_S = 60.0
QUESTION_FIELDS = ("round", "asker", "card", "responder")
ENTRY_FIELDS = ("stars", "circuit", "saved")

_TMP = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[^.]*\.tmp$")


def default_legacy_model() -> str:
    """Where a version-1 save's entries (no model recorded) belong: they were won before
    SmolLM2 was playable, on GPT-2 when it was cached and on the toy otherwise. Disk only."""
    try:
        from engine.models import gpt2_cache_dir

        return "gpt2" if gpt2_cache_dir() is not None else LEGACY_MODEL
    except Exception:  # a broken cache folder must not cost the save
        return LEGACY_MODEL


def progress_path() -> Path:
    from engine.paths import data_dir

    return data_dir() / FILE_NAME


# --------------------------------------------------------------------------- small file tools


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old file or the new one.
    The temp file's name carries our pid, so a later run can tell a dead save's leftovers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
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


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_tmp(folder: Path, name: str = FILE_NAME, *, max_age_s: float = STALE_TMP_S,
                    now: float | None = None) -> int:
    """Remove ``.<name>.*.tmp`` files a killed save left: those older than ``max_age_s``, or
    whose owner pid (in the name) is no longer running. Returns how many went."""
    now = time.time() if now is None else now
    gone = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for entry in names:
        match = _TMP.match(entry)
        if not match or match["name"] != name:
            continue
        path = folder / entry
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        pid = int(match["pid"]) if match["pid"] else None
        old = now - st.st_mtime > max_age_s
        orphan = pid is not None and pid != os.getpid() and not _pid_alive(pid)
        if old or orphan:
            with contextlib.suppress(OSError):
                path.unlink()
                gone += 1
    return gone


@contextlib.contextmanager
def _locked(path: Path, wait_s: float | None = None) -> Iterator[bool]:
    """Hold ``<path>.lock`` (an advisory ``flock``, released by the system if we are killed)
    for the length of a read-merge-write. Yields False when another process kept it for
    ``wait_s``; True when held, or when locking is not possible here (then merging alone
    still protects the other game's stars in all but a race of milliseconds)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield True
        return
    from engine.paths import open_lock

    lock = path.with_name(path.name + ".lock")
    try:
        fd = open_lock(lock)
    except OSError:  # unwritable, or a symlink (never followed): merging alone protects
        yield True
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            yield True
            return
        deadline = time.monotonic() + (LOCK_WAIT_S if wait_s is None else wait_s)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.02)
            except OSError:  # a file system without locks
                yield True
                return
        try:
            yield True
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- entries


@dataclass
class Entry:
    """One puzzle on one model: the best stars, and the last circuit with when it was saved."""

    stars: int = 0
    circuit: list[dict[str, str]] = field(default_factory=list)
    saved: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"stars": self.stars, "circuit": [dict(q) for q in self.circuit],
                "saved": self.saved}


def _text(value: Any) -> str | None:
    """A usable name: a non-empty string within ``engine.limits.MAX_NAME``, the limit every
    puzzle id and name is read with, so whatever validates is kept."""
    return usable_name(value)


def read_question(raw: Any) -> tuple[dict[str, str] | None, list[str]]:
    """One saved question, cleaned: exactly round/asker/card (``question`` is read as
    ``card``) and an optional responder, all strings. Returns (question or None, notes)."""
    if not isinstance(raw, dict):
        return None, [f"a question is {type(raw).__name__}, not an object"]
    notes: list[str] = []
    data = dict(raw)
    if "card" not in data and "question" in data:
        data["card"] = data.pop("question")
    out: dict[str, str] = {}
    for name in ("round", "asker", "card"):
        if name not in data:
            return None, [f"a question has no `{name}`"]
        value = _text(data[name])
        if value is None:
            return None, [f"a question's `{name}` is not a name ({_short(data[name])})"]
        out[name] = value
    if data.get("responder") is not None:
        value = _text(data["responder"])
        if value is None:
            return None, [f"a question's `responder` is not a name "
                          f"({_short(data['responder'])})"]
        out["responder"] = value
    extra = sorted(str(k) for k in data if k not in QUESTION_FIELDS)
    if extra:
        notes.append(f"dropped unknown question field{'s' if len(extra) > 1 else ''} "
                     + ", ".join(_short(k) for k in extra))
    return out, notes


def read_entry(raw: Any) -> tuple[Entry | None, list[str]]:
    """One saved entry, every field checked. Returns (entry or None when nothing of it is
    usable, notes on what was dropped). The caller keeps the raw entry when there are notes."""
    if not isinstance(raw, dict):
        return None, [f"it is {type(raw).__name__}, not an object"]
    notes: list[str] = []
    entry = Entry()
    stars = raw.get("stars", 0)
    if isinstance(stars, int) and not isinstance(stars, bool):
        entry.stars = max(0, min(MAX_STARS, stars))
        if entry.stars != stars:
            notes.append(f"stars {stars} out of 0..{MAX_STARS}")
    else:
        notes.append(f"stars are not a whole number ({_short(stars)})")
    circuit = raw.get("circuit", [])
    if isinstance(circuit, list):
        for q in circuit[:MAX_QUESTIONS]:
            clean, why = read_question(q)
            notes.extend(why)
            if clean is not None and clean not in entry.circuit:
                entry.circuit.append(clean)
        if len(circuit) > MAX_QUESTIONS:
            notes.append(f"only the first {MAX_QUESTIONS} questions kept")
    else:
        notes.append(f"the circuit is {type(circuit).__name__}, not a list")
    saved = raw.get("saved", 0.0)
    if isinstance(saved, (int, float)) and not isinstance(saved, bool) and math.isfinite(saved):
        entry.saved = float(saved)
    else:
        notes.append("the save time is not a number")
    extra = sorted(str(k) for k in raw if k not in ENTRY_FIELDS)
    if extra:
        notes.append(f"dropped unknown field{'s' if len(extra) > 1 else ''} "
                     + ", ".join(_short(k) for k in extra))
    return entry, notes


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- reading a file


@dataclass
class _Read:
    """What one read of the file found. ``state``: missing | ok | newer | error (could not be
    read now: leave it) | broken (not a progress file: set it aside)."""

    state: str
    entries: dict[str, dict[str, Entry]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # entries left out or cleaned
    reason: str = ""
    version: int = VERSION


def _decode(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4096]:
        raise ValueError("it is not UTF-8 text (UTF-16 or binary)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _read_file(path: Path, legacy_model: str) -> _Read:
    try:
        data = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        return _Read("missing")
    except NotRegularFile as exc:
        return _Read("broken", reason=f"it is {exc.kind}, not a file")
    except FileTooLarge:
        return _Read("broken", reason=f"it is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    except OSError as exc:
        return _Read("error", reason=exc.strerror or str(exc))
    if not data.strip():
        return _Read("broken", reason="it is empty")
    try:
        doc = json.loads(_decode(data), parse_constant=_no_constant)
    except RecursionError:
        return _Read("broken", reason="it is nested too deeply to be a save file")
    except ValueError as exc:
        return _Read("broken", reason=str(exc) if str(exc).startswith("it ")
                     else f"it is not JSON ({exc})")
    if not isinstance(doc, dict):
        return _Read("broken", reason=f"it holds {type(doc).__name__}, not a progress table")
    version = doc.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return _Read("broken", reason=f"unknown version {_short(version)}")
    if version == 1 or ("models" not in doc and isinstance(doc.get("puzzles"), dict)):
        table = doc.get("puzzles")
        if not isinstance(table, dict):
            return _Read("broken", reason="it has no `puzzles` table")
        found = _Read("ok", version=version)
        found.entries[legacy_model] = _read_table(table, found.notes, legacy_model)
    else:
        models = doc.get("models")
        if not isinstance(models, dict):
            if version > VERSION:
                return _Read("newer", version=version)
            return _Read("broken", reason="it has no `models` table")
        found = _Read("ok", version=version)
        for model, table in models.items():
            if _text(model) is None or not isinstance(table, dict):
                found.notes.append(f"model {_short(model)} left out (not a table of puzzles)")
                continue
            found.entries[model] = _read_table(table, found.notes, model)
    extra = sorted(str(k) for k in doc if k not in ("version", "models", "puzzles"))
    if extra and version <= VERSION:
        found.notes.append("dropped unknown top-level field" + ("s " if len(extra) > 1 else " ")
                           + ", ".join(_short(k) for k in extra))
    if version > VERSION:
        found.state = "newer"
    return found


def _read_table(table: dict[str, Any], notes: list[str], model: str) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    where = f" (on {model})" if model else ""
    for pid, raw in table.items():
        if _text(pid) is None:
            notes.append(f"an entry with the id {_short(pid)}{where} left out (not an id)")
            continue
        entry, why = read_entry(raw)
        if entry is None:
            notes.append(f"{pid!r}{where} left out: {'; '.join(why)}")
            continue
        if why:
            notes.append(f"{pid!r}{where}: {'; '.join(why)}")
        out[pid] = entry
    return out


def _merge(into: dict[str, dict[str, Entry]], other: dict[str, dict[str, Entry]]) -> None:
    """Fold ``other`` into ``into``: best stars, newest circuit (``into`` wins a tie)."""
    for model, table in other.items():
        mine = into.setdefault(model, {})
        for pid, theirs in table.items():
            have = mine.get(pid)
            if have is None:
                mine[pid] = Entry(theirs.stars, [dict(q) for q in theirs.circuit], theirs.saved)
                continue
            have.stars = max(have.stars, theirs.stars)
            if theirs.saved > have.saved:
                have.circuit = [dict(q) for q in theirs.circuit]
                have.saved = theirs.saved


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.broken-{stamp}")
    n = 1
    while os.path.lexists(aside) or os.path.lexists(f"{aside}.reason"):
        n += 1
        aside = path.with_name(f"{path.name}.broken-{stamp}-{n}")
    return aside


def _write_reason(aside: Path, path: Path, reason: str) -> None:
    with contextlib.suppress(OSError):
        Path(f"{aside}.reason").write_text(
            f"Lineup set this file aside on {time.strftime('%Y-%m-%d %H:%M:%S')}.\n"
            f"It was {path}.\nWhy: {reason}\n", encoding="utf-8")


# --------------------------------------------------------------------------- the API


@dataclass
class Progress:
    """Stars and circuits per model per puzzle id. ``problems`` lists, in plain words, what
    went wrong reading or saving (for the UI to show); ``keep`` is a reason when the file on
    disk must not be written over (unreadable right now, or from a newer Lineup)."""

    entries: dict[str, dict[str, Entry]] = field(default_factory=dict)
    path: Path | None = None
    problems: list[str] = field(default_factory=list)
    keep: str | None = None
    read_only: bool = False
    model: str | None = None  # the default model key for calls that name none
    legacy_model: str = LEGACY_MODEL
    _aside_for: str | None = field(default=None, repr=False)  # notes already set aside

    @property
    def message(self) -> str | None:
        """Every problem in one paragraph (what the game shows today), or None."""
        return " ".join(self.problems) or None

    # ------------------------------------------------------------------ reading

    @classmethod
    def load(cls, path: Path | None = None, *, read_only: bool = False,
             legacy_model: str | None = None, model: str | None = None) -> Progress:
        """Read the save file; never raises, never blocks on a FIFO.

        - absent: empty progress;
        - cannot be read right now (permissions, a flaky disk): left as it is, and this session
          does not save over it;
        - from a newer Lineup: read as far as it goes and kept as it is (no saving over it);
        - not a save file at all (not UTF-8, not JSON, too deep, too big, not a file): moved to
          ``progress.json.broken-<time>`` with a ``.reason``; play starts fresh;
        - some entries or fields unusable: the file is copied aside as it was, the rest is
          used, and the cleaned file saved.

        With ``read_only`` (``lineup list``) nothing on disk is moved, copied or written.
        A version-1 file's entries go under ``legacy_model`` (default: see
        ``default_legacy_model``)."""
        path = Path(path) if path is not None else progress_path()
        legacy_model = legacy_model or default_legacy_model()
        self = cls(path=path, read_only=read_only, legacy_model=legacy_model, model=model)
        found = _read_file(path, legacy_model)
        if found.state == "missing":
            self._clean_tmp()
            return self
        if found.state == "error":
            self.keep = f"it could not be read ({found.reason})"
            self.problems.append(f"Your save file {path} could not be read ({found.reason}). "
                                 "It is left as it is and nothing from this session will be "
                                 "saved over it; fix that and restart Lineup to see your "
                                 "progress.")
            return self
        if found.state == "broken":
            if read_only:
                self.keep = "it could not be read"
                self.problems.append(f"Your save file {path} is damaged: {found.reason}. "
                                     "It is left as it is and no stars are shown from it.")
                return self
            self._set_aside(found.reason, move=True)
            self._clean_tmp()
            return self
        self.entries = found.entries
        if found.state == "newer":
            self.keep = f"it was written by a newer Lineup (version {found.version})"
            self.problems.append(f"Your save file was written by a newer Lineup (version "
                                 f"{found.version}; this one knows version {VERSION}). It is "
                                 "kept as it is and nothing from this session will be saved "
                                 "over it; update Lineup to go on from it.")
            return self
        if found.notes:
            self._report_notes(found.notes)
            if not read_only:
                self._aside_for = "; ".join(found.notes)
                if self._set_aside(self._aside_for, move=False) is not None:
                    self.save()
        elif found.version < VERSION and not read_only:
            self.save()  # migrate now, while the old layout is still what it was
        self._clean_tmp()
        return self

    def _report_notes(self, notes: list[str]) -> None:
        shown = "; ".join(notes[:3]) + (f"; and {len(notes) - 3} more" if len(notes) > 3
                                        else "")
        kept = "" if self.read_only else " A copy of the file as it was is kept beside it."
        self.problems.append(f"Parts of your save file could not be used: {shown}.{kept}")

    def _set_aside(self, reason: str, *, move: bool, saving: bool = False) -> Path | None:
        """Move (a whole unreadable file) or copy (one with bad entries) the save file to
        ``progress.json.broken-<time>``, with a ``.reason`` file; say so in ``problems``."""
        path = self.path or progress_path()
        aside = _aside_name(path)
        try:
            if move:
                os.replace(path, aside)
            else:
                shutil.copy2(path, aside)
        except OSError as err:
            self.keep = "it could not be read nor set aside"
            self.problems.append(f"Your save file {path} could not be used ({reason}) nor set "
                                 f"aside ({err.strerror or err}); it is left as it is and "
                                 "nothing from this session will be saved over it.")
            return None
        _write_reason(aside, path, reason)
        if move:
            then = ("this session's progress is saved in a new file" if saving
                    else "play starts fresh")
            self.problems.append(f"Your save file could not be read ({reason}); it was moved "
                                 f"to {aside.name} (see {aside.name}.reason) and {then}.")
        return aside

    def _clean_tmp(self) -> None:
        if not self.read_only:
            path = self.path or progress_path()
            clean_stale_tmp(path.parent, path.name)

    def _key(self, model: str | None) -> str:
        return model or self.model or self.legacy_model

    def entry(self, puzzle_id: str, model: str | None = None) -> Entry | None:
        return self.entries.get(self._key(model), {}).get(puzzle_id)

    def stars(self, puzzle_id: str, model: str | None = None) -> int:
        """Stars earned on this puzzle with this model (0 when never solved there)."""
        found = self.entry(puzzle_id, model)
        return found.stars if found else 0

    def circuit(self, puzzle_id: str, model: str | None = None) -> list[dict[str, str]]:
        """The last circuit saved for this puzzle on this model: a fresh list of questions,
        each exactly {round, asker, card[, responder]} with str values."""
        found = self.entry(puzzle_id, model)
        return [dict(q) for q in found.circuit] if found else []

    def total_stars(self, model: str | None = None) -> int:
        return sum(e.stars for e in self.entries.get(self._key(model), {}).values())

    def models(self) -> list[str]:
        return sorted(self.entries)

    @property
    def puzzles(self) -> dict[str, dict[str, Any]]:
        """The default model's entries as plain dicts (the version-1 view)."""
        return {pid: e.to_json() for pid, e in self.entries.get(self._key(None), {}).items()}

    # ------------------------------------------------------------------ writing

    def record(self, puzzle_id: str, model: str | None = None, *, stars: int | None = None,
               circuit: list[dict[str, str]] | None = None) -> bool:
        """Keep the best stars ever earned and the latest circuit, and save at once.
        Returns False when the save did not reach the disk (see ``problems``)."""
        table = self.entries.setdefault(self._key(model), {})
        entry = table.setdefault(puzzle_id, Entry())
        if stars is not None:
            entry.stars = max(entry.stars, max(0, min(MAX_STARS, int(stars))))
        if circuit is not None:
            questions = []
            for q in circuit:
                clean, _ = read_question(dict(q))
                if clean is not None and clean not in questions:
                    questions.append(clean)
            entry.circuit = questions
            entry.saved = max(time.time(), entry.saved + 1e-6)
        return self.save()

    def save(self) -> bool:
        """Merge with what is on disk now and write, under the lock. Nothing is written when
        the file must be kept (see ``load``) or this is a read-only view; a failure to write
        is a message, never an exception. Returns whether the file now holds our progress."""
        if self.read_only or self.keep is not None:
            return False
        path = self.path or progress_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(path) as held:
                if not held:
                    self._once("Another Lineup is holding the save file; this session's "
                               "progress is kept in memory and saved at the next change.")
                    return False
                disk = _read_file(path, self.legacy_model)
                if disk.state == "newer":
                    self.keep = f"a newer Lineup wrote it (version {disk.version})"
                    self._once("A newer Lineup saved over your progress meanwhile; this "
                               "session stops saving so as not to undo it.")
                    return False
                if disk.state == "error":
                    self._once(f"Your save file could not be re-read before saving "
                               f"({disk.reason}); nothing was written.")
                    return False
                if disk.state == "broken":
                    if self._set_aside(disk.reason, move=True, saving=True) is None:
                        return False
                elif disk.notes and "; ".join(disk.notes) != self._aside_for:
                    # another writer left entries we cannot use: keep a copy of them
                    self._aside_for = "; ".join(disk.notes)
                    self._set_aside(self._aside_for, move=False)
                if disk.state == "ok":
                    _merge(self.entries, disk.entries)
                payload = {"version": VERSION, "models": {
                    model: {pid: e.to_json() for pid, e in sorted(table.items())}
                    for model, table in sorted(self.entries.items())}}
                atomic_write(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
                clean_stale_tmp(path.parent, path.name)
        except OSError as exc:
            self._once(f"Your progress could not be saved ({exc.strerror or exc}); it is kept "
                       "in memory and saved at the next change.")
            return False
        return True

    def _once(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)


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
