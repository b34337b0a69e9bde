"""A teacher's pack: a folder of puzzle files and an optional ``pack.yaml``.

``read_pack(folder) -> (Pack, puzzles, problems)`` never raises for anything inside the folder:
every problem is a located ``Problem`` (``file:line:col: message``), all of them at once, so a
broken pack says what is wrong instead of only "has no puzzles that load". It reads only
regular files (a FIFO named ``*.yaml`` could block a reader forever), at most
``engine.puzzle.reader.MAX_BYTES`` each, and never imports torch, Textual or Rich.

``pack.yaml``::

    title: Interpretability, week 3
    order: [induction-previous-token, induction-head]
    seed: 2024
    hints: true             # false hides the hints
    solutions_hidden: true  # (or solutions: false) students cannot reveal the solutions

Booleans must be YAML booleans. A quoted ``"false"`` (or ``"no"``, ``"off"``) is read as
false and reported; anything else that is not a boolean is reported and read as the stricter
choice (hints and solutions hidden), never silently as true. A pack.yaml that does not read at
all hides hints and solutions too, until it is fixed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACK_FILES = ("pack.yaml", "pack.yml")
PACK_KEYS = ("title", "order", "seed", "hints", "solutions", "solutions_hidden")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass
class Pack:
    """A teacher's pack (``pack.yaml`` next to puzzle files) or the shipped puzzles.
    ``problems`` holds each problem as a plain ``file:line:col: message`` line."""

    title: str = "Lineup"
    hints: bool = True  # may students see hints?
    solutions: bool = True  # may students reveal the reference solution?
    seed: int | None = None
    path: Path | None = None
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading files


class NotRegularFile(OSError):
    """The path is a folder, FIFO, socket or device: never opened for reading."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.filename = str(path)
        self.kind = kind

    def __str__(self) -> str:
        return self.args[0]


class FileTooLarge(OSError):
    def __init__(self, path: str | Path, limit: int) -> None:
        super().__init__(f"{path} is larger than {limit // 1024} KiB")
        self.filename = str(path)
        self.limit = limit

    def __str__(self) -> str:
        return self.args[0]


