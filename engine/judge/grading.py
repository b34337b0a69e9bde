"""``grade``: the task, every question, faithfulness and minimality, into one Report; and
what callers need to load the model a puzzle is played on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.errors import UsageError
from engine.judge.questions import _invalid, _Judge, _normalise
from engine.judge.runs import _ensure, _load_split, _save_effects
from engine.judge.scores import _head_scores
from engine.judge.task import task_check
from engine.judge.thresholds import NEED_LOSS, Head, _num
from engine.metrics import PuzzleMetric
from engine.report import QuestionReport, Report, stars_for

if TYPE_CHECKING:
    from engine.loaded import LoadedModel
    from engine.puzzle import Circuit, PromptSet, Puzzle, Question


def grade(puzzle: Puzzle, circuit: Circuit, lm: LoadedModel, *,
          progress: Callable[[str, float], None] | None = None,
          cancelled: Callable[[], bool] | None = None, fail_fast: bool = False) -> Report:
    """Grade ``circuit`` for ``puzzle`` on ``lm`` (its ``lm.block`` block). See the module
    docstring for the rules. Raises ``UsageError`` when the puzzle is locked for the model and
    ``InterruptedError`` when ``cancelled()`` turns true.

    ``fail_fast`` stops at the first placed question that does not hold: the report then
    only answers "solved or not" (no star can come of it), which is all the validator asks
    of a trivial circuit of a hundred questions."""
    t0 = time.perf_counter()
    timing: dict[str, float] = {}

    def step(stage: str, fraction: float) -> None:
        if cancelled is not None and cancelled():
            raise InterruptedError("grading cancelled")
        if progress is not None:
            progress(stage, fraction)

    block = puzzle.block(lm.block)
    if block is None:
        raise UsageError(f"puzzle {puzzle.id!r} is locked for this model ({lm.label}): "
                         f"it is played on {', '.join(puzzle.models) or 'no model'}")
    step("prompts", 0.0)
    roles = list(puzzle.roles)
    ps_play = puzzle.build_prompts(lm.tokenizer, "play")
    timing["prompts"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    step("running the swapped sentences", 0.05)
    play, cached_play = _load_split(lm, ps_play, roles, play=True, cancelled=cancelled,
                                    step=step)
    step("measuring every head", 0.45)
    heads = _head_scores(lm)
    timing["runs"] = time.perf_counter() - t1
    timing["cached"] = 1.0 if cached_play else 0.0

    t2 = time.perf_counter()
    judge = _Judge(puzzle, block, lm, play, heads, roles)
    task = task_check(play, puzzle)
    problems: list[str] = []
    wrong_puzzle = bool(circuit.puzzle) and circuit.puzzle != puzzle.id
    if wrong_puzzle:
        problems.append(f"this circuit is for {circuit.puzzle!r}, not {puzzle.id!r}")
    if not task.ok:
        problems.append(task.message)

    # the questions: the given ones first, then the player's (repeats of a given one merge)
    given = [_normalise(q) for q in block.given]
    placed: list[tuple[Question, bool]] = [(q, True) for q in given]
    seen = set(given)
    reports: list[QuestionReport] = []
    for q in circuit.questions:
        q = _normalise(q)
        if q in seen:
            if q not in given:
                problems.append(f"the question {q} is placed twice")
            continue
        seen.add(q)
        placed.append((q, False))

    used: list[list[Head]] = []
    for i, (q, is_given) in enumerate(placed):
        step(f"checking question {i + 1} of {len(placed)}", 0.6 + 0.3 * i / max(1, len(placed)))
        why = _invalid(q, puzzle, block, roles, ps_play)
        if why is not None:
            reports.append(QuestionReport(q.round, q.asker, q.card, q.responder, is_given,
                                          "invalid", why))
            used.append([])
            continue
        rep, heads_used = judge.judge_question(q, is_given, task)
        reports.append(rep)
        used.append(heads_used)
        if fail_fast and not is_given and not rep.holds:
            rest = len(placed) - i - 1
            if rest:
                problems.append(f"stopped at the first question that does not hold ({rest} "
                                "more not judged)")
            break

    step("faithfulness", 0.9)
    keep = {h for hs in used for h in hs}
    faith = judge.faithfulness(play, keep) if task.ok else 0.0
    pass_line = block.thresholds.faithfulness
    held_line = block.thresholds.heldout_faithfulness
    holds = bool(reports) and all(r.holds for r in reports) and task.ok
    completeness: dict[str, float] = {}
    if holds and faith >= pass_line and block.thresholds.within is not None:
        completeness = judge.completeness(play, keep, faith, reports, used)
        if not completeness["ok"]:
            problems.append(judge.incomplete_words(completeness))
    complete = not completeness or bool(completeness["ok"])

    # Held-out prompts can only confirm a pass, so they are run only once the play prompts
    # pass; otherwise their faithfulness is not measured (None).
    splits = [play]
    faith_held: float | None = None
    if holds and faith >= pass_line and complete:
        t3 = time.perf_counter()
        step("held-out prompts", 0.92)
        ps_held = puzzle.build_prompts(lm.tokenizer, "heldout")
        heldout, cached_held = _load_split(lm, ps_held, roles, play=False, cancelled=cancelled,
                                           step=step)
        splits.append(heldout)
        timing["cached"] = 1.0 if (cached_play and cached_held) else 0.0
        faith_held = judge.faithfulness(heldout, keep)
        timing["heldout"] = time.perf_counter() - t3

    # minimality: drop each confirmed question the player placed (its heads no other uses)

    drops = []
    for i, rep in enumerate(reports):
        if faith < pass_line or not task.ok:
            break  # minimality only matters for the third star, which needs the second
        if rep.verdict != "confirmed" or rep.given or rep.card in ("think",
                                                                   "backup-name-mover"):
            continue
        rest = {h for j, hs in enumerate(used) if j != i for h in hs}
        drops.append((i, rest))
    _ensure(lm, play, [judge.silenced(rest) for _, rest in drops])
    for i, rest in drops:
        rep = reports[i]
        without = judge.faithfulness(play, rest)
        rep.drop_loss = faith - without
        needed = abs(rep.drop_loss) >= NEED_LOSS or (faith >= pass_line > without)
        if not needed:
            rep.verdict = "not-needed"
            rep.message = (f"{rep.message}; but the others already carry it: faithfulness is "
                           f"{_num(without)} without this question and {_num(faith)} with it")

    stars = stars_for(reports, faith, pass_line, faith_held, held_line, task_ok=task.ok,
                      right_puzzle=not wrong_puzzle, complete=complete)
    if stars >= 1 and faith < pass_line:
        problems.append(f"faithfulness {_num(faith)} is below the pass line {_num(pass_line)}: "
                        "a step is missing")
    elif stars == 2 and faith_held is not None and faith_held < held_line:
        problems.append(f"held-out faithfulness {_num(faith_held)} is below "
                        f"{_num(held_line)}: the circuit fits the play prompts only")
    timing["judging"] = time.perf_counter() - t2
    timing["total"] = time.perf_counter() - t0

    # write back what this check learnt (new patched runs) to the small side files
    for split in splits:
        if split.dirty:
            _save_effects(split)
    step("done", 1.0)
    return Report(
        puzzle=puzzle.id, model=lm.name, model_label=lm.label, solved=stars >= 2, stars=stars,
        metric_full=play.clean, metric_corrupted=play.corrupted, faithfulness=faith,
        heldout_faithfulness=faith_held, pass_line=pass_line, questions=reports,
        problems=problems, timing_s=timing, heldout_pass_line=held_line,
        metric_ablated=judge.floor(play), circuit_heads=[f"{a}.{b}" for a, b in sorted(keep)],
        task_ok=task.ok, task_message=task.message, accuracy=task.accuracy,
        completeness=completeness,
    )


# --------------------------------------------------------------------------- helpers for callers


def model_spec_for(puzzle: Puzzle, spec: str | None) -> str:
    """The --model value to load for a puzzle: ``spec`` as given, except that "toy" (or no
    model while GPT-2 is absent) becomes the bundled toy the puzzle's toy block names."""
    from engine.models import default_model_name

    spec = spec or default_model_name()
    block = puzzle.block("toy")
    if spec == "toy" and block is not None and block.toy:
        return block.toy
    return spec


def load_for(puzzle: Puzzle, spec: str | None, device: str | None = None) -> LoadedModel:
    """Load the model a puzzle is played on, refusing (``UsageError``) when it is locked."""
    from engine.models import load_model

    lm = load_model(model_spec_for(puzzle, spec), device=device)
    if puzzle.block(lm.block) is None:
        raise UsageError(f"puzzle {puzzle.id!r} is locked for this model ({lm.label}): it is "
                         f"played on {', '.join(puzzle.models) or 'no model'}")
    return lm


class LastMetric(PuzzleMetric):
    """The puzzle's metric on last-position logits [n, vocab] (tiles stacked copies), for
    ``engine.interventions.head_patch_grid``: ``engine.metrics.PuzzleMetric`` built from a
    PromptSet."""

    def __init__(self, ps: PromptSet) -> None:
        super().__init__(ps.metric.kind, ps.correct, ps.wrong)
        self.ps = ps
