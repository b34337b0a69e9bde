"""`lineup patch`: the head-patching grid for a puzzle's metric (which heads carry it)."""

from __future__ import annotations

import argparse
import sys

from game.commands._shared import find_puzzle_or_report, finish_parser, load_model, puzzle_parser
from game.output import Exit, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    parser = puzzle_parser(
        sub,
        "patch",
        help="the head-patching grid for a puzzle's metric",
        description="Denoising activation patching: run the corrupted prompts, patch in one "
        "head's output from the clean prompts (all positions), and read the puzzle's metric "
        "at the last token, for every head. Heads that bring the metric back toward the clean "
        "value carry the task.",
    )
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="use the first N play prompts (default: all)")
    finish_parser(parser, run)


def run(args: argparse.Namespace) -> int:
    import time

    from engine.errors import UsageError
    from engine.interventions import head_patch_grid_run
    from engine.metrics import PuzzleMetric
    from engine.models import pad_rows

    puzzle = find_puzzle_or_report(args.puzzle)
    if puzzle is None:
        return Exit.ERROR
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    lm, load_s = load_model(puzzle, args.model, args.device)
    t1 = time.perf_counter()
    ps = puzzle.build_prompts(lm.tokenizer, "play")
    n = len(ps) if args.count is None else min(args.count, len(ps))
    token_ids, corrupted_ids = ps.token_ids[:n], ps.corrupted_ids[:n]
    if any(a != len(ids) - 1 for a, ids in zip(ps.at[:n], token_ids, strict=True)):
        raise UsageError(f"{puzzle.id}: the metric is not read at the last token; "
                         "the patching grid needs it there")
    clean = pad_rows(token_ids, device=lm.device)
    corrupted = pad_rows(corrupted_ids, device=lm.device)
    metric = PuzzleMetric(ps.metric.kind, ps.correct[:n], ps.wrong[:n])
    show = not args.json and sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show:
            sys.stderr.write(f"\r\033[Klineup: patching layer {done}/{total}")
            sys.stderr.flush()

    result = head_patch_grid_run(lm, corrupted, clean, metric, progress=progress)
    clean_metric, corrupted_metric = result.source_metric, result.target_metric
    grid = result.effects
    if show:
        sys.stderr.write("\r\033[K")
    timing = {"model_load": round(load_s, 4), "patching": round(time.perf_counter() - t1, 4)}
    decode = lm.tokenizer.decode
    answers = [[decode(c[:1]) if c else None, decode(w[:1]) if w else None]
               for c, w in zip(ps.correct[:n], ps.wrong[:n], strict=True)]
    if args.json:
        emit_json({
            "puzzle": puzzle.id, "model": lm.name, "metric": ps.metric.kind,
            "prompts": ps.texts[:n], "corrupted": ps.corrupted[:n], "answers": answers,
            "clean_metric": clean_metric, "corrupted_metric": corrupted_metric,
            "effects": [[round(float(v), 5) for v in row] for row in grid],
            "timing_s": timing,
        })
        return Exit.OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    gap = clean_metric - corrupted_metric
    # names come from files and folders: plain Text, never read as markup
    table = Table(title=Text(f"{puzzle.id}: {ps.metric.kind} with one head's clean output "
                             f"patched into the corrupted run ({n} prompts, {lm.label})"),
                  title_justify="left")
    table.add_column("layer", justify="right")
    for h in range(lm.n_heads):
        table.add_column(f"h{h}", justify="right")
    for layer, row in enumerate(grid):
        cells = []
        for v in row.tolist():
            frac = (v - corrupted_metric) / gap if abs(gap) > 1e-9 else 0.0
            style = "bold green" if frac >= 0.2 else ("red" if frac <= -0.2 else "")
            cells.append(f"[{style}]{v:.2f}[/]" if style else f"{v:.2f}")
        table.add_row(str(layer), *cells)
    console = Console()
    console.print(table)
    console.print(f"clean {clean_metric:.3f}, corrupted {corrupted_metric:.3f} "
                  "(each cell: the metric with that head restored)", highlight=False)
    return Exit.OK
