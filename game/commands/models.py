"""`lineup models`: which model sources exist here, and where."""

from __future__ import annotations

import argparse

from game.output import Exit, add_json_option, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "models",
        help="list model sources and whether each is available",
        description="List every model source (gpt2, smollm2, toy, random-gpt2, a directory), "
        "whether it is available on this machine, where it lives and how to get it, and which "
        "one plays by default and why. Reads no weights and never touches the network.",
    )
    add_json_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.models import default_model, list_sources

    rows = list_sources()
    choice = default_model()
    default = choice.name
    if args.json:
        emit_json({"default": default, "default_reason": choice.reason, "models": rows})
        return Exit.OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Model sources (default: {default})", title_justify="left")
    for column in ("model", "available", "where", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        # paths and notes are text, never markup: a folder may be called "[b]"
        table.add_row(*(Text(str(cell)) for cell in
                        (row.name, "yes" if row.available else "no", row.where, row.note)))
    console = Console()
    console.print(table)
    console.print(f"default {choice.reason}", markup=False, highlight=False)
    return Exit.OK
