"""`lineup play`: the game. Until the TUI lands, it explains what there is to do."""

from __future__ import annotations

import argparse

from game.output import Exit


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "play",
        help="start the game (the default when no command is given)",
        description="Start the Lineup game in the terminal.",
    )
    parser.add_argument("puzzle", nargs="?", help="open this puzzle directly")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from game.app import run_app  # the Textual game
    except ModuleNotFoundError as exc:
        if exc.name != "game.app":
            raise
        from game.cli import build_parser

        print("The game screen is not built yet; here is what the command line offers.\n")
        build_parser().print_help()
        return Exit.OK
    return run_app(puzzle=args.puzzle)
