"""`lineup grade`: grade every circuit file in a folder (a class's submissions)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from game.commands._shared import find_puzzle_or_report, finish_parser, load_model, puzzle_parser
from game.output import Exit, emit_json, note

COLUMNS = ["file", "stars", "solved", "faithfulness", "heldout_faithfulness", "problems"]


def register(sub: argparse._SubParsersAction) -> None:
    parser = puzzle_parser(
        sub,
        "grade",
        help="grade every circuit file (*.yaml, *.yml) in a folder; one row per file",
        description="Grade every circuit file in DIR against PUZZLE, loading the model once. "
        "A file that cannot be read is a row with its error, never a crash.",
    )
    parser.add_argument("folder", metavar="DIR", help="folder of circuit files")
    parser.add_argument("--csv", metavar="OUT", help="also write the rows to a CSV file")
    finish_parser(parser, run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import LineupError, UsageError
    from engine.judge import grade
    from engine.puzzle import PuzzleError, load_circuit

    puzzle = find_puzzle_or_report(args.puzzle)
    if puzzle is None:
        return Exit.ERROR
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        note(f"no circuit files (*.yaml, *.yml) in {folder}")
        if args.json:
            emit_json({"puzzle": puzzle.id, "model": args.model, "rows": []})
        return Exit.OK
    lm, _ = load_model(puzzle, args.model, args.device)
    rows = []
    for path in files:
        row = {"file": path.name, "stars": "", "solved": "", "faithfulness": "",
               "heldout_faithfulness": "", "problems": ""}
        try:
            circuit = load_circuit(path)
            report = grade(puzzle, circuit, lm)
        except PuzzleError as exc:
            row["problems"] = "; ".join(str(p) for p in exc.problems)
        except LineupError as exc:
            row["problems"] = str(exc)
        else:
            wrong = [f"{q.asker}: {q.card} in {q.round}: {q.verdict}" for q in report.questions
                     if q.verdict != "confirmed"]
            row.update(stars=report.stars, solved=report.solved,
                       faithfulness=round(report.faithfulness, 3),
                       heldout_faithfulness=("" if report.heldout_faithfulness is None
                                             else round(report.heldout_faithfulness, 3)),
                       problems="; ".join(wrong + report.problems))
        rows.append(row)
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    if args.json:
        emit_json({"puzzle": puzzle.id, "model": lm.name, "rows": rows})
        return Exit.OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{puzzle.id} on {lm.label}", title_justify="left")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "),
                         justify="right" if column not in ("file", "problems") else "left")
    for row in rows:
        table.add_row(*(str(row[c]) for c in COLUMNS))
    Console().print(table)
    return Exit.OK
