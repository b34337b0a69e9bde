"""Pilot tests of whole flows in the game, on the fake engine (fast) and once on the toy model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from textual.widgets import DataTable, OptionList, Static
from tui_helpers import solution_keys

from game.app import LineupApp
from game.engine_bridge import FakeEngine
from game.screens.check import CheckScreen
from game.screens.hints import HintScreen
from game.screens.menu import MenuScreen
from game.screens.puzzle import PuzzleScreen

SIZE = (100, 40)


async def settle(app, pilot) -> None:
    """Wait for every thread worker, then for the messages they posted."""
    await pilot.pause()
    workers = [w for w in app.workers if w.group != "picker"]
    await app.workers.wait_for_complete(workers)
    await pilot.pause()
    await pilot.pause()


def index_of(values: list[str], value: str | None) -> int:
    return values.index(value)


async def place(pilot, screen: PuzzleScreen, q: dict[str, str]) -> None:
    """Place a question by keys only: a, then the number of each choice."""
    rounds = list(screen.block.rounds)
    people = [name for name, _ in screen.people_options()]
    await pilot.press("a")
    await pilot.pause()
    for key in (
        str(index_of(rounds, q["round"]) + 1),
        str(index_of(people, q["asker"]) + 1),
        str(index_of(screen.puzzle.cards, q["card"]) + 1),
    ):
        await pilot.press(key)
        await pilot.pause()
    if q.get("responder"):
        behind = [n for n, _ in screen.people_options(before=screen.line.roles[q["asker"]])]
        await pilot.press(str(index_of(behind, q["responder"]) + 1))
        await pilot.pause()


async def open_from_menu(pilot, app, puzzle_id: str) -> PuzzleScreen:
    options = app.screen.query_one(OptionList)
    ids = [o.id for o in options.options]
    target = ids.index(puzzle_id)
    while options.highlighted != target:
        await pilot.press("down" if options.highlighted < target else "up")
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, PuzzleScreen)
    return app.screen


def solution(puzzle_id: str, block: str = "toy") -> list[dict[str, str]]:
    from engine.puzzle import find_puzzle

    return [q.as_dict() for q in find_puzzle(puzzle_id).models[block].solution]


def given(puzzle_id: str, block: str = "toy") -> list[dict[str, str]]:
    from engine.puzzle import find_puzzle

    return [q.as_dict() for q in find_puzzle(puzzle_id).models[block].given]


async def test_solve_by_keys_saves_three_stars(lineup_home) -> None:
    app = LineupApp(engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, MenuScreen)
        screen = await open_from_menu(pilot, app, "induction-head")
        for q in solution("induction-head"):
            if q not in given("induction-head"):
                await place(pilot, screen, q)
        assert screen.questions == solution("induction-head")
        await pilot.press("c")
        await settle(app, pilot)
        assert isinstance(app.screen, CheckScreen)
        body = str(app.screen.query_one("#verdict-body", Static).content)
        assert app.screen.report.stars == 3
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PuzzleScreen)
        assert "★★★" in str(app.screen.query_one("#puzzle-title", Static).content)
    del body
    saved = json.loads((lineup_home / "data" / "progress.json").read_text())
    assert saved["version"] == 1
    assert saved["puzzles"]["induction-head"]["stars"] == 3
    assert saved["puzzles"]["induction-head"]["circuit"] == solution("induction-head")

    again = LineupApp(engine=FakeEngine())  # restart: the stars and the circuit are still there
    async with again.run_test(size=SIZE) as pilot:
        labels = [str(o.prompt) for o in again.screen.query_one(OptionList).options]
        assert any("★★★" in label and "what came next" in label for label in labels)
        screen = await open_from_menu(pilot, again, "induction-head")
        assert screen.questions == solution("induction-head")


async def test_wrong_question_says_why_not() -> None:
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PuzzleScreen)
        right = next(q for q in solution("induction-head") if q not in given("induction-head"))
        await place(pilot, screen, {**right, "responder": "A"})
        await pilot.press("c")
        await settle(app, pilot)
        report = app.screen.report
        wrong = [q for q in report.questions if q.verdict != "confirmed"]
        assert wrong and wrong[0].verdict == "wrong-responder"
        body = str(app.screen.query_one("#verdict-body", Static).render())
        assert "mostly asks B" in body or "mostly asks" in wrong[0].message
        assert report.stars < 3
        await pilot.press("escape")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert "wrong responder" in str(table.get_row_at(1)[-1])


async def test_given_questions_are_fixed_and_others_move_and_go() -> None:
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("d")  # the given question is selected
        await pilot.pause()
        assert len(screen.questions) == 1
        await place(pilot, screen, {"round": "early", "asker": "A2", "card": "copy",
                                    "responder": "A"})
        assert len(screen.questions) == 2
        await pilot.press("down", "m")
        await pilot.pause()
        target = next(q for q in solution("induction-head") if q not in given("induction-head"))
        for key in solution_keys("induction-head")[1:5]:
            await pilot.press(key)
            await pilot.pause()
        assert screen.questions[1] == target
        await pilot.press("t")  # technical names
        await pilot.pause()
        assert "induction head" in str(screen.query_one(DataTable).get_row_at(1)[2])
        await pilot.press("d")
        await pilot.pause()
        assert len(screen.questions) == 1


async def test_cancel_check_keeps_the_puzzle(lineup_home) -> None:
    gate = threading.Event()
    app = LineupApp(engine=FakeEngine(gate=gate), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CheckScreen)
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, PuzzleScreen)
        assert app.screen.report is None
    gate.set()
    saved = json.loads((lineup_home / "data" / "progress.json").read_text()) \
        if (lineup_home / "data" / "progress.json").exists() else {"puzzles": {}}
    assert saved["puzzles"].get("induction-head", {}).get("stars", 0) == 0


async def test_hints_rot13_then_decoded_then_next() -> None:
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        puzzle = app.screen.puzzle
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, HintScreen)
        body = lambda: str(app.screen.query_one("#hint-body", Static).content)  # noqa: E731
        assert puzzle.hints[0] in body()
        assert puzzle.hint(0) not in body()
        await pilot.press("h")
        await pilot.pause()
        assert puzzle.hint(0) in body()
        await pilot.press("h")
        await pilot.pause()
        assert puzzle.hints[1] in body() and puzzle.hint(1) not in body()
        await pilot.press("r")
        await pilot.pause()
        assert "Reference solution" in body()


def make_pack(folder: Path, *, solutions_hidden: bool) -> Path:
    from engine.puzzle import find_puzzle

    folder.mkdir(parents=True, exist_ok=True)
    source = find_puzzle("induction-head").path
    (folder / "induction.yaml").write_text(source.read_text(), encoding="utf-8")
    (folder / "pack.yaml").write_text(textwrap.dedent(f"""\
        title: Class 7B, week 3
        order: [induction-head]
        seed: 5
        hints: true
        solutions_hidden: {str(solutions_hidden).lower()}
        """), encoding="utf-8")
    return folder


async def test_pack_can_hide_the_solution(tmp_path) -> None:
    pack = make_pack(tmp_path / "pack", solutions_hidden=True)
    app = LineupApp(engine=FakeEngine(), pack=pack)
    async with app.run_test(size=SIZE) as pilot:
        assert "Class 7B" in str(app.screen.query_one("#menu-title", Static).content)
        assert [p.id for p in app.puzzles] == ["induction-head"]
        assert app.puzzles[0].prompts.seed == 5
        await open_from_menu(pilot, app, "induction-head")
        await pilot.press("h", "h", "r")
        await pilot.pause()
        assert "Reference solution" not in str(app.screen.query_one("#hint-body", Static).content)


async def test_export_then_open_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        right = next(q for q in solution("induction-head") if q not in given("induction-head"))
        await place(pilot, app.screen, right)
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
    from engine.puzzle import load_circuit

    circuit = load_circuit(tmp_path / "induction-head.yaml")
    assert circuit.puzzle == "induction-head"
    assert [q.as_dict() for q in circuit.questions] == solution("induction-head")

    (tmp_path / "other.yaml").write_text(
        "puzzle: induction-head\nquestions:\n"
        "  - {round: late, asker: A2, card: copy, responder: A}\n", encoding="utf-8")
    opened = LineupApp(engine=FakeEngine(), circuit=tmp_path / "other.yaml")
    async with opened.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(opened.screen, PuzzleScreen)
        assert {"round": "late", "asker": "A2", "card": "copy", "responder": "A"} \
            in opened.screen.questions


async def test_bad_circuit_file_is_a_message_not_a_crash(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("puzzle: [nope\n", encoding="utf-8")
    app = LineupApp(engine=FakeEngine(), circuit=bad)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, MenuScreen)
        assert any("Cannot open" in (n.title or "") for n in app._notifications)


async def test_locked_puzzle_does_not_open() -> None:
    app = LineupApp(engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        options = app.screen.query_one(OptionList)
        locked = [o for o in options.options if o.id == "beyond-greater-than"]
        assert locked and locked[0].disabled
        app.open_puzzle("beyond-greater-than")
        await pilot.pause()
        assert isinstance(app.screen, MenuScreen)


async def test_tools_show_numbers() -> None:
    from game.screens.sandbox import SandboxScreen
    from game.screens.tools import AttentionScreen, LensScreen, SwapScreen

    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for key, kind, table in (("w", AttentionScreen, "#attention"), ("l", LensScreen, "#lens"),
                                 ("p", SwapScreen, "#swap-heads")):
            await pilot.press(key)
            await settle(app, pilot)
            assert isinstance(app.screen, kind)
            assert app.screen.query_one(table, DataTable).row_count > 0
            if kind is AttentionScreen:
                await pilot.press("right_square_bracket", "full_stop")
                await settle(app, pilot)
                assert (app.screen.layer_no, app.screen.head_no) == (1, 1)
                assert "1.1" in str(app.screen.query_one("#tool-note", Static).content)
            await pilot.press("escape")
            await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, SandboxScreen)
        await pilot.press(*"the cat sat on the mat", "enter")
        await settle(app, pilot)
        assert "%" in str(app.screen.query_one("#prediction", Static).content)
        assert app.screen.query_one("#lens", DataTable).row_count == 6


async def test_palette_lists_the_game_commands() -> None:
    from textual.command import CommandPalette

    app = LineupApp(engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"sandbox")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        from game.screens.sandbox import SandboxScreen

        assert isinstance(app.screen, SandboxScreen)


async def test_help_screen_opens_and_closes() -> None:
    from game.screens.help import HelpScreen

    app = LineupApp(engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MenuScreen)


def test_first_frame_comes_before_torch(lineup_home) -> None:
    """The menu is painted before torch (and so transformers) is imported; the model loads
    in the background only after that first frame."""
    code = textwrap.dedent("""
        import asyncio, sys
        from game.app import LineupApp
        async def main():
            app = LineupApp()
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause()
                assert type(app.screen).__name__ == "MenuScreen", app.screen
                print(app.torch_at_first_frame)  # transformers cannot load without torch
        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"


def _toy_ready() -> str | None:
    if importlib.util.find_spec("engine.judge") is None:
        return "engine.judge is not written yet"
    from engine.models import toy_names

    if not toy_names():
        return "no toy model is built into engine/assets/toys yet"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_toy_ready() is not None, reason=str(_toy_ready()))
async def test_toy_end_to_end(lineup_home) -> None:
    """The real judge on the toy model: the reference solution by keys earns three stars."""
    app = LineupApp(model="toy")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_from_menu(pilot, app, "induction-head")
        for q in solution("induction-head"):
            if q not in given("induction-head"):
                await place(pilot, screen, q)
        await pilot.press("c")
        await settle(app, pilot)
        assert isinstance(app.screen, CheckScreen)
        assert app.screen.report is not None, "the judge did not finish"
        assert app.screen.report.stars == 3, app.screen.report
    saved = json.loads((lineup_home / "data" / "progress.json").read_text())
    assert saved["puzzles"]["induction-head"]["stars"] == 3
