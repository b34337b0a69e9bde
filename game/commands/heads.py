"""`lineup heads`: every head's detector scores, the raw material for choosing cards."""

from __future__ import annotations

import argparse

from game.output import Exit, add_json_option, add_model_option, emit_json, note, visible


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "heads",
        help="score every attention head as previous-token, duplicate, induction or copy head",
        description="Score every attention head on repeated random token sequences "
        "(previous-token, duplicate-token, induction: mean attention to the expected position) "
        "and on its weights (copy: how often its OV circuit writes the token it reads into "
        "the top 5 logits). Heads are named LAYER.HEAD, counting from 0.",
    )
    add_model_option(parser)
    add_json_option(parser)
    parser.add_argument("--sort", choices=["previous_token", "duplicate_token", "induction",
                                           "copy", "negative_copy"],
                        help="sort the table by one score, highest first")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.detectors import SCORE_NAMES, head_scores
    from engine.models import load_model

    lm = load_model(args.model, device=args.device)
    if lm.kind == "random-gpt2":
        note(visible(lm.label))
    scores = head_scores(lm)
    if args.sort:
        scores.sort(key=lambda s: getattr(s, args.sort), reverse=True)
    if args.json:
        emit_json([s.to_json() for s in scores])
        return Exit.OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # the label may hold a folder name: a Text, never read as markup
    table = Table(title=Text(f"Head scores on {visible(lm.label)}"), title_justify="left")
    table.add_column("head", justify="right")
    for name in SCORE_NAMES:
        table.add_column(name.replace("_", " "), justify="right")
    for s in scores:
        table.add_row(s.name, *(f"{getattr(s, n):.2f}" for n in SCORE_NAMES))
    Console(highlight=False).print(table)
    return Exit.OK
