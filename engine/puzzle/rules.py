"""The one rule for whether a question can be asked, every reason at once.

``lineup validate`` (located), the judge and the game (the first reason) all read
``question_problems``; ``stands_behind`` is the one rule for where a responder may stand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.cards import CARDS, card_id
from engine.puzzle.files import Puzzle
from engine.puzzle.parts import ModelBlock, Question
from engine.puzzle.suggest import did_you_mean, one_of


def stands_behind(responder: Sequence[int], asker: Sequence[int]) -> bool:
    """The one rule for where a responder may stand: strictly behind the asker (an earlier
    position) in every prompt. Someone at the asker's own position is the asker, and thinking
    alone is the think card, not a question."""
    return all(r < a for r, a in zip(responder, asker, strict=True))


def behind_message(responder: str, asker: str) -> str:
    return (f"{responder} stands in front of {asker}: a question is heard only by the "
            "people behind the asker")


@dataclass(frozen=True)
class QuestionProblem:
    """One reason a question cannot be asked. ``field`` is the part of the question it is
    about (where the validator points); ``kind`` lets a caller leave out what it already
    reports elsewhere (``role`` when the roles themselves are broken, ``not-offered`` when
    the card list is)."""

    field: str  # round | asker | card | responder
    kind: str  # round | role | unknown-card | not-offered | responder | behind
    message: str


def question_problems(q: Question, puzzle: Puzzle, block: ModelBlock,
                      positions: dict[str, list[int]] | None = None) -> list[QuestionProblem]:
    """The one rule for whether a question can be asked in a puzzle's block, every reason
    at once. ``lineup validate`` (located), the judge and the game (the first reason) all
    read this. With ``positions`` (each role's position per prompt, ``PromptSet.roles``) the
    responder must also stand behind the asker in every prompt (``stands_behind``)."""
    out: list[QuestionProblem] = []
    roles = list(puzzle.roles)
    if q.round not in block.rounds:
        out.append(QuestionProblem("round", "round", (
            f"no round called {q.round!r}{did_you_mean(q.round, block.rounds)}; "
            f"the {block.name} rounds are {one_of(block.rounds)}")))
    for field_, role in (("asker", q.asker), ("responder", q.responder)):
        if role is not None and role not in roles:
            out.append(QuestionProblem(field_, "role", (
                f"{field_}: no role called {role!r}{did_you_mean(role, roles)}; "
                f"roles are {one_of(roles)}")))
    cid = card_id(q.card)
    card = CARDS.get(cid)
    if card is None:
        out.append(QuestionProblem("card", "unknown-card", (
            f"unknown card {q.card!r}{did_you_mean(q.card, CARDS)}; "
            f"this puzzle offers {one_of(puzzle.cards)}")))
        return out
    if cid not in [card_id(c) for c in puzzle.cards]:
        out.append(QuestionProblem("card", "not-offered", (
            f"card {q.card!r} is not offered by this puzzle"
            f"{did_you_mean(q.card, puzzle.cards)}; it offers {one_of(puzzle.cards)}")))
    if not card.responder:
        if q.responder not in (None, q.asker):
            out.append(QuestionProblem("responder", "responder", (
                f"card {q.card!r} is not a question: nobody answers it, so leave out "
                "`responder`")))
    elif q.responder is None:
        out.append(QuestionProblem("card", "responder", (
            f"card {q.card!r} is a question: say who answers it (`responder`)")))
    elif q.responder == q.asker:
        out.append(QuestionProblem("responder", "responder", (
            f"{q.asker} cannot ask themself: a question is heard only by the people behind "
            "the asker (thinking alone is the think card)")))
    elif positions is not None and q.responder in positions and q.asker in positions and \
            not stands_behind(positions[q.responder], positions[q.asker]):
        out.append(QuestionProblem("responder", "behind", behind_message(q.responder, q.asker)))
    return out


def question_problem(q: Question, puzzle: Puzzle, block: ModelBlock,
                     positions: dict[str, list[int]] | None = None) -> str | None:
    """The first reason of ``question_problems``, or None: what the judge says of a question
    it cannot grade at all."""
    problems = question_problems(q, puzzle, block, positions)
    return problems[0].message if problems else None


def question_key(q: Question) -> tuple:
    """What makes two questions the same question: the card by its id, whatever alias the
    file wrote."""
    return (q.round, q.asker, card_id(q.card), q.responder)
