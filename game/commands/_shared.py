"""Pieces shared by the puzzle commands (check, grade, patch): not a command itself, since
`game.cli` registers only the modules named in its COMMANDS list."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from game.output import Exit, add_json_option, add_model_option, note, visible


def puzzle_parser(sub: argparse._SubParsersAction, name: str, *, help: str,
                  description: str) -> argparse.ArgumentParser:
    """A command's parser, its first argument the PUZZLE (an id or a puzzle file)."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.add_argument("puzzle", metavar="PUZZLE", help="puzzle id or puzzle file")
    return parser


def finish_parser(parser: argparse.ArgumentParser,
                  run: Callable[[argparse.Namespace], int]) -> None:
    """The options every model command ends with (--model, --device, --json), and its run."""
    add_model_option(parser)
    add_json_option(parser)
    parser.set_defaults(run=run)


def located(exc) -> int:
    """Print a PuzzleError's problems, one `file:line:col: message` each; exit 2."""
    for problem in exc.problems:
        print(visible(problem), file=sys.stderr)
    return Exit.ERROR


def find_puzzle_safe(ref: str) -> Any:
    """``engine.puzzle.find_puzzle``, refusing first a path that exists but is not a regular
    file (a FIFO or a folder named like a puzzle) with a usage error that says what it is."""
    import os
    import stat

    from engine.errors import UsageError
    from engine.limits import too_long
    from engine.pack import kind_of
    from engine.puzzle import find_puzzle, looks_like_id

    if looks_like_id(ref) and too_long(ref):  # an id that long is no file name: no stat
        return find_puzzle(ref)
    path = Path(ref).expanduser()
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{visible(ref)} is {kind_of(st.st_mode)}, not a puzzle file or id")
    return find_puzzle(ref)


def find_puzzle_or_report(ref: str) -> Any | None:
    """The puzzle named by ref, or None once its problems are printed (then exit 2)."""
    from engine.puzzle import PuzzleError

    try:
        return find_puzzle_safe(ref)
    except PuzzleError as exc:
        located(exc)
        return None


def load_model(puzzle, model: str | None, device: str | None) -> tuple[Any, float]:
    """The model for a puzzle, and the seconds it took to load; notes a random-weights model."""
    from engine.judge import load_for

    t0 = time.perf_counter()
    lm = load_for(puzzle, model, device)
    load_s = time.perf_counter() - t0
    if lm.kind == "random-gpt2":
        note(visible(lm.label))
    return lm, load_s


def read_circuit(ref: str | Path) -> Any:
    """A player's circuit file, read without ever opening what is not a regular file (a FIFO
    would block): ``UsageError`` when it is missing or not a file, ``PuzzleError`` listing
    every problem in it."""
    import os
    import stat

    from engine.errors import UsageError
    from engine.pack import kind_of, read_doc
    from engine.puzzle import Problem, PuzzleError, parse_circuit

    path = Path(ref).expanduser()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        dangling = " (a link to nothing)" if os.path.islink(path) else ""
        raise UsageError(f"circuit file {visible(ref)} does not exist{dangling}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{visible(ref)} is {kind_of(st.st_mode)}, not a circuit file")
    doc = read_doc(path)
    if doc.problems:
        raise PuzzleError(sorted(doc.problems), "circuit")
    circuit, problems = parse_circuit(doc)
    if problems or circuit is None:
        raise PuzzleError(sorted(problems) or [Problem(str(path), 1, 1, "not a circuit")],
                          "circuit")
    return circuit


def collapse(circuit: Any) -> int:
    """Drop repeated questions (same round, asker, card and responder) from a circuit, keeping
    the first of each, before anything is graded or formatted: a file of 2,000 copies of one
    question is one question. Returns how many were dropped."""
    seen: set[tuple[str, str, str, str | None]] = set()
    kept = []
    for q in circuit.questions:
        key = (q.round, q.asker, q.card, q.responder)
        if key not in seen:
            seen.add(key)
            kept.append(q)
    dropped = len(circuit.questions) - len(kept)
    circuit.questions = kept
    return dropped


def check_fits(puzzle: Any, lm: Any) -> None:
    """A usage error when a puzzle's prompts (play or held-out) are longer than the model
    reads, said before any run (a longer prompt is an IndexError deep in the model)."""
    from engine.detectors import context_length
    from engine.errors import UsageError

    limit = context_length(lm)
    for split in ("play", "heldout"):
        prompts = puzzle.build_prompts(lm.tokenizer, split)
        longest = max((len(ids) for ids in prompts.token_ids), default=0)
        if longest > limit:
            raise UsageError(f"puzzle {visible(puzzle.id)}: its {split} prompts are up to "
                             f"{longest} tokens long, but {visible(lm.label)} reads at most "
                             f"{limit}; shorten the templates or use a bigger model")


def grade_circuit(puzzle: Any, circuit: Any, lm: Any, **kwargs: Any) -> Any:
    """``engine.judge.grade`` after collapsing repeated questions (noted in the report)."""
    from engine.judge import grade

    dropped = collapse(circuit)
    report = grade(puzzle, circuit, lm, **kwargs)
    if dropped:
        report.problems.append(f"{dropped} repeated question{'s' if dropped > 1 else ''} "
                               "counted once")
    return report