def kind_of(mode: int) -> str:
    """A file type in words, for messages."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Raises ``FileNotFoundError`` when absent (or a dangling link), ``NotRegularFile`` for a
    folder, FIFO, socket or device (opened, if at all, without blocking), ``FileTooLarge``
    past the limit, and ``OSError`` for anything the system refuses."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(path, kind_of(st.st_mode))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)  # it may have been swapped between the two calls
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, kind_of(st.st_mode))
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise FileTooLarge(path, limit)
    return data


def read_doc(path: str | Path) -> Any:
    """``engine.puzzle.read_yaml`` for a path that may be anything: the file's bytes are read
    here (regular files only, size-capped) so a FIFO never blocks, and every failure is a
    problem in the returned ``Doc``."""
    from engine.puzzle import Doc, Problem, read_yaml
    from engine.puzzle.reader import MAX_BYTES

    try:
        raw = read_regular(path, MAX_BYTES)
    except FileTooLarge:
        raw = b"x" * (MAX_BYTES + 1)  # read_yaml words the size problem
    except FileNotFoundError:
        doc = Doc(path=str(path))
        dangling = os.path.islink(path)
        doc.problems.append(Problem(str(path), 1, 1, "a link to a file that does not exist"
                                    if dangling else "no such file"))
        return doc
    except OSError as exc:
        doc = Doc(path=str(path))
        what = str(exc) if isinstance(exc, NotRegularFile) else exc.strerror or str(exc)
        why = f"not a puzzle file: it is {exc.kind}" if isinstance(exc, NotRegularFile) else \
            f"cannot read: {what}"
        doc.problems.append(Problem(str(path), 1, 1, why))
        return doc
    return read_yaml(path, text=raw)


def load_puzzle_file(path: str | Path) -> tuple[Any, list[Any]]:
    """(puzzle or None, problems) for one file: ``engine.puzzle.load_puzzle`` without the
    exception and without ever opening a non-regular file."""
    from engine.puzzle import Problem, check_puzzle, parse_puzzle

    doc = read_doc(path)
    if doc.problems:
        return None, sorted(doc.problems)
    puzzle, problems = parse_puzzle(doc)
    if puzzle is not None:
        problems = problems + check_puzzle(puzzle, doc)
    if problems or puzzle is None:
        return None, sorted(problems) or [Problem(str(path), 1, 1, "not a puzzle")]
    return puzzle, []


# --------------------------------------------------------------------------- the pack


def _flag(doc: Any, key: str, default: bool, problems: list[Any], *, strict: bool) -> bool:
    """A pack.yaml boolean: a real YAML bool; a quoted yes/no word is read as meant and
    reported; anything else is reported and read as ``strict`` (the choice that hides hints
    or solutions: False for ``hints``, True for ``solutions_hidden``)."""
    from engine.puzzle import Problem

    data = doc.data
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, bool):
        return value
    line, col = doc.where((key,))
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        meant = value.strip().lower() in _TRUE
        problems.append(Problem(doc.path, line, col,
                                f"`{key}` is the text {value!r}, not a boolean: write "
                                f"{str(meant).lower()} without quotes (read as "
                                f"{str(meant).lower()})"))
        return meant
    problems.append(Problem(doc.path, line, col,
                            f"`{key}` must be true or false, not {value!r} (read as "
                            f"{str(strict).lower()}, which hides them)"))
    return strict


def _read_meta(folder: Path, problems: list[Any]) -> tuple[Pack, list[str], Any]:
    """The pack's settings, its ``order`` list, and the pack.yaml Doc (None when absent or
    unreadable) for locating later problems."""
    from engine.limits import MAX_TITLE, too_long
    from engine.puzzle import Problem, did_you_mean

    pack = Pack(title=folder.name or str(folder), path=folder)
    found = [folder / name for name in PACK_FILES if os.path.lexists(folder / name)]
    if not found:
        return pack, [], None
    doc = read_doc(found[0])
    if len(found) > 1:
        problems.append(Problem(str(found[1]), 1, 1,
                                f"both {PACK_FILES[0]} and {PACK_FILES[1]}: only "
                                f"{found[0].name} is read"))
    problems.extend(doc.problems)
    if doc.data is None and not doc.problems:  # an empty pack.yaml: every default holds
        return pack, [], None
    if not isinstance(doc.data, dict):
        # unreadable settings: the stricter choice, never hints or solutions by accident
        pack.hints = pack.solutions = False
        problems.append(Problem(doc.path, 1, 1, "pack.yaml must be a table of settings "
                                                "(title, order, seed, hints, solutions_hidden); "
                                                "until it reads, hints and solutions are "
                                                "hidden"))
        return pack, [], None
    data = doc.data
    for key in data:
        if key not in PACK_KEYS:
            line, col = doc.where((key,), key=True)
            problems.append(Problem(doc.path, line, col, f"unknown setting {key!r}"
                                    f"{did_you_mean(str(key), PACK_KEYS)}"))
    if "title" in data:
        title = data["title"].strip() if isinstance(data["title"], str) else ""
        long = too_long(title, MAX_TITLE)
        if title and not long:
            pack.title = title
        else:
            line, col = doc.where(("title",))
            problems.append(Problem(doc.path, line, col, f"`title` {long}" if long else
                                    "`title` must be a non-empty text"))
    pack.hints = _flag(doc, "hints", True, problems, strict=False)
    shown = _flag(doc, "solutions", True, problems, strict=False)
    hidden = _flag(doc, "solutions_hidden", False, problems, strict=True)
    pack.solutions = shown and not hidden
    if "seed" in data:
        seed = data["seed"]
        if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32:
            pack.seed = seed
        else:
            line, col = doc.where(("seed",))
            problems.append(Problem(doc.path, line, col,
                                    f"`seed` must be a whole number from 0 to 2**32-1, not "
                                    f"{seed!r}; the puzzles' own seeds are used"))
    order: list[str] = []
    if "order" in data:
        raw = data["order"]
        if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            order = list(raw)
            for k, pid in enumerate(order):
                if too_long(pid):
                    line, col = doc.where(("order", k))
                    problems.append(Problem(doc.path, line, col,
                                            f"`order` entry {k + 1} {too_long(pid)}"))
            order = [pid for pid in order if not too_long(pid)]
        else:
            line, col = doc.where(("order",))
            problems.append(Problem(doc.path, line, col, "`order` must be a list of puzzle "
                                                         "ids; the default order is used"))
    return pack, order, doc


def read_pack(folder: str | Path) -> tuple[Pack, list[Any], list[Any]]:
    """Read a pack folder: (Pack, puzzles in the pack's order, problems).

    Raises ``UsageError`` only when ``folder`` is not a folder. Everything wrong inside it is
    a located problem: an unreadable or broken puzzle file (skipped), a FIFO, folder or dangling
    link named ``*.yaml``, two files with one puzzle id (the second skipped), a bad setting in
    pack.yaml, an id in ``order`` that no puzzle has. ``Pack.problems`` holds them as lines."""
    from engine.errors import UsageError
    from engine.puzzle import Problem, did_you_mean

    folder = Path(folder).expanduser()
    try:
        is_dir = stat.S_ISDIR(os.stat(folder).st_mode)
    except OSError:
        is_dir = False
    if not is_dir:
        raise UsageError(f"pack folder {folder} does not exist" if not os.path.lexists(folder)
                         else f"pack folder {folder} is not a folder")
    problems: list[Problem] = []
    pack, order, doc = _read_meta(folder, problems)
    puzzles: list[Any] = []
    first_file: dict[str, Path] = {}
    for path in _candidates(folder, problems):
        puzzle, found = load_puzzle_file(path)
        problems.extend(found)
        if puzzle is None:
            continue
        if puzzle.id in first_file:
            line, col = _id_mark(path)
            problems.append(Problem(str(path), line, col,
                                    f"puzzle id {puzzle.id!r} is already used by "
                                    f"{first_file[puzzle.id].name}; this file is skipped"))
            continue
        first_file[puzzle.id] = path
        if pack.seed is not None:
            puzzle.prompts.seed = pack.seed
            puzzle.prompts.heldout_seed = pack.seed + 1
        puzzles.append(puzzle)
    for k, pid in enumerate(order):
        if pid not in first_file and doc is not None:
            line, col = doc.where(("order", k))
            problems.append(Problem(doc.path, line, col,
                                    f"`order` names {pid!r}, which no puzzle in the pack has"
                                    f"{did_you_mean(pid, first_file)}"))
    rank = {pid: k for k, pid in enumerate(order)}
    puzzles.sort(key=lambda p: (rank.get(p.id, len(rank)), str(p.ladder), p.order, p.id))
    problems = sorted(set(problems), key=lambda p: (p.path, p.line, p.col, p.message))
    pack.problems = [str(p) for p in problems]
    return pack, puzzles, problems


def _candidates(folder: Path, problems: list[Any]) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` entry under ``folder`` except pack.yaml and words.yaml, in
    path order; entries that are not regular files become problems here (never opened)."""
    from engine.puzzle import Problem

    out: list[Path] = []
    for root, dirs, files in os.walk(folder, onerror=None, followlinks=False):
        dirs.sort()
        base = Path(root)
        for name in sorted(files + [d for d in dirs if d.endswith((".yaml", ".yml"))]):
            path = base / name
            if not name.endswith((".yaml", ".yml")) or name == "words.yaml":
                continue
            if base == folder and name in PACK_FILES:
                continue
            try:
                st = os.stat(path)
            except OSError:
                problems.append(Problem(str(path), 1, 1, "a link to a file that does not "
                                                         "exist; skipped"))
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(Problem(str(path), 1, 1, f"not a puzzle file: it is "
                                                         f"{kind_of(st.st_mode)}; skipped"))
                continue
            out.append(path)
        if len(out) > 1000:
            problems.append(Problem(str(folder), 1, 1, "more than 1000 files: the rest are "
                                                       "not read"))
            break
    return sorted(out)


def _id_mark(path: Path) -> tuple[int, int]:
    doc = read_doc(path)
    return doc.where(("id",)) if isinstance(doc.data, dict) else (1, 1)


def load_pack(pack: str | Path | None) -> tuple[Pack, list[Any]]:
    """What ``game.app.load_pack`` returns: the shipped puzzles (``pack`` None), or a pack
    folder's puzzles. Raises ``UsageError`` when the pack has no puzzle that loads, naming the
    first problems (the rest are in ``Pack.problems`` for the game to show)."""
    from engine.errors import UsageError
    from engine.puzzle import Problem, load_all

    if pack is None:
        problems: list[Problem] = []
        puzzles = load_all(problems)
        return Pack(problems=[str(p) for p in problems]), puzzles
    meta, puzzles, problems = read_pack(pack)
    if not puzzles:
        if not problems:
            raise UsageError(f"pack folder {pack} has no puzzle files (*.yaml)")
        more = len(problems) - 1
        raise UsageError(f"pack folder {pack} has no puzzles that load: {problems[0]}"
                         + (f" (and {more} more problem{'s' if more > 1 else ''}; run "
                            f"`lineup validate {pack}`)" if more else ""))
    return meta, puzzles
