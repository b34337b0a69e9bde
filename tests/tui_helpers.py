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


async def type_fast(pilot, keys) -> None:
    """Send every key at once, as a fast typist or a paste does in a real terminal (Pilot's
    ``press`` waits for the app to go idle after each key, which hides races), then let the
    app catch up."""
    send_now(pilot.app, keys)
    for _ in range(3 * len(keys) + 5):
        await pilot.pause()


def send_now(app, keys) -> None:
    """Hand keys to the app the way its terminal driver does (from outside its message
    loop), without waiting for anything: the moment they are sent is the caller's to pick."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    for key in keys:
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)
        original = REPLACED_KEYS.get(key, key)
        try:
            char = unicodedata.lookup(_get_unicode_name_from_key(original))
        except KeyError:
            char = key if len(key) == 1 else None
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)
