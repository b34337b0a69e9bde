"""The `lineup` command: a thin argparse front over the engine.

Each subcommand lives in its own module under ``game.commands`` and exposes
``register(subparsers)``; the parser it adds sets ``run=`` to a function taking the parsed
arguments and returning an exit code. Heavy imports (torch, transformers) happen inside those
functions, so `lineup --help` and `lineup list` start instantly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from game.output import Exit, error

# Order here is the order `lineup --help` lists them.
COMMANDS = [
    "play",
    "list",
    "check",
    "grade",
    "validate",
    "heads",
    "patch",
    "lens",
    "models",
    "download",
    "doctor",
]

DESCRIPTION = """\
Lineup: find the circuit a transformer uses, one question at a time.

A prompt is a line of people, each holding a word and guessing the word of the person in
front. Attention heads are questions they shout to everyone behind them. You decide who asks
which question, in which round, and who answers; the judge checks your circuit against the
model's real attention and patching results.

Start with `lineup` (the game) or `lineup list` (the puzzles)."""

EPILOG = """\
models: --model gpt2 (real GPT-2 from the Hugging Face cache), toy (bundled, always
available), random-gpt2 (GPT-2's shape with random weights, for tests), or a directory.

exit codes: 0 ok or solved, 1 problems found or not solved, 2 usage or other error."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lineup",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from importlib.metadata import PackageNotFoundError, version

    try:
        own_version = version("circuit-lineup")
    except PackageNotFoundError:  # running from a source tree that was never installed
        own_version = "unknown"
    parser.add_argument("--version", action="version", version=f"lineup {own_version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"game.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"game.commands.{name}":
                raise
            continue  # a command whose module is not written yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:  # bare `lineup` starts the game
        args = parser.parse_args(["play", *(argv or [])]) if "play" in _registered(parser) else args
        run = getattr(args, "run", None)
        if run is None:
            parser.print_help()
            return Exit.OK
    from engine.errors import LineupError

    try:
        return int(run(args))
    except LineupError as exc:
        return error(str(exc))
    except BrokenPipeError:  # `lineup list | head`: the reader left; that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.OK
    except OSError as exc:  # a file or folder the user named cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        return error(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        print("lineup: interrupted", file=sys.stderr)
        return Exit.INTERRUPT


def _registered(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
