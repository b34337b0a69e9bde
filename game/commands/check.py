"""`lineup check`: grade one circuit file against a puzzle, on the model's real behaviour."""

from __future__ import annotations

import argparse
import sys

from game.commands._shared import (
    check_fits,
    find_puzzle_safe,
    finish_parser,
    grade_circuit,
    load_model,
    located,
    puzzle_parser,
    read_circuit,
)
from game.output import Exit, emit_json, visible

MARKS = {
    "confirmed": "ok",
    "not-needed": "~~",
    "wrong-responder": "XX",
    "wrong-round": "XX",
    "no-such-question": "XX",
    "not-measurable": "??",
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
    from engine.puzzle import PuzzleError

    try:
        puzzle = find_puzzle_safe(args.puzzle)
        circuit = read_circuit(args.circuit)
    except PuzzleError as exc:
        return located(exc)
    lm, load_s = load_model(puzzle, args.model or circuit.model, args.device)
    check_fits(puzzle, lm)
    bar = Progress()
    try:
        report = grade_circuit(puzzle, circuit, lm, progress=bar)
    finally:
        bar.done()
    report.timing_s = {"model_load": load_s, **report.timing_s}
    if args.json:
        emit_json(report.to_json())
    else:
        print_report(report)
    return Exit.OK if report.solved else Exit.NO


def print_report(report) -> None:
    """The report as text. Every piece of user text (puzzle, round, person and card names,
    messages that quote them) goes in as a Rich ``Text``, never as markup, with control
    characters made visible: a round called ``[late]`` shows as ``[late]``."""
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    stars = "*" * report.stars + "." * (3 - report.stars)
    console.print(Text.assemble((visible(report.puzzle), "bold"), " on ",
                                visible(report.model_label), ": ", (stars, "bold"),
                                f" ({report.stars} of 3)",
                                " solved" if report.solved else " not solved"))
    if not getattr(report, "task_ok", True) and getattr(report, "task_message", ""):
        console.print(Text(f"  {visible(report.task_message)}"))
    for q in report.questions:
        to = f" -> {visible(q.responder)}" if q.responder else ""
        given = " (given)" if q.given else ""
        console.print(Text.assemble(f"  {MARKS.get(q.verdict, '??')} [{visible(q.round)}] ",
                                    f"{visible(q.asker)}: {visible(q.card)}{to}{given}: ",
                                    (visible(q.verdict), "bold")))
        console.print(Text(f"       {visible(q.message)}"))
    held = ("not measured until the play prompts pass" if report.heldout_faithfulness is None
            else f"{report.heldout_faithfulness:.2f} (pass line {report.heldout_pass_line:.2f})")
    console.print(Text(f"  faithfulness {report.faithfulness:.2f} (pass line "
                       f"{report.pass_line:.2f}), held-out {held}"))
    for problem in report.problems:
        console.print(Text(f"  note: {visible(problem)}"))
