"""Seeded random keys on the toy model: the game never crashes, whatever is typed and however
fast, and always ends cleanly.

Keys go in groups sent all at once (as tmux send-keys or a fast typist delivers them, so a
key lands while screens change: ``q x`` typed together once crashed the menu), with no wait,
a short one or until the game is idle after each group. When a key quits the game, a new
game starts on the same home, until every key of the run is sent. Each game is then checked
the way ``lineup play`` ends one: its exit code through ``game.commands.play.finish``, and no
crash log written.
"""

from __future__ import annotations

import asyncio
import random
import sys

import pytest
from tui_helpers import send_now

from game.app import LineupApp
from game.commands.play import finish
from game.screens.menu import MenuScreen

LETTERS = "abcdefghijklmnopqrstuvwxyz"
KEYS = ([*LETTERS] + [*"0123456789"] * 2 + ["up", "down", "left", "right"] * 4
        + ["enter"] * 6 + ["escape"] * 8 + ["tab"] * 2 + ["backspace", "space", "ctrl+p"]
        + ["question_mark"] * 2 + ["x", "o"] * 3 + ["q"] * 2
        + ["left_square_bracket", "right_square_bracket", "comma", "full_stop"])
SPECIAL = [["q", "x"], ["q", "o"], ["q", "ctrl+p"], ["q", "question_mark"],
           ["x", "escape"], ["o", "escape"], ["a", "escape"], ["escape", "q", "x"]]


def keys_for_run(rng: random.Random, total: int) -> list[tuple[list[str], float | None]]:
    """``total`` keys in groups, each sent at once and followed by a wait: none, a few
    milliseconds, 60 ms, or until the screen has caught up (None). Some groups are the
    races found by hand (``SPECIAL``)."""
    groups: list[tuple[list[str], float | None]] = []
    sent = 0
    while sent < total:
        roll = rng.random()
        if roll < 0.08:
            keys = list(rng.choice(SPECIAL))
        elif roll < 0.5:
            keys = [rng.choice(KEYS)]
        else:
            keys = [rng.choice(KEYS) for _ in range(rng.randint(2, 12))]
        groups.append((keys, rng.choice([0.0, 0.0, 0.002, 0.01, 0.01, 0.03, 0.06, None])))
        sent += len(keys)
    return groups


def play_keys(groups: list[tuple[list[str], float | None]], size: tuple[int, int],
              crashes: list[str]) -> int:
    """Play the groups in as many games as it takes (a ``q`` on the menu ends one); returns
    how many games were played. A game that ends badly, or whose menu is popped (leaving
    Textual's blank default screen), adds a line to ``crashes``."""
    games = 0
    while groups:
        games += 1
        app = LineupApp(model="toy")

        async def auto(pilot, app=app, game=games) -> None:
            await pilot.pause()
            while groups and app.return_code is None:  # None until the game exits
                keys, wait = groups.pop(0)
                send_now(app, keys)
                if wait is None:  # slow: the screen handles every message sent, then a pause
                    await pilot.pause(0.05)
                else:
                    await asyncio.sleep(wait)
                stack = app.screen_stack
                if app.return_code is None and (len(stack) < 2
                                                or not isinstance(stack[1], MenuScreen)):
                    crashes.append(f"game {game}: the menu was popped after {keys}: "
                                   f"{[type(s).__name__ for s in stack]}")
                    app.exit()
            if app.return_code is None:
                await pilot.press("ctrl+q")

        result = app.run(headless=True, size=size, auto_pilot=auto)
        code = finish(app, result)
        if code != 0:
            crashes.append(f"game {games} at {size} ended with exit code {code}")
    return games


RACES = [
    (None, ["q", "x"]),  # the sandbox pushed after quit: NoMatches 'Input' in on_mount
    (None, ["q", "o"]),  # AskText likewise
    (None, ["q", "enter", "a"]),  # a puzzle opened after quit, then a key for it
    (None, ["q", "ctrl+p", "down"]),  # the palette opened after quit, then a key for it
    (None, ["x", "escape"]),  # popped before it was drawn
    (None, ["enter", "escape"]),  # the puzzle likewise: NoMatches '#story'
    ("induction-head", ["a", "escape"]),  # the add dialog likewise: '#dialog-title'
    ("induction-head", ["a", "1", "escape", "escape", "escape"]),
    (None, ["ctrl+p", "enter", "enter"]),  # ran the command twice, popped the menu
    (None, ["ctrl+p", "escape", "ctrl+p"]),  # a second palette while the first is removed
    (None, ["question_mark", "escape", "escape", "q"]),
]


@pytest.mark.parametrize(("puzzle", "keys"), RACES, ids=[" ".join(k) for _, k in RACES])
def test_keys_typed_while_screens_change(puzzle, keys, lineup_home, capsys) -> None:
    """Each race of keys typed together: all at once, then one by one with no time and with
    a millisecond between them (whether a key lands before, during or after a screen change
    depends on that): no crash, the menu stays, a clean exit."""
    from tests.fake_engine import FakeEngine

    for attempt, gap in enumerate([None, 0.0, 0.001]):
        app = LineupApp(engine=FakeEngine(), puzzle=puzzle)
        popped: list[list[str]] = []

        async def auto(pilot, app=app, popped=popped, gap=gap) -> None:
            await pilot.pause()
            if gap is None:
                send_now(app, keys)
            else:  # one key at a time, the app's loop given a turn (or a millisecond) between
                for k, key in enumerate(keys):
                    if k:
                        await asyncio.sleep(gap)
                    send_now(app, [key])
            for _ in range(4 * len(keys)):
                await pilot.pause()
                stack = app.screen_stack
                if app.return_code is None and not (len(stack) > 1
                                                    and isinstance(stack[1], MenuScreen)):
                    popped.append([type(s).__name__ for s in stack])
            if app.return_code is None:
                await pilot.press("ctrl+q")

        code = finish(app, app.run(headless=True, size=(100, 30), auto_pilot=auto))
        assert code == 0, f"attempt {attempt}: {capsys.readouterr().err[-2000:]}"
        assert not popped, f"attempt {attempt}: the menu was popped: {popped[0]}"
    assert not list((lineup_home / "data").glob("crash-*.log"))


@pytest.mark.parametrize("size", [(120, 40), (40, 12)], ids=["120x40", "40x12"])
def test_random_keys_never_crash(size, lineup_home, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # `s` saves circuit files under the name typed: keep them here
    rng = random.Random(f"lineup-keys-{size[0]}x{size[1]}")
    groups = keys_for_run(rng, 1500)
    crashes: list[str] = []
    games = play_keys(groups, size, crashes)
    logs = sorted((lineup_home / "data").glob("crash-*.log"))
    err = capsys.readouterr().err
    detail = logs[0].read_text(encoding="utf-8")[-3000:] if logs else err[-3000:]
    assert not crashes and not logs, f"{crashes} in {games} games\n{detail}"
    print(f"{games} games", file=sys.stderr)
