"""`lineup patch`: which heads (or people) carry a puzzle's answer, as a heatmap.

The essay's swaps: a person (the residual stream), a question's answer (a head's output), the
question itself (its query), who answers it (keys) or what is said back (values); and the
judge's silencing (mean ablation). Every cell is the share of the clean-minus-corrupted gap."""

from __future__ import annotations

import argparse
import sys

from game.commands._shared import find_puzzle_or_report, finish_parser, load_model, puzzle_parser
from game.output import Exit, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    parser = puzzle_parser(
        sub,
        "patch",
        help="which heads or people carry a puzzle's answer (a patching heatmap)",
        description="Denoising activation patching: run the corrupted prompts, swap in one "
        "piece from the clean prompts, and read the puzzle's metric at the last token, as a "
        "share of the gap between the clean and the corrupted metric (1 = all of the answer "
        "comes back). --at says which piece: head (a head's output, the default), query, key "
        "or value (only that part of one head; keys and values of heads that share them are "
        "swapped for one query head), or resid (the residual stream entering each layer at "
        "each person). --silence instead mean-ablates one head at a time in the clean run "
        "(the judge's knock-out; 1 = nothing lost).",
    )
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="use the first N play prompts (default: all)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--at", choices=["head", "query", "key", "value", "resid"], default="head",
                     help="what to swap in (default: head, a head's output)")
    how.add_argument("--silence", action="store_true",
                     help="silence (mean-ablate) one head at a time instead of swapping")
    parser.add_argument("--pos", metavar="PERSON", default="*",
                        help="swap a head's piece only at this person (a role such as END; "
                        "default: * = every position)")
    parser.add_argument("--numbers", action="store_true", help="print the value in each cell")
    parser.add_argument("--svg", metavar="FILE", default=None,
                        help="also save the picture as an SVG file (for a worksheet)")
    finish_parser(parser, run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import UsageError
    from engine.patching import puzzle_patch

    puzzle = find_puzzle_or_report(args.puzzle)
    if puzzle is None:
        return Exit.ERROR
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    at = "silence" if args.silence else args.at
    if at in ("resid", "silence") and args.pos != "*":
        raise UsageError(f"--pos chooses where a head is swapped; --at {at} covers every "
                         "person already" if at == "resid" else
                         "--pos does not apply to --silence (a head is silenced everywhere)")
    lm, load_s = load_model(puzzle, args.model, args.device)
    show = not args.json and sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show:
            sys.stderr.write(f"\r\033[Klineup: patching layer {done}/{total}")
            sys.stderr.flush()

    report = puzzle_patch(puzzle, lm, at=at, position=args.pos, count=args.count,
                          progress=progress)
    if show:
        sys.stderr.write("\r\033[K")
    report.timing_s = {"model_load": round(load_s, 4), **report.timing_s}
    if args.json:
        emit_json(report.to_json())
        if args.svg:
            save_svg(report, args.svg, numbers=args.numbers)
        return Exit.OK
    from rich.console import Console

    console = Console(highlight=False)
    console.print(render(report, numbers=args.numbers))
    if args.svg:
        save_svg(report, args.svg, numbers=args.numbers)
    return Exit.OK


def render(report, *, numbers: bool):
    """The report as a heatmap, its legend, the baselines and the reading."""
    from rich.console import Group
    from rich.text import Text

    from game.heatmap import picture
    from game.output import visible

    what = ("share of the gap left when silenced" if report.at == "silence"
            else "share of the gap brought back")
    # names come from files and folders: plain Text, never read as markup
    head = Text(visible(f"{report.puzzle} on {report.label}, {len(report.prompts)} prompts: "
                        f"{report.title}"))
    base = Text(f"{report.metric}: clean {report.clean_metric:.3f}, corrupted "
                f"{report.corrupted_metric:.3f}")
    return Group(head, picture(report.fractions, columns=report.columns, title="",
                               reading=report.reading, legend_text=what,
                               column_label="person" if report.at == "resid" else "question",
                               numbers=numbers, rows=report.layers or None), base)


def save_svg(report, path: str, *, numbers: bool) -> None:
    """The same picture as the terminal's, written as SVG (rich's recorded console)."""
    import io

    from rich.console import Console

    from engine.errors import UsageError

    console = Console(record=True, file=io.StringIO(), width=max(100, 8 + 6 * len(
        report.columns)), color_system="truecolor", highlight=False)
    console.print(render(report, numbers=numbers))
    try:
        console.save_svg(path, title=f"lineup patch {report.puzzle}")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
