"""Judge before the player asks: run, ahead of any check, what a check of a puzzle will need.

Why: a cold check on a real model spends most of its time in runs that depend only on the
puzzle, not on the player's circuit: the clean and corrupted runs of the prompts, every head's
scores, and for each question the player could place (a round, an asker, a card, a responder)
the patched runs that judge it. ``prepare`` makes them while the player reads the puzzle, in
order of how likely a check needs them (the puzzle's own solution and givens first, then every
other question it offers), and saves each measurement with the split (``engine.judge.runs``),
so the check that follows finds them there. What is left for the check is what depends on the
whole circuit: its faithfulness and whether each question is needed.

It stops as soon as ``cancelled()`` turns true (the player left the puzzle, or pressed check),
keeping what it had measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.loaded import LoadedModel
    from engine.puzzle import Puzzle, Question

SAVE_EVERY_S = 2.0
"""How often measurements are written back while preparing (so a cancel loses little)."""


@dataclass
class Prepared:
    """What a preparation did: for the progress bar, tests and benchmarks."""

    puzzle: str
    questions: int = 0  # questions judged ahead
    of: int = 0  # questions the puzzle offers in all
    heldout: bool = False  # the held-out prompts' runs are ready too
    cancelled: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def candidate_questions(puzzle: Puzzle, block_name: str,
                        positions: dict[str, list[int]] | None = None) -> list[Question]:
    """Every question the puzzle lets a player place on this block, the likeliest first: its
    solution, its givens, then each round, asker, card and responder the rules allow."""
    from engine.puzzle import CARDS, Question, card_id, question_key, question_problem

    block = puzzle.models[block_name]
    seen: set[tuple] = set()
    out: list[Question] = []

    def add(q: Question) -> None:
        key = question_key(q)
        if key in seen or question_problem(q, puzzle, block, positions) is not None:
            return
        seen.add(key)
        out.append(q)

    for q in [*(block.solution or []), *block.given]:
        add(q)
    roles = list(puzzle.roles)
    for rnd in block.rounds:
        for asker in roles:
            for card in puzzle.cards:
                if not CARDS[card_id(card)].responder:
                    add(Question(rnd, asker, card, None))
                    continue
                for responder in roles:
                    if responder != asker:
                        add(Question(rnd, asker, card, responder))
    return out


def prepare(puzzle: Puzzle, lm: LoadedModel, *,
            progress: Callable[[str, float], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> Prepared:
    """Run and save what checks of ``puzzle`` on ``lm`` will need (see the module docstring).
    ``progress(stage, fraction)`` hears what is being prepared; returns when done or when
    ``cancelled()`` turns true."""
    from engine.judge.grading import grade
    from engine.judge.questions import _Judge, _normalise
    from engine.judge.runs import _load_split, _save_effects
    from engine.judge.scores import _head_scores
    from engine.judge.task import task_check
    from engine.puzzle import Circuit

    t0 = time.perf_counter()
    done = Prepared(puzzle.id)
    block = puzzle.block(lm.block)
    if block is None:
        raise UsageError(f"puzzle {puzzle.id!r} is locked for this model ({lm.label})")
    stop = cancelled or (lambda: False)
    play = None

    def tell(stage: str, fraction: float) -> None:
        if stop():
            raise InterruptedError("preparation cancelled")
        if progress is not None:
            progress(stage, fraction)

    try:
        # The reference circuit's check: both splits, the head scores, faithfulness.
        if block.solution:
            grade(puzzle, Circuit(puzzle.id, list(block.solution)), lm,
                  progress=lambda stage, f: tell(f"preparing: {stage}", 0.5 * f),
                  cancelled=stop)
            done.heldout = True
        done.seconds["reference"] = time.perf_counter() - t0
        roles = list(puzzle.roles)
        ps = puzzle.build_prompts(lm.tokenizer, "play")
        play, _ = _load_split(lm, ps, roles, play=True, cancelled=stop)
        judge = _Judge(puzzle, block, lm, play, _head_scores(lm), roles)
        task = task_check(play, puzzle)
        if not task.ok:
            return done
        questions = candidate_questions(puzzle, block.name, ps.roles)
        done.of = len(questions)
        last_save = time.perf_counter()
        for i, q in enumerate(questions):
            tell(f"preparing: question {i + 1} of {len(questions)}",
                 0.5 + 0.5 * i / max(1, len(questions)))
            judge.judge_question(_normalise(q), False, task)
            done.questions = i + 1
            if play.dirty and time.perf_counter() - last_save > SAVE_EVERY_S:
                _save_effects(play)
                last_save = time.perf_counter()
        if play.dirty:
            _save_effects(play)
    except InterruptedError:
        done.cancelled = True
        if play is not None and play.dirty:
            _save_effects(play)  # keep what was measured
        return done
    finally:
        done.seconds["total"] = time.perf_counter() - t0
    tell("prepared", 1.0)
    return done
