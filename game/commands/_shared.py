"""Pieces shared by the puzzle commands (check, grade, patch): not a command itself, since
`game.cli` registers only the modules named in its COMMANDS list."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from game.output import Exit, add_json_option, add_model_option, note


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
        print(str(problem), file=sys.stderr)
    return Exit.ERROR


def find_puzzle_or_report(ref: str) -> Any | None:
    """The puzzle named by ref, or None once its problems are printed (then exit 2)."""
    from engine.puzzle import PuzzleError, find_puzzle

    try:
        return find_puzzle(ref)
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
        note(lm.label)
    return lm, load_s
