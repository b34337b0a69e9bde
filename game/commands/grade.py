"""`lineup grade`: grade every circuit file in a folder (a class's submissions).

Every entry named ``*.yaml`` / ``*.yml`` is a row, whatever it is: a file that does not read,
a folder, a FIFO or a link to nothing is a row with its error, never skipped and never opened
in a way that could block. Repeated questions in a file are counted once before anything is
graded or formatted. Exit 0 when every file was graded, 1 when any row is an error, 2 for a
usage error (no such puzzle or folder, a ``--csv`` file that is not a previous grades file).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from game.commands._shared import (
    check_fits,
    find_puzzle_or_report,
    finish_parser,
    grade_circuit,
    load_model,
    puzzle_parser,
    read_circuit,
)
from game.output import Exit, emit_json, note, visible

COLUMNS = ["file", "status", "stars", "solved", "faithfulness", "heldout_faithfulness",
           "problems"]
OLD_COLUMNS = ["file", "stars", "solved", "faithfulness", "heldout_faithfulness", "problems"]
SUFFIXES = (".yaml", ".yml")
SHOWN_PROBLEMS = 300  # characters of the problems column in the terminal table (CSV: all)


def register(sub: argparse._SubParsersAction) -> None:
    parser = puzzle_parser(
        sub,
        "grade",
        help="grade every circuit file (*.yaml, *.yml) in a folder; one row per file",
        description="Grade every circuit file in DIR against PUZZLE, loading the model once. "
        "Every entry named *.yaml or *.yml is a row; one that cannot be read is a row with "
        "its error, never a crash. Exit 0 when every file was graded, 1 when any could not "
        "be, 2 on a usage error.",
    )
    parser.add_argument("folder", metavar="DIR", help="folder of circuit files")
    parser.add_argument("--csv", metavar="OUT", help="also write the rows to a CSV file (an "
                        "existing file is replaced only if it is a previous grades file)")
    parser.add_argument("--force", action="store_true",
                        help="let --csv replace a file that is not a previous grades file")
    finish_parser(parser, run)


def entries(folder: Path) -> list[Path]:
    """Every entry of ``folder`` named like a circuit file, in name order."""
    return sorted((p for p in folder.iterdir() if p.name.endswith(SUFFIXES)),
                  key=lambda p: p.name)


def check_csv_target(out: Path, force: bool) -> None:
    """Refuse, before any grading, to replace what is not ours: an existing file given as
    ``--csv`` must be a previous Lineup grades file (its header row), unless ``--force``."""
    from engine.errors import UsageError
    from engine.pack import FileTooLarge, NotRegularFile, read_regular

    if not os.path.lexists(out):
        return
    try:
        head = read_regular(out, 16 * 1024 * 1024).split(b"\n", 1)[0].strip(b"\r\n\xef\xbb\xbf")
    except NotRegularFile as exc:
        raise UsageError(f"--csv {visible(out)} is {exc.kind}, not a file") from None
    except FileTooLarge:
        head = b""
    except FileNotFoundError:  # a link to nothing: writing would create its target
        raise UsageError(f"--csv {visible(out)} is a link to a file that does not exist") \
            from None
    if force:
        return
    ours = {",".join(COLUMNS).encode(), ",".join(OLD_COLUMNS).encode()}
    if head not in ours:
        raise UsageError(f"--csv {visible(out)} already exists and is not a Lineup grades file; "
                         "choose another name, or add --force to replace it")


def _cell(value: Any) -> str:
    """A CSV cell: control characters visible, and text a spreadsheet would run as a formula
    (``=``, ``+``, ``-``, ``@`` first) quoted with a leading apostrophe."""
    text = visible("" if value is None else value)
    if text[:1] in ("=", "+", "-", "@") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(out: Path, rows: list[dict[str, Any]]) -> None:
    """The rows as CSV, written atomically (a temp file in the same folder, then a rename)."""
    from engine.errors import UsageError

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: _cell(row[c]) for c in COLUMNS} for row in rows)
    folder = out.parent if str(out.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write {visible(out)}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(buf.getvalue())
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(f"cannot write {visible(out)}: {exc.strerror or exc}") from None


def unreadable(path: Path) -> str | None:
    """Why ``path`` is not a circuit file to read (a folder, FIFO, link to nothing), or None."""
    from engine.pack import kind_of

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "a link to a file that does not exist" if os.path.islink(path) else "gone"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return f"not a circuit file: it is {kind_of(st.st_mode)}"
    return None


def grade_one(path: Path, puzzle: Any, lm: Any) -> dict[str, Any]:
    """One row: graded, or the error that kept the file from being graded."""
    from engine.errors import LineupError
    from engine.puzzle import PuzzleError

    row: dict[str, Any] = {"file": path.name, "status": "error", "stars": "", "solved": "",
                           "faithfulness": "", "heldout_faithfulness": "", "problems": ""}
    why = unreadable(path)
    if why is not None:
        row["problems"] = f"{path.name}: {why}"
        return row
    try:
        circuit = read_circuit(path)
        report = grade_circuit(puzzle, circuit, lm)
    except PuzzleError as exc:
        row["problems"] = "; ".join(str(p) for p in exc.problems)
        return row
    except LineupError as exc:
        row["problems"] = f"{path.name}: {exc}"
        return row
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # a bug met on one student's file must not cost the others
        from game.crash import write_log

        log = write_log(exc, where=f"grading of {path}")
        row["problems"] = (f"{path.name}: Lineup crashed on this file ({type(exc).__name__}); "
                           f"details in {log}")
        return row
    wrong = [f"{q.asker}: {q.card} in {q.round}: {q.verdict}" for q in report.questions
             if q.verdict != "confirmed"]
    row.update(status="solved" if report.solved else "not solved",
               stars=report.stars, solved=report.solved,
               faithfulness=round(report.faithfulness, 3),
               heldout_faithfulness=("" if report.heldout_faithfulness is None
                                     else round(report.heldout_faithfulness, 3)),
               problems="; ".join(wrong + report.problems))
    return row


def run(args: argparse.Namespace) -> int:
    from engine.errors import UsageError

    puzzle = find_puzzle_or_report(args.puzzle)
    if puzzle is None:
        return Exit.ERROR
    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise UsageError(f"{visible(folder)} is not a folder")
    out = Path(args.csv).expanduser() if args.csv else None
    if out is not None:
        check_csv_target(out, args.force)
    files = entries(folder)
    if not files:
        note(f"no circuit files (*.yaml, *.yml) in {visible(folder)}")
        if args.json:
            emit_json({"puzzle": puzzle.id, "model": args.model, "rows": []})
        return Exit.OK
    lm, _ = load_model(puzzle, args.model, args.device)
    check_fits(puzzle, lm)
    rows = [grade_one(path, puzzle, lm) for path in files]
    if out is not None:
        write_csv(out, rows)
    errors = sum(row["status"] == "error" for row in rows)
    code = Exit.NO if errors else Exit.OK
    if errors:
        note(f"{errors} of {len(rows)} file{'s' if len(rows) != 1 else ''} could not be graded")
    if args.json:
        emit_json({"puzzle": puzzle.id, "model": lm.name, "errors": errors, "rows": rows})
        return code
    print_table(f"{puzzle.id} on {lm.label}", rows)
    return code


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """The rows as a Rich table; every cell is a ``Text`` (never markup), control characters
    visible, and long problem lists cut for the terminal (the CSV has them whole)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(visible(title)), title_justify="left")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "),
                         justify="right" if column not in ("file", "status", "problems")
                         else "left")
    for row in rows:
        cells = []
        for column in COLUMNS:
            text = visible(row[column])
            if column == "problems" and len(text) > SHOWN_PROBLEMS:
                text = text[: SHOWN_PROBLEMS - 20] + f"... ({len(text)} characters)"
            cells.append(Text(text))
        table.add_row(*cells)
    Console(highlight=False).print(table)
