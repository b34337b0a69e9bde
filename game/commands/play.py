"""`lineup play [PUZZLE|CIRCUIT.yaml] [--pack DIR] [--model M]`: the game."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "play",
        help="start the game (the default when no command is given)",
        description="Start the Lineup game in the terminal.",
    )
    parser.add_argument("puzzle", nargs="?",
                        help="open this puzzle (an id or a file), or a saved circuit file")
    parser.add_argument("--pack", metavar="DIR",
                        help="play a teacher's pack: a folder of puzzles and a pack.yaml")
    parser.add_argument("--model", metavar="M", default=None,
                        help="gpt2, toy or a directory (default: gpt2 when cached, else toy)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from game.app import run_app

    return run_app(puzzle=args.puzzle, pack=args.pack, model=args.model)
