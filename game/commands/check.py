"""`lineup check`: grade one circuit file against a puzzle, on the model's real behaviour."""

from __future__ import annotations

import argparse
import sys

from game.commands._shared import finish_parser, load_model, located, puzzle_parser
from game.output import Exit, emit_json

MARKS = {
    "confirmed": "ok",
    "not-needed": "~~",
    "wrong-responder": "XX",
    "wrong-round": "XX",
    "no-such-question": "XX",
    "invalid": "!!",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = puzzle_parser(
        sub,
        "check",
        help="grade a circuit file against a puzzle (exit 0 solved, 1 not, 2 error)",
        description="Grade CIRCUIT (a YAML file of questions) against PUZZLE (an id or a "
        "puzzle file): each question is confirmed or told why not, then the circuit's "
        "faithfulness is measured with every other head mean-ablated. Exit 0 when solved "
        "(two stars or more), 1 when not, 2 on an error.",
    )
    parser.add_argument("circuit", metavar="CIRCUIT.yaml", help="the circuit file to grade")
    finish_parser(parser, run)


class Progress:
    """A one-line progress indication on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()

    def __call__(self, stage: str, fraction: float) -> None:
        if self.on:
            sys.stderr.write(f"\r\033[Klineup: {stage} {fraction:4.0%}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.on:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from engine.judge import grade
    from engine.puzzle import PuzzleError, find_puzzle, load_circuit

    try:
        puzzle = find_puzzle(args.puzzle)
        circuit = load_circuit(args.circuit)
    except PuzzleError as exc:
        return located(exc)
    lm, load_s = load_model(puzzle, args.model or circuit.model, args.device)
    bar = Progress()
    try:
        report = grade(puzzle, circuit, lm, progress=bar)
    finally:
        bar.done()
    report.timing_s = {"model_load": load_s, **report.timing_s}
    if args.json:
        emit_json(report.to_json())
    else:
        print_report(report)
    return Exit.OK if report.solved else Exit.NO


def print_report(report) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    stars = "*" * report.stars + "." * (3 - report.stars)
    console.print(f"[bold]{escape(report.puzzle)}[/] on {escape(report.model_label)}: "
                  f"[bold]{stars}[/] ({report.stars} of 3)"
                  + (" solved" if report.solved else " not solved"))
    for q in report.questions:
        to = f" -> {q.responder}" if q.responder else ""
        given = " (given)" if q.given else ""
        console.print(f"  {MARKS.get(q.verdict, '??')} [{escape(q.round)}] "
                      f"{escape(q.asker)}: {escape(q.card)}{escape(to)}{given}: "
                      f"[bold]{q.verdict}[/]")
        console.print(f"       {escape(q.message)}", highlight=False)
    held = ("not measured until the play prompts pass" if report.heldout_faithfulness is None
            else f"{report.heldout_faithfulness:.2f} (pass line {report.heldout_pass_line:.2f})")
    console.print(f"  faithfulness {report.faithfulness:.2f} (pass line {report.pass_line:.2f}), "
                  f"held-out {held}", highlight=False)
    for problem in report.problems:
        console.print(f"  note: {escape(problem)}", highlight=False)
