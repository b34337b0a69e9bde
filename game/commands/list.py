"""`lineup list [--json]`: the ladders in order, each puzzle and the player's stars.

Reads only YAML and the progress file: never imports torch or transformers (a test checks).
"""

from __future__ import annotations

import argparse
from typing import Any

from game.output import Exit, add_json_option, emit_json, note

HELP = "list the puzzles by ladder, with your stars"
MAX_STARS = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list", help=HELP, description="List the puzzles ladder by ladder, with your stars."
    )
    add_json_option(parser)
    parser.set_defaults(run=run)


def read_progress() -> dict[str, int]:
    """Stars per puzzle id from the player's save file, read the game's way but never
    changed (a damaged file is left where it is, with a note on stderr)."""
    from game.progress import Progress

    progress = Progress.load(read_only=True)
    if progress.message:
        note(progress.message)
    return {pid: progress.stars(pid) for pid in progress.puzzles}


def collect() -> list[dict[str, Any]]:
    from engine.puzzle import BLOCKS, LADDERS, Problem, load_all
    from engine.puzzle_schema import LADDER_TITLES

    problems: list[Problem] = []
    puzzles = load_all(problems)
    for p in problems:
        note(f"skipped a broken puzzle: {p}")
    stars = read_progress()
    ladders = []
    for ladder in LADDERS:
        rows = [
            {
                "id": p.id,
                "title": p.title,
                "order": p.order,
                "models": list(p.models),
                "locked": [b for b in BLOCKS if b not in p.models],
                "stars": stars.get(p.id, 0),
            }
            for p in puzzles
            if p.ladder == ladder
        ]
        ladders.append({"name": ladder, "title": LADDER_TITLES.get(ladder, ladder),
                        "puzzles": rows})
    return ladders


def run(args: argparse.Namespace) -> int:
    ladders = collect()
    if args.json:
        emit_json({"max_stars": MAX_STARS, "ladders": ladders})
        return Exit.OK
    width = max((len(r["id"]) for lad in ladders for r in lad["puzzles"]), default=10)
    twidth = max((len(r["title"]) for lad in ladders for r in lad["puzzles"]), default=10)
    for lad in ladders:
        print(f"{lad['name']}  ({lad['title']})")
        for r in lad["puzzles"]:
            stars = "★" * r["stars"] + "☆" * (MAX_STARS - r["stars"])
            models = " ".join(r["models"])
            locked = f"  locked on {', '.join(r['locked'])}" if r["locked"] else ""
            print(f"  {r['order']:>2}. {r['id']:<{width}}  {r['title']:<{twidth}}  {stars}  "
                  f"{models}{locked}")
        print()
    return Exit.OK
