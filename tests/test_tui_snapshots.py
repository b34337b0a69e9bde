"""Snapshots of every screen at 80x24 and 120x40, on the fake engine (no clocks, no model).

The puzzles are a frozen copy (``tests/tui_fixtures/pack``), so a snapshot
changes only when the TUI does, not when a puzzle's story is rewritten. Update after looking
at the report: ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input
from tui_helpers import solution_keys

from game.app import LineupApp
from tests.fake_engine import FakeEngine

SIZES = [(80, 24), (120, 40)]
PACK = Path(__file__).parent / "tui_fixtures" / "pack"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("LINEUP_ANIMATIONS", "none")
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")


def app(puzzle: str | None = "induction-head") -> LineupApp:
    return LineupApp(engine=FakeEngine(), puzzle=puzzle, pack=PACK)


async def settle(pilot) -> None:
    app = pilot.app
    await pilot.pause()
    await app.workers.wait_for_complete([w for w in app.workers if w.group != "picker"])
    await pilot.pause()
    for widget in app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


async def place_solution(pilot) -> None:
    for key in solution_keys(str(PACK / "induction-head.yaml")):
        await pilot.press(key)
        await pilot.pause()


async def place_wrong(pilot) -> None:
    """The induction question asked of A instead of B: a wrong responder."""
    keys = solution_keys(str(PACK / "induction-head.yaml"))
    for key in [*keys[:-1], "1"]:
        await pilot.press(key)
        await pilot.pause()


def keys(*names: str):
    async def run(pilot) -> None:
        await pilot.pause()
        for name in names:
            if name == "<solution>":
                await place_solution(pilot)
            elif name == "<wrong>":
                await place_wrong(pilot)
            else:
                await pilot.press(name)
            await settle(pilot)
    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_menu(snap_compare, size) -> None:
    assert snap_compare(app(None), terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_puzzle(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=keys("<solution>"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_verdict(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=keys("<solution>", "c"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_verdict_not_yet(snap_compare, size) -> None:
    """A wrong question: the reason in the line's terms, no right answer given away."""
    assert snap_compare(app(), terminal_size=size, run_before=keys("<wrong>", "c"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_move_dialog(snap_compare, size) -> None:
    """The move dialog names the question it moves."""
    assert snap_compare(app(), terminal_size=size, run_before=keys("<solution>", "m"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_hint(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=keys("h", "h", "h"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_attention(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=keys("w"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_logit_lens(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=keys("l"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_swap(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=keys("p"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sandbox(snap_compare, size) -> None:
    assert snap_compare(app(None), terminal_size=size,
                        run_before=keys("x", *"When Mary and John went to the store, John gave a"
                                        " drink to", "enter"))
