"""Grading a puzzle's reference solution and its trivial circuits with the judge, for
``lineup validate --model M``: the reference must be solved, every given question must hold
(givens are never held against the player), and no trivial circuit may pass. torch and the
judge are imported only inside these functions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from engine.authoring.trivial import roles_behind, trivial_circuits
from engine.errors import LineupError, UsageError
from engine.puzzle import Circuit, Doc, Problem, Puzzle, Question, RoleError, question_key
from engine.puzzle.reader import Findings
from engine.report import HOLDING


def _stars(report: Any) -> str:
    held = ("" if report.heldout_faithfulness is None else
            f", held-out {report.heldout_faithfulness:.2f} (line "
            f"{report.heldout_pass_line:.2f})")
    return (f"{report.stars} star{'s' if report.stars != 1 else ''}, faithfulness "
            f"{report.faithfulness:.2f}, pass line {report.pass_line:.2f}{held}")


def check_reference_with_judge(puzzle: Puzzle, model_spec: str, *, doc: Doc | None = None,
                               lm: Any = None, device: str | None = None,
                               progress: Callable[[str], None] | None = None
                               ) -> list[Problem]:
    """Grade the puzzle's reference solution on ``model_spec`` (``lm`` when already loaded;
    otherwise ``engine.judge.load_for``, which raises ``UsageError`` for a locked puzzle and
    ``ModelError`` for a missing model) and the ``trivial_circuits``. Returns a Problem for
    the reference solution not being solved (at each question the judge did not confirm, with
    its message; when every question holds, for faithfulness below the pass line) and for
    each trivial circuit that is solved (then the puzzle is too easy). "One wrong question"
    circuits are skipped when the reference itself fails. ``progress(text)`` hears what is
    being graded."""
    from engine.judge import grade, load_for

    say = progress or (lambda _text: None)
    if lm is None:
        lm = load_for(puzzle, model_spec, device)
    block = puzzle.block(lm.block)
    if block is None:
        raise UsageError(f"puzzle {puzzle.id!r} is locked for {lm.label}")
    name = lm.name
    base = ("models", block.name)
    out = Findings(doc, str(puzzle.path or "<puzzle>"))

    def entry(q: Question) -> tuple:
        for field_ in ("solution", "given"):
            for i, x in enumerate(getattr(block, field_)):
                if question_key(x) == question_key(q):
                    return (*base, field_, i)
        return (*base, "solution")

    def written(q: Question, questions: Iterable[Question]) -> Question | None:
        """The question as the file writes it (with its line), among ``questions``."""
        return next((x for x in questions if question_key(x) == question_key(q)), None)

    def locate(at: tuple, q: Question | None, message: str) -> None:
        if doc is None and q is not None and q.line:
            out.problems.append(Problem(out.path, q.line, q.col or 1, message))
        else:
            out.add(at, message)

    say(f"grading reference solution of {puzzle.id} on {name} ...")
    try:
        report = grade(puzzle, Circuit(puzzle.id, list(block.solution)), lm)
    except LineupError as exc:
        out.add((*base, "solution"), f"the judge could not grade the reference solution on "
                                     f"{name}: {exc}")
        return out.problems
    if not report.task_ok:
        out.add((*base, "solution"), f"the {name} model cannot play this puzzle: "
                                     f"{report.task_message}", key=True)
        return out.problems
    for qr in report.questions:
        if qr.given and qr.verdict not in HOLDING:
            # a given question is never held against the player, so it must be true
            q = Question(qr.round, qr.asker, qr.card, qr.responder)
            src = written(q, block.given)
            locate(entry(q), src, f"the given question {q} is not supported by {name}: it "
                                  f"is {qr.verdict}: {qr.message}")
    if not report.solved:
        head = f"the reference solution is not solved on {name} ({_stars(report)})"
        told = False
        for qr in report.questions:
            if qr.verdict in HOLDING or qr.given:
                continue
            q = Question(qr.round, qr.asker, qr.card, qr.responder)
            src = written(q, (*block.solution, *block.given))
            locate(entry(q), src, f"{head}: {q} is {qr.verdict}: {qr.message}")
            told = True
        if not told and report.faithfulness < report.pass_line:
            out.add((*base, "solution"), f"{head}: faithfulness {report.faithfulness:.2f} is "
                                         f"below the pass line {report.pass_line:.2f}",
                    key=True)
            told = True
        if not told:
            why = "; ".join(report.problems) or "the judge gave it no second star"
            out.add((*base, "solution"), f"{head}: {why}", key=True)
    say(f"{puzzle.id} on {name}: reference solution "
        f"{'solved' if report.solved else 'NOT solved'} ({_stars(report)})")

    try:
        ps = puzzle.build_prompts(lm.tokenizer, "play")
    except (RoleError, ValueError, KeyError) as exc:
        out.add(("prompts",), f"cannot build the prompts on {name}: {exc}")
        return out.problems
    trivials = trivial_circuits(puzzle, block, roles_behind(ps.roles, puzzle.roles))
    if not report.solved:
        # "one wrong question" means wrong against a solution that works; against a broken
        # one it may well be the fix, which is no sign of an easy puzzle
        trivials = [t for t in trivials if t.kind != "wrong-question"]
    say(f"grading {len(trivials)} trivial circuits of {puzzle.id} on {name} ...")
    passed = 0
    for t in trivials:
        try:
            r = grade(puzzle, t.circuit, lm, fail_fast=True)
        except LineupError as exc:
            out.add(base, f"the judge could not grade {t.label} on {name}: {exc}")
            continue
        if not r.solved:
            continue
        passed += 1
        msg = f"the puzzle is too easy on {name}: {t.label} passes ({_stars(r)})"
        if t.kind == "empty":
            out.add((*base, "given") if block.given else (*base, "solution"), msg, key=True)
        elif t.kind == "wrong-question" and t.changed is not None:
            locate(entry(t.changed), t.changed, msg)
        else:
            out.add(("cards",), msg, key=True)
    if passed:
        say(f"{puzzle.id} on {name}: {passed} of {len(trivials)} trivial circuits pass: the "
            "puzzle is too easy")
    else:
        say(f"{puzzle.id} on {name}: {len(trivials)} of {len(trivials)} trivial circuits fail, "
            "as they should")
    return out.problems



def judge_model(puzzle: Puzzle, spec: str, device: str | None, models: dict[str, Any],
                 notes: list[str], progress: Callable[[str], None] | None) -> Any:
    """The model that grades ``puzzle`` for ``--model spec``, loaded once per name (a toy
    block may name its own toy); None (and a note, once) when it cannot be loaded."""
    from engine.judge import model_spec_for

    name = model_spec_for(puzzle, spec)
    if name not in models:
        if progress is not None:
            progress(f"loading model {name} ...")
        try:
            from engine.models import load_model

            models[name] = load_model(name, device=device)
        except LineupError as exc:
            models[name] = exc
            notes.append(f"reference solutions were not graded on {name}: {exc}")
    lm = models[name]
    return None if isinstance(lm, LineupError) else lm


