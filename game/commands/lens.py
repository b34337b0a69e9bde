"""`lineup lens`: the logit lens, each person's best guess after each layer."""

from __future__ import annotations

import argparse

from game.output import Exit, add_json_option, add_model_option, emit_json, visible


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "lens",
        help="show each person's top guess after each layer (the logit lens)",
        description="Run TEXT through the model and, after the embeddings and after every "
        "layer, read the residual stream through the final layer norm and the unembedding: "
        "what each person in the line would guess if the model stopped there.",
    )
    parser.add_argument("text", metavar="TEXT", help="the text to read, in quotes")
    parser.add_argument("-k", "--top", type=int, default=5, help="guesses per person (JSON)")
    add_model_option(parser)
    add_json_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import UsageError

    if not args.text.strip():
        raise UsageError("the text is empty: give a sentence to look at")
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    from engine.lens import logit_lens
    from engine.models import load_model

    lm = load_model(args.model, device=args.device)
    fits(lm, args.text)
    report = logit_lens(lm, args.text, k=args.top)
    if args.json:
        emit_json(report.to_json())
        return Exit.OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # tokens and labels are user text: Text objects, never markup ("[late]" stays "[late]")
    console = Console(highlight=False)
    console.print(Text(f"Logit lens on {visible(lm.label)}: each person's top guess after "
                       "each layer"))
    per_table = max(1, (console.width - 8) // 12)
    for first in range(0, len(report.tokens), per_table):
        people = range(first, min(len(report.tokens), first + per_table))
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("after", justify="right", no_wrap=True)
        for pos in people:
            table.add_column(Text(visible(repr(report.tokens[pos]))), no_wrap=True,
                             overflow="ellipsis", max_width=11)
        for entry in report.layers:
            label = "embed" if entry.layer == 0 else f"L{entry.layer - 1}"
            cells = []
            for pos in people:
                word, prob = entry.positions[pos].top[0]
                cells.append(Text(visible(f"{word!r} {prob:.2f}" if entry is report.layers[-1]
                                          else repr(word))))
            table.add_row(label, *cells)
        console.print(table)
    return Exit.OK


def fits(lm, text: str) -> None:
    """A usage error when the text is longer than the model reads (not an IndexError)."""
    from engine.detectors import context_length
    from engine.errors import UsageError

    limit = context_length(lm)
    n = len(lm.tokenizer(text)["input_ids"])
    if n > limit:
        raise UsageError(f"the text is {n} tokens long, but {visible(lm.label)} reads at most "
                         f"{limit}; give a shorter text")
