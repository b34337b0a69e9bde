"""Whether a ladder climbs: a given question must not show the player what a later puzzle of
the same ladder asks them to find (``lineup validate`` reports each such given)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.puzzle.files import Puzzle
    from engine.puzzle.parts import ModelBlock, Question


@dataclass
class Reveal:
    """A given question that shows the player what a later puzzle asks them to find."""

    puzzle: str
    block: str
    index: int  # in the block's ``given``
    message: str


def _job(q: Question) -> tuple[str, str, str | None]:
    """What a question says, whatever its round: knowing who asks whom with which card is
    most of an answer."""
    return (q.asker, q.card, q.responder)


def ladder_reveals(puzzles: Sequence[Puzzle], blocks: Sequence[str] | None = None
                   ) -> list[Reveal]:
    """Givens that give away a later puzzle of the same ladder, per model block.

    A ladder climbs when each given question either reuses what an earlier puzzle asked the
    player to find, or is never asked for later. A given first shown in puzzle i and asked
    for in puzzle j > i turns puzzle j into copying (``puzzles`` in ladder order)."""
    out: list[Reveal] = []
    names = blocks or sorted({b for p in puzzles for b in p.models})
    for name in names:
        found_before: set[tuple] = set()
        for i, p in enumerate(puzzles):
            block = p.models.get(name)
            if block is None:
                continue
            for k, g in enumerate(block.given):
                if _job(g) in found_before:
                    continue
                later = next((q for q in puzzles[i + 1:] if q.models.get(name) is not None
                              and _job(g) in {_job(x) for x in _found(q.models[name])}), None)
                if later is not None:
                    out.append(Reveal(p.id, name, k, (
                        f"given question {g} gives away puzzle {later.id!r} ({later.ladder} "
                        f"{later.order}), which asks the player to find it: in the {name} "
                        "block, give only what an earlier puzzle asked for, or keep those "
                        "layers (`kept`) instead of showing the question")))
            found_before |= {_job(q) for q in _found(block)}
    return out


def _found(block: ModelBlock) -> list[Question]:
    """The questions a block asks the player to place: its solution minus its givens."""
    given = {_job(g) for g in block.given}
    return [q for q in block.solution if _job(q) not in given]
