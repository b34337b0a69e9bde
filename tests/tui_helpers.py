"""Helpers shared by the TUI tests (imported as `from tui_helpers import ...`: pytest's default
`prepend` import mode puts `tests/` on sys.path, since it has no `__init__.py`)."""

from __future__ import annotations


def solution_keys(puzzle_id: str, block: str = "toy") -> list[str]:
    """The keys that place a puzzle's reference questions (those not given): a, then the
    number of the round, the asker, the card and the responder in each picker."""
    from engine.puzzle import find_puzzle
    from game.engine_bridge import line_of

    puzzle = find_puzzle(puzzle_id)
    line = line_of(puzzle)
    spec = puzzle.models[block]
    people = sorted(line.roles, key=line.roles.__getitem__)
    keys: list[str] = []
    for q in spec.solution:
        if q in spec.given:
            continue
        keys += ["a", str(list(spec.rounds).index(q.round) + 1),
                 str(people.index(q.asker) + 1), str(puzzle.cards.index(q.card) + 1)]
        if q.responder:
            behind = [n for n in people if line.roles[n] < line.roles[q.asker]]
            keys.append(str(behind.index(q.responder) + 1))
    return keys


def plain(renderable: object, width: int = 240) -> str:
    """What a Rich renderable (a Static's content, a verdict Group) reads as, in plain text."""
    import io

    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, color_system=None, legacy_windows=False).print(renderable)
    return out.getvalue()
