"""`lineup list [--json]`: the ladders in order, each puzzle and the player's stars.

Reads only YAML and the progress file: never imports torch or transformers (a test checks).
"""

from __future__ import annotations

import argparse
from typing import Any

from game.output import Exit, add_json_option, emit_json, note, visible

HELP = "list the puzzles by ladder, with your stars"
MAX_STARS = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list", help=HELP, description="List the puzzles ladder by ladder, with your stars."
    )
    parser.add_argument("--model", metavar="M", default=None,
                        help="show the stars won on this model (default: the model the game "
                             "plays: gpt2 when cached, else smollm2 or toy)")
    add_json_option(parser)
    parser.set_defaults(run=run)


def model_key(spec: str | None) -> str:
    """The save file's model key (the puzzle block) for a --model value, read from disk
    only: no torch."""
    from engine.models import block_for_spec, default_model_name

    spec = spec or default_model_name()
    return block_for_spec(spec) or spec


def read_progress(model: str | None = None, *, everything: bool = False,
                  legacy_model: str | None = None) -> Any:
    """Stars per puzzle id won on ``model`` from the player's save file, read the game's way
    but never changed (a damaged file is left where it is, with a note on stderr). With
    ``everything``, {model: {puzzle id: stars}} for every model in the file. A version-1
    file's entries (no model recorded) count for ``legacy_model``, by default where the game
    puts them (``game.progress.default_legacy_model``)."""
    from game.progress import Progress

    key = model or model_key(None)
    progress = Progress.load(read_only=True, legacy_model=legacy_model)
    for problem in progress.problems:
        note(problem)
    if everything:
        return {m: {pid: e.stars for pid, e in table.items()}
                for m, table in progress.entries.items()}
    return {pid: e.stars for pid, e in progress.entries.get(key, {}).items()}


def collect(model: str | None = None) -> list[dict[str, Any]]:
    from engine.puzzle import BLOCKS, LADDER_TITLES, LADDERS, Problem, load_all

    problems: list[Problem] = []
    puzzles = load_all(problems)
    for p in problems:
        note(f"skipped a broken puzzle: {p}")
    key = model_key(model)
    by_model = read_progress(everything=True)
    stars = by_model.get(key, {})
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
                "stars_by_model": {m: table[p.id] for m, table in sorted(by_model.items())
                                   if p.id in table},
            }
            for p in puzzles
            if p.ladder == ladder
        ]
        ladders.append({"name": ladder, "title": LADDER_TITLES.get(ladder, ladder),
                        "puzzles": rows})
    return ladders


def run(args: argparse.Namespace) -> int:
    ladders = collect(args.model)
    if args.json:
        emit_json({"max_stars": MAX_STARS, "model": model_key(args.model), "ladders": ladders})
        return Exit.OK
    width = max((len(r["id"]) for lad in ladders for r in lad["puzzles"]), default=10)
    twidth = max((len(r["title"]) for lad in ladders for r in lad["puzzles"]), default=10)
    key = model_key(args.model)
    print(f"stars won on {visible(key)} (--model picks another)\n")
    for lad in ladders:
        print(f"{lad['name']}  ({visible(lad['title'])})")
        for r in lad["puzzles"]:
            stars = "★" * r["stars"] + "☆" * (MAX_STARS - r["stars"])
            models = " ".join(r["models"])
            locked = f"  locked on {', '.join(r['locked'])}" if r["locked"] else ""
            elsewhere = [f"{visible(m)} {'★' * n}{'☆' * (MAX_STARS - n)}"
                         for m, n in r["stars_by_model"].items() if m != key and n]
            locked += f"  (on {', '.join(elsewhere)})" if elsewhere else ""
            print(f"  {r['order']:>2}. {visible(r['id']):<{width}}  "
                  f"{visible(r['title']):<{twidth}}  {stars}  "
                  f"{models}{locked}")
        print()
    return Exit.OK
