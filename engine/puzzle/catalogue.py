"""Finding and loading Lineup files: the shipped puzzles in ladder order, a puzzle by id or
path, a player's circuit file. Loading runs the shape parser and the tokenizer-free meaning
checks, and refuses a file with any problem (``PuzzleError`` lists them all)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from engine.errors import LineupError, UsageError
from engine.limits import too_long
from engine.puzzle.checks import check_puzzle
from engine.puzzle.files import Circuit, Puzzle
from engine.puzzle.parts import LADDERS, Problem
from engine.puzzle.reader import read_yaml
from engine.puzzle.shape import parse_circuit, parse_puzzle
from engine.puzzle.suggest import did_you_mean


class PuzzleError(LineupError):
    """A puzzle or circuit file has problems; ``problems`` lists them all."""

    title = "Puzzle error"

    def __init__(self, problems: Sequence[Problem], what: str = "file") -> None:
        self.problems = list(problems)
        first = str(self.problems[0]) if self.problems else f"bad {what}"
        more = len(self.problems) - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''}; run `lineup validate`)" \
            if more > 0 else ""
        super().__init__(first + extra)


# --------------------------------------------------------------------------- loading


def shipped_dir() -> Path:
    from puzzles import PUZZLES_DIR

    return PUZZLES_DIR


def puzzle_files(root: Path | None = None) -> list[Path]:
    """Every puzzle file under ``root`` (default: the shipped puzzles), sorted by path."""
    root = root or shipped_dir()
    return sorted(
        p for p in root.rglob("*")
        if p.suffix in (".yaml", ".yml") and p.name != "words.yaml" and p.is_file()
    )


def load_puzzle(path: str | Path) -> Puzzle:
    """Read one puzzle file and check it (everything that needs no tokenizer)."""
    doc = read_yaml(path)
    puzzle, problems = parse_puzzle(doc)
    if puzzle is not None:
        problems = problems + check_puzzle(puzzle, doc)
    if problems or puzzle is None:
        raise PuzzleError(sorted(problems) or [Problem(str(path), 1, 1, "not a puzzle")],
                          "puzzle")
    return puzzle


def _sort_key(p: Puzzle) -> tuple[int, int, str]:
    return (LADDERS.index(p.ladder), p.order, p.id)


def load_all(problems: list[Problem] | None = None) -> list[Puzzle]:
    """The shipped puzzles in ladder order. A broken file raises ``PuzzleError`` unless a
    ``problems`` list is given, in which case it is skipped and its problems appended."""
    out = []
    for path in puzzle_files():
        try:
            out.append(load_puzzle(path))
        except PuzzleError as exc:
            if problems is None:
                raise
            problems.extend(exc.problems)
    return sorted(out, key=_sort_key)


def find_puzzle(id_or_path: str | Path) -> Puzzle:
    """A shipped puzzle by id, or any puzzle file by path."""
    text = str(id_or_path)
    if looks_like_id(text) and too_long(text):  # never handed to the file system
        raise UsageError(f"no puzzle has that id: it {too_long(text)}")
    path = Path(text).expanduser()
    if path.is_file():
        return load_puzzle(path)
    if path.suffix in (".yaml", ".yml") or "/" in text:
        raise UsageError(f"puzzle file {text} does not exist")
    ids = {}
    for file in puzzle_files():
        doc = read_yaml(file)
        if isinstance(doc.data, dict) and isinstance(doc.data.get("id"), str):
            ids[doc.data["id"]] = file
    if text in ids:
        return load_puzzle(ids[text])
    raise UsageError(f"no puzzle called {text!r}{did_you_mean(text, ids)}; "
                     "`lineup list` shows them all")


def looks_like_id(text: str) -> bool:
    """An id rather than a path: no folder separator and no YAML suffix."""
    return "/" not in text and os.sep not in text and not text.endswith((".yaml", ".yml"))


def load_circuit(path: str | Path) -> Circuit:
    """Read a player's circuit file (shape only; check it against its puzzle with
    ``engine.puzzle.check_circuit``). Raises ``PuzzleError`` listing every problem."""
    doc = read_yaml(path)
    circuit, problems = parse_circuit(doc)
    if problems or circuit is None:
        raise PuzzleError(sorted(problems) or [Problem(str(path), 1, 1, "not a circuit")],
                          "circuit")
    return circuit

