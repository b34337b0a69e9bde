"""`lineup validate PATH... [--model M]`: check puzzle (and circuit) files.

Prints every problem as ``file:line:col: message`` on stdout (the data), a one-line summary
and any notes on stderr. With ``--model``, the judge also grades each puzzle's reference
solution (it must be solved) and trivial circuits (they must not be) on that model, saying
on stderr what it grades as it goes. Exit 0 when clean, 1 when problems were found, 2 for
usage errors (a path that does not exist, an unknown model).
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

from game.output import Exit, add_json_option, add_model_option, emit_json, error, note, visible

HELP = ("check puzzle files: shape, roles, rounds, tokens; with --model, grade the reference "
        "solutions (exit 0 ok, 1 problems)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help=HELP,
        description=(
            "Check puzzle files (or folders of them, or a player's circuit file) and report "
            "every problem as file:line:col: message. With --model, check the puzzle against "
            "that model's tokenizer and layer count, and run the judge: each reference "
            "solution must be solved, and trivial circuits (the empty circuit, one wrong "
            "question, every card in every round) must not be."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="puzzle files or folders")
    add_model_option(parser)
    add_json_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        return error(f"no such file or folder: {', '.join(visible(m) for m in missing)}")
    for p in args.paths:  # a FIFO or device would block the reader: refuse it by name
        mode = os.stat(p).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            from engine.pack import kind_of

            return error(f"{visible(p)} is {kind_of(mode)}, not a puzzle file or folder")
    from engine.authoring import validate_paths
    from engine.validate import expand_paths

    files = expand_paths(args.paths)
    if not files:
        return error(f"no puzzle files (*.yaml) in {', '.join(map(visible, args.paths))}")
    notes: list[str] = []
    problems = validate_paths(args.paths, model=args.model, notes=notes,
                              device=getattr(args, "device", None), progress=note)
    for text in notes:
        note(visible(text))
    if args.json:
        emit_json({
            "files": [str(f) for f in files],
            "problems": [
                {"path": p.path, "line": p.line, "col": p.col, "message": p.message}
                for p in problems
            ],
        })
    else:
        for p in problems:
            print(visible(p))
    bad_files = len({p.path for p in problems})
    if problems:
        note(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {bad_files} of "
             f"{len(files)} file{'s' if len(files) != 1 else ''}")
        return Exit.NO
    note(f"{len(files)} file{'s' if len(files) != 1 else ''} OK")
    return Exit.OK
