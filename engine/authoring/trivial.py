"""The circuits that must NOT solve a puzzle: the empty one, the reference solution with one
question made wrong, every card everywhere. A puzzle one of them solves is too easy.

Building them needs no model; grading them is ``engine.authoring.reference``'s job."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.puzzle import CARDS, Circuit, ModelBlock, Puzzle, Question, card_id, question_key

MAX_WRONG = 4
"""At most this many "one wrong question" circuits per puzzle (one per placed question)."""
MAX_EVERY_HEAD = 160
"""At most this many questions in the "every card, every round" circuit; past it, questions
asked by the metric's person and by the solution's askers are kept first."""


@dataclass
class Trivial:
    """A circuit that must NOT solve the puzzle, and how a problem names it."""

    kind: str  # "empty" | "wrong-question" | "every-head"
    label: str  # "the empty circuit", ...
    circuit: Circuit
    changed: Question | None = None  # wrong-question: the reference question made wrong
    into: Question | None = None  # ... and what it became
    left_out: int = 0  # every-head: questions dropped by MAX_EVERY_HEAD


def roles_behind(roles: dict[str, list[int]], order: Iterable[str] | None = None
                 ) -> dict[str, list[str]]:
    """For each role, the roles standing behind it (earlier in the line) in every prompt.
    ``roles`` is ``PromptSet.roles`` (role -> position per prompt); ``order`` the puzzle's
    role order (default: ``roles``' own)."""
    names = [r for r in (order or roles) if r in roles]
    return {a: [r for r in names if r != a
                and all(p < q for p, q in zip(roles[r], roles[a], strict=True))]
            for a in names}



def wrong_question(q: Question, block: ModelBlock, behind: dict[str, list[str]],
                   taken: Iterable[Question] = ()) -> Question | None:
    """``q`` made wrong: its responder changed to another role behind the asker or, when
    there is none (or the card is not a question), moved to another round (the next one, else
    the one before). None when neither is possible. Never a question in ``taken``."""
    used = {question_key(t) for t in taken} | {question_key(q)}
    card = CARDS.get(card_id(q.card))
    if card is not None and card.responder and q.responder is not None:
        for other in behind.get(q.asker, []):
            new = Question(q.round, q.asker, q.card, other)
            if other != q.responder and question_key(new) not in used:
                return new
    rounds = list(block.rounds)
    if q.round in rounds:
        i = rounds.index(q.round)
        for j in (*range(i + 1, len(rounds)), *range(i - 1, -1, -1)):
            new = Question(rounds[j], q.asker, q.card, q.responder)
            if question_key(new) not in used:
                return new
    return None


def every_head(puzzle: Puzzle, block: ModelBlock, behind: dict[str, list[str]],
               cap: int = MAX_EVERY_HEAD) -> tuple[list[Question], int]:
    """Every card the puzzle offers, in every round, for every asker and every responder
    behind it (cards that are not questions: every asker). Past ``cap`` questions, those
    asked by the metric's person, then by the solution's askers, then to the solution's
    responders are kept first. Returns (questions, how many were left out)."""
    out: list[Question] = []
    for rnd in block.rounds:
        for name in dict.fromkeys(card_id(c) for c in puzzle.cards):
            card = CARDS.get(name)
            if card is None:
                continue
            for asker in behind:
                if card.responder:
                    out.extend(Question(rnd, asker, name, r) for r in behind[asker])
                else:
                    out.append(Question(rnd, asker, name))
    if len(out) <= cap:
        return out, 0
    askers = {q.asker for q in block.solution}
    responders = {q.responder for q in block.solution}
    ranked = sorted(out, key=lambda q: (q.asker != puzzle.metric.at, q.asker not in askers,
                                        q.responder not in responders))
    keep = set(ranked[:cap])
    return [q for q in out if q in keep], len(out) - cap


def trivial_circuits(puzzle: Puzzle, block: ModelBlock, behind: dict[str, list[str]], *,
                     cap: int = MAX_EVERY_HEAD) -> list[Trivial]:
    """The circuits that must fail: (a) the empty circuit (the judge still places the
    block's given questions); (b) the reference solution with one placed (not given)
    question made wrong, one circuit per such question (at most ``MAX_WRONG``); (c) every
    card in every round for every asker and responder behind it (at most ``cap``)."""
    pid = puzzle.id
    n = len(block.given)
    label = "the empty circuit" + (f" (with its {n} given question{'s' if n != 1 else ''})"
                                   if n else "")
    out = [Trivial("empty", label, Circuit(pid, []))]
    given = {question_key(q) for q in block.given}
    placed = [q for q in block.solution if question_key(q) not in given]
    for q in placed[:MAX_WRONG]:
        new = wrong_question(q, block, behind, block.solution)
        if new is None:
            continue
        questions = [new if x is q else x for x in block.solution]
        what = ("its responder" if new.round == q.round else "its round")
        out.append(Trivial("wrong-question",
                           f"the reference solution with {q} changed to {new} ({what} "
                           "changed)", Circuit(pid, questions), changed=q, into=new))
    questions, left_out = every_head(puzzle, block, behind, cap)
    if questions:
        more = f", {left_out} more left out" if left_out else ""
        out.append(Trivial("every-head", f"every card in every round ({len(questions)} "
                           f"questions{more})", Circuit(pid, questions), left_out=left_out))
    return out
