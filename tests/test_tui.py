"""Pilot tests of whole flows in the game, on the fake engine (fast) and once on the toy model."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, OptionList, Static
from tui_helpers import plain, send_now, solution_keys, type_fast

from game.app import LineupApp
from game.screens.check import CheckScreen
from game.screens.hints import HintScreen
from game.screens.menu import MenuScreen
from game.screens.puzzle import PuzzleScreen
from tests.fake_engine import FakeEngine

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


def saved_stars(puzzle_id: str, model: str = "toy") -> int:
    from game.progress import Progress

    return Progress.load(read_only=True).stars(puzzle_id, model)


def saved_circuit(puzzle_id: str, model: str = "toy") -> list[dict[str, str]]:
    from game.progress import Progress

    return Progress.load(read_only=True).circuit(puzzle_id, model)


def question_rows(screen) -> list[str]:
    """The puzzle screen's question list, as plain text per question."""
    from game.screens.puzzle import QuestionList

    options = screen.query_one(QuestionList)
    return [plain(options.get_option_at_index(k).prompt)
            for k in range(options.option_count)]


async def open_from_menu_keys(pilot, app, puzzle_id: str) -> None:
    """Highlight a puzzle in the menu and press enter."""
    options = app.screen.query_one(OptionList)
    menu = app.screen
    ids = [getattr(menu.puzzle_at(o.id), "id", None) for o in options.options]
    target = ids.index(puzzle_id)
    while options.highlighted != target:
        await pilot.press("down" if options.highlighted < target else "up")
    await pilot.press("enter")
    await pilot.pause()


async def open_from_menu(pilot, app, puzzle_id: str) -> PuzzleScreen:
    await open_from_menu_keys(pilot, app, puzzle_id)
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
        assert list(screen.questions) == solution("induction-head")
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
    assert saved_stars("induction-head") == 3
    assert saved_circuit("induction-head") == solution("induction-head")
    assert saved_stars("induction-head", "gpt2") == 0  # stars are kept per model

    again = LineupApp(engine=FakeEngine())  # restart: the stars and the circuit are still there
    async with again.run_test(size=SIZE) as pilot:
        labels = [str(o.prompt) for o in again.screen.query_one(OptionList).options]
        assert any("★★★" in label and "what came next" in label for label in labels)
        screen = await open_from_menu(pilot, again, "induction-head")
        assert list(screen.questions) == solution("induction-head")


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
        body = plain(app.screen.query_one("#verdict-body", Static).content)
        assert "✗ wrong responder" in body
        assert "A2 gives A only 0.04 of its attention" in body
        assert "head 1.2" not in body and "listens to" not in body  # no answer given away
        assert report.stars < 3
        assert "not measured until the play prompts pass" in body
        await pilot.press("escape")
        await pilot.pause()
        assert "wrong responder" in question_rows(app.screen)[1]


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
        assert "induction head" in question_rows(screen)[1]
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
    assert saved_stars("induction-head") == 0


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


def make_pack(folder: Path, *, solutions_hidden: bool, hints: bool = True) -> Path:
    from engine.puzzle import find_puzzle

    folder.mkdir(parents=True, exist_ok=True)
    source = find_puzzle("induction-head").path
    (folder / "induction.yaml").write_text(source.read_text(), encoding="utf-8")
    (folder / "pack.yaml").write_text(textwrap.dedent(f"""\
        title: Class 7B, week 3
        order: [induction-head]
        seed: 5
        hints: {str(hints).lower()}
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


async def test_locked_puzzle_says_how_it_is_unlocked() -> None:
    app = LineupApp(engine=FakeEngine())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        menu = app.screen
        options = menu.query_one(OptionList)
        locked = [o for o in options.options
                  if getattr(menu.puzzle_at(o.id), "id", None) == "beyond-greater-than"]
        assert locked and "locked: needs GPT-2" in plain(locked[0].prompt)
        await open_from_menu_keys(pilot, app, "beyond-greater-than")
        assert isinstance(app.screen, MenuScreen)
        assert any("lineup download gpt2" in n.message for n in app._notifications)


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
                print(app.hub_at_first_frame)  # the engine did not look for GPT-2 that way
                print(app.torch_at_first_frame)  # transformers cannot load without torch
        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["False", "False"]


@pytest.mark.slow
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
    assert saved_stars("induction-head") == 3


# --------------------------------------------------------------------------- review fixes


def make_report(**changes):
    import math

    from engine.judge import HeadEvidence, QuestionReport, Report

    q = QuestionReport("late", "A2", "induction", "B", False, "confirmed", "A2 asks B",
                       [HeadEvidence("1.2", 1, 2, 0.82, math.nan, math.nan)])
    fields = dict(puzzle="p", model="toy", model_label="toy", solved=True, stars=3,
                  metric_full=2.5, metric_corrupted=0.1, faithfulness=0.9,
                  heldout_faithfulness=0.85, pass_line=0.5, questions=[q], problems=[],
                  timing_s={}, heldout_pass_line=0.8)
    fields.update(changes)
    return Report(**fields)


def line_of_text(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_heldout_bar_marks_the_heldout_pass_line() -> None:
    from game.screens.check import render_verdict

    text = plain(render_verdict(make_report()))
    held = line_of_text(text, "held-out")
    faith = line_of_text(text, "faithfulness")
    bar = held[held.index("[") + 1:held.index("]")]
    assert bar.index("┃") == 24  # 0.8 of 30 cells, not the play pass line's 15
    assert "0.85  pass line 0.80" in held
    assert faith[faith.index("[") + 1:].index("┃") == 15
    text = plain(render_verdict(make_report(heldout_pass_line=float("nan"))))
    held = line_of_text(text, "held-out")
    assert "┃" not in held and "pass line" not in held and "nan" not in held
    text = plain(render_verdict(make_report(heldout_faithfulness=None)))
    assert "not measured until the play prompts pass" in line_of_text(text, "held-out")


def test_evidence_leaves_out_numbers_that_are_not_finite() -> None:
    from game.screens.check import render_verdict

    text = plain(render_verdict(make_report()))
    assert "head 1.2: attn 0.82" in text
    assert "nan" not in text and "effect" not in text


async def test_unmeasured_heldout_is_said_in_the_verdict() -> None:
    """Only the given question: it holds (one star) but faithfulness is below the pass line,
    so the judge (and the fake) never runs the held-out prompts."""
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await settle(app, pilot)
        report = app.screen.report
        assert report.heldout_faithfulness is None
        assert report.stars == 1 and not report.solved
        body = plain(app.screen.query_one("#verdict-body", Static).content)
        assert "held-out      not measured until the play prompts pass" in body
        assert "★☆☆" in body and "Not yet." in body


def test_fake_engine_stars_follow_the_judge() -> None:
    from engine.puzzle import Question, find_puzzle

    puzzle = find_puzzle("induction-head")
    block = puzzle.models["toy"]
    fake = FakeEngine()
    whole = fake.grade(puzzle, list(block.solution))
    assert (whole.stars, whole.solved) == (3, True)
    assert whole.heldout_faithfulness is not None
    assert whole.heldout_pass_line == block.thresholds.heldout_faithfulness
    partial = fake.grade(puzzle, list(block.given))  # all hold, faithfulness too low
    assert (partial.stars, partial.heldout_faithfulness) == (1, None)
    right = next(q for q in block.solution if q not in block.given)
    wrong = Question(right.round, right.asker, right.card, "A")
    failing = fake.grade(puzzle, [*block.solution, wrong])  # one does not hold
    assert (failing.stars, failing.heldout_faithfulness) == (0, None)
    high_bar = find_puzzle("induction-head")
    high_bar.models["toy"].thresholds.heldout = 0.99  # held-out fails: two stars
    two = fake.grade(high_bar, list(high_bar.models["toy"].solution))
    assert (two.stars, two.solved) == (2, True)
    assert two.heldout_faithfulness is not None


class GatedEngine(FakeEngine):
    """A fake whose attention for ``slow`` (layer, head) waits for ``gate``, and then fails
    when ``fail`` is set."""

    def __init__(self, slow: tuple[int, int], *, fail: bool = False) -> None:
        super().__init__()
        self.slow, self.fail = slow, fail
        self.gate = threading.Event()
        self.finished = threading.Event()

    def attention(self, text, layer, head, *, puzzle=None):
        if (layer, head) == self.slow:
            self.gate.wait(10)
            self.finished.set()
            if self.fail:
                raise RuntimeError("the model fell over")
        return super().attention(text, layer, head, puzzle=puzzle)


async def test_a_failure_goes_to_the_screen_that_started_the_work() -> None:
    from game.screens.help import HelpScreen
    from game.screens.tools import AttentionScreen

    engine = GatedEngine((0, 0), fail=True)
    app = LineupApp(engine=engine, puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        tool = app.screen
        assert isinstance(tool, AttentionScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        engine.gate.set()
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        assert "Could not compute this: the model fell over" in \
            str(tool.query_one("#tool-note", Static).content)


async def _superseded(pilot, app, engine, shown) -> None:
    """Press ahead of a slow answer, then let it finish: the newer answer must stay."""
    engine.gate.set()
    assert engine.finished.wait(10)
    await settle(app, pilot)
    await pilot.pause(0.1)
    await pilot.pause()
    assert shown() == (0, 2)


async def test_a_superseded_tool_answer_is_not_shown() -> None:
    from game.screens.tools import AttentionScreen

    engine = GatedEngine((0, 1))
    app = LineupApp(engine=engine, puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, AttentionScreen)
        await pilot.press("full_stop")  # head 0.1: slow
        await pilot.pause()
        await pilot.press("full_stop")  # head 0.2: fast, cancels the slow one
        await settle(app, pilot)
        assert "0.2" in str(screen.query_one("#tool-note", Static).content)
        await _superseded(pilot, app, engine, lambda: (screen.layer_no, screen.head_no))
        assert "head 0.2 " in str(screen.query_one("#tool-note", Static).content)


async def test_a_superseded_sandbox_answer_is_not_shown() -> None:
    from game.screens.sandbox import SandboxScreen

    engine = GatedEngine((0, 1))
    app = LineupApp(engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SandboxScreen)
        await pilot.press(*"the cat sat", "enter")
        await settle(app, pilot)
        screen.query_one("#attention", DataTable).focus()
        await pilot.pause()
        await pilot.press("full_stop")  # head 0.1: slow
        await pilot.pause()
        await pilot.press("full_stop")  # head 0.2: fast
        await settle(app, pilot)
        await _superseded(pilot, app, engine, lambda: (screen.layer_no, screen.head_no))
        assert "head 0.2" in str(screen.query_one("#attention-title", Static).content)


async def test_opening_a_circuit_file_keeps_the_saved_circuit_until_an_edit(
        tmp_path, lineup_home) -> None:
    from game.progress import Progress

    mine = solution("induction-head")
    Progress.load().record("induction-head", "toy", circuit=mine)
    path = lineup_home / "data" / "progress.json"
    before = path.read_text()
    other = {"round": "late", "asker": "A2", "card": "copy", "responder": "A"}
    (tmp_path / "other.yaml").write_text(
        "puzzle: induction-head\nquestions:\n"
        "  - {round: late, asker: A2, card: copy, responder: A}\n", encoding="utf-8")
    app = LineupApp(engine=FakeEngine(), circuit=tmp_path / "other.yaml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PuzzleScreen)
        assert other in screen.questions
        assert path.read_text() == before  # opening is not an edit
        await pilot.press("c")  # a check saves what was checked
        await settle(app, pilot)
        await pilot.press("escape")
        await pilot.pause()
    saved = saved_circuit("induction-head")
    assert other in saved and saved == list(screen.questions)

    Progress.load().record("induction-head", "toy", circuit=mine)
    app = LineupApp(engine=FakeEngine(), circuit=tmp_path / "other.yaml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert saved_circuit("induction-head") == mine
        await pilot.press("down", "d")  # the first edit saves
        await pilot.pause()
        assert list(app.screen.questions) == given("induction-head")
    assert saved_circuit("induction-head") == given("induction-head")


async def test_solution_shows_in_a_pack_without_hints(tmp_path) -> None:
    pack = make_pack(tmp_path / "pack", solutions_hidden=False, hints=False)
    app = LineupApp(engine=FakeEngine(), pack=pack)
    async with app.run_test(size=SIZE) as pilot:
        await open_from_menu(pilot, app, "induction-head")
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, HintScreen)
        body = lambda: str(app.screen.query_one("#hint-body", Static).content)  # noqa: E731
        keys = str(app.screen.query_one("#hint-keys", Static).content)
        assert "switched off" in body() and "r reveal the solution" in keys
        assert "h next hint" not in keys
        await pilot.press("h")  # does nothing: hints are off
        await pilot.press("r")
        await pilot.pause()
        assert "Reference solution" in body() and "switched off" in body()
        assert "A2: induction -> B" in body()


class FailingEngine(FakeEngine):
    def grade(self, puzzle, questions, *, progress=None, cancelled=None):
        raise RuntimeError("the judge fell over")


async def test_a_failed_check_says_so_and_goes_back_to_the_puzzle() -> None:
    app = LineupApp(engine=FailingEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await settle(app, pilot)
        assert isinstance(app.screen, PuzzleScreen)
        assert any("the judge fell over" in n.message for n in app._notifications)


# --------------------------------------------------------------------------- the engine bridge


class StubLM:
    def __init__(self, name: str) -> None:
        self.name, self.block = name, "toy"


def test_engine_loads_each_puzzles_own_toy(monkeypatch) -> None:
    """A toy block's `toy:` picks the model, as `lineup check` does (model_spec_for)."""
    import engine.judge
    import engine.models
    from engine.puzzle import find_puzzle
    from game.engine_bridge import Engine

    loads: list[str] = []

    def load_model(spec, device=None):
        loads.append(spec)
        return StubLM(spec)

    graded: list[str] = []
    monkeypatch.setattr(engine.models, "load_model", load_model)
    monkeypatch.setattr(engine.judge, "grade",
                        lambda puzzle, circuit, lm, **kw: graded.append(lm.name) or "report")
    special = find_puzzle("induction-head")
    special.models["toy"].toy = "toy-special"
    plain_puzzle = find_puzzle("induction-previous-token")
    plain_puzzle.models["toy"].toy = None
    e = Engine("toy")
    assert e.grade(special, []) == "report"
    e.grade(special, [])
    e.grade(plain_puzzle, [])
    e.lm()
    assert graded == ["toy-special", "toy-special", "toy"]
    assert loads == ["toy-special", "toy"]  # each loaded once
    assert e.model == "toy" and e.block == "toy"


def test_engine_and_banner_need_no_huggingface_hub(tmp_path) -> None:
    """Building the engine and drawing the menu's banner decide the model from the disk
    alone (huggingface_hub, slow to import, waits for the first model load); the banner says
    which model plays and why, and never calls absent weights real."""
    code = textwrap.dedent("""
        import sys
        from game.engine_bridge import Engine
        from engine.models import default_model_choice
        e = Engine()
        print(e.banner(), "|", e.block, e.model, "|", default_model_choice(None)[0])
        print(Engine("gpt2").banner())
        print("huggingface_hub" in sys.modules, "torch" in sys.modules)
    """)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "empty-hub")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1], env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "False False"
    banner, blocks, chosen = lines[0].split(" | ")
    assert (banner.startswith("Model: ") and "GPT-2 is not cached" in banner) or "toy" in banner
    assert blocks.split()[1] == chosen.strip()  # the engine plays what the chooser says
    assert "real GPT-2" not in banner
    assert "not in the Hugging Face cache" in lines[1] and "real GPT-2" not in lines[1]


@pytest.mark.parametrize("layout", ["none", "empty", "config-only", "complete", "other-ref",
                                    "no-refs"])
def test_cheap_gpt2_check_agrees_with_the_hub(tmp_path, layout) -> None:
    hub = tmp_path / "hub"
    repo = hub / "models--gpt2"
    if layout != "none":
        (repo / "snapshots").mkdir(parents=True)
    if layout in ("config-only", "complete", "other-ref", "no-refs"):
        if layout != "no-refs":
            (repo / "refs").mkdir()
            (repo / "refs" / "main").write_text("abc123")
        snapshot = repo / "snapshots" / ("main" if layout == "no-refs" else "abc123")
        snapshot.mkdir()
        (snapshot / "config.json").write_text("{}")
        if layout != "config-only":
            (snapshot / "model.safetensors").write_text("")
        if layout == "other-ref":
            (repo / "refs" / "main").write_text("def456")
    code = textwrap.dedent("""
        from game.engine_bridge import gpt2_cached_cheaply
        from engine.models import gpt2_cache_dir
        print(gpt2_cached_cheaply(), gpt2_cache_dir() is not None)
    """)
    env = {**os.environ, "HF_HUB_CACHE": str(hub)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1], env=env)
    assert out.returncode == 0, out.stderr
    cheap, hub_says = out.stdout.split()
    assert cheap == hub_says
    if layout in ("none", "empty", "config-only", "other-ref"):
        assert cheap == "False"
    if layout == "complete":
        assert cheap == "True"


def test_swap_is_residual_patching_at_each_role(random_gpt2) -> None:
    """The swap view's person grid is patch_resid at each role's position, one at a time."""
    import torch

    from engine.hooks import forward
    from engine.interventions import patch_resid
    from engine.judge import LastMetric
    from engine.models import pad_rows
    from engine.puzzle import find_puzzle
    from game.engine_bridge import Engine, first_prompts

    puzzle = find_puzzle("ioi-name-mover")
    view = Engine("random-gpt2", device="cpu").swap(puzzle, n=2)
    ps = first_prompts(puzzle.build_prompts(random_gpt2.tokenizer, "play"), 2)
    clean = pad_rows(ps.token_ids)
    corrupted = pad_rows(ps.corrupted_ids)
    metric = LastMetric(ps)
    with torch.inference_mode():
        m_clean = float(metric(forward(random_gpt2, clean, logits="last").logits).mean())
        m_corr = float(metric(forward(random_gpt2, corrupted, logits="last").logits).mean())
    assert (view.metric_clean, view.metric_corrupted) == (round(m_clean, 3), round(m_corr, 3))
    assert view.roles == list(puzzle.roles)
    assert len(view.by_role) == 12 and len(view.heads) == 12
    for layer in (0, 5, 11):
        for j, role in enumerate(view.roles):
            logits = patch_resid(random_gpt2, corrupted, clean, layer,
                                 positions=ps.roles[role], logits="last")
            expected = (float(metric(logits).mean()) - m_corr) / (m_clean - m_corr)
            assert abs(view.by_role[layer][j] - expected) <= 2e-3, (layer, role)


# --------------------------------------------------------------------------- crashes and lost input


def right_question() -> dict[str, str]:
    return next(q for q in solution("induction-head") if q not in given("induction-head"))


def keys_for(screen: PuzzleScreen, q: dict[str, str]) -> list[str]:
    """The digits that place ``q`` in the add dialog (after ``a``)."""
    people = [name for name, _ in screen.people_options()]
    behind = [n for n, _ in screen.people_options(before=screen.line.roles[q["asker"]])]
    return [str(list(screen.block.rounds).index(q["round"]) + 1),
            str(people.index(q["asker"]) + 1),
            str(screen.puzzle.cards.index(q["card"]) + 1),
            str(behind.index(q["responder"]) + 1)]


async def test_questions_typed_at_full_speed_all_land() -> None:
    """Every key sent at once: two questions, a removal key and the check key; nothing is
    dropped and no dialog pops a screen that is not its own."""
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        other = {"round": "early", "asker": "A2", "card": "copy", "responder": "A"}
        await type_fast(pilot, ["a", *keys_for(screen, right_question()),
                                "a", *keys_for(screen, other)])
        assert app.screen is screen
        assert list(screen.questions) == [*given("induction-head"), right_question(), other]
        await type_fast(pilot, ["d", "c"])  # remove the last one, then check
        await settle(app, pilot)
        assert isinstance(app.screen, CheckScreen)
        assert app.screen.questions == solution("induction-head")
        assert app.screen.report is not None and app.screen.report.stars == 3


async def test_extra_digits_in_the_dialog_do_not_pop_other_screens() -> None:
    """The old picker dismissed once per digit: the extra dismissals popped the puzzle and
    the menu (ScreenStackError: Can't pop screen)."""
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        stack = len(app.screen_stack)
        await type_fast(pilot, ["a", "1", "3", *"1" * 10])  # round 1, A2, card 1, A, 1, 1...
        assert app.screen is screen and len(app.screen_stack) == stack
        assert screen.questions[1] == {"round": "early", "asker": "A2",
                                       "card": "previous-token", "responder": "A"}
        await type_fast(pilot, ["a", "escape", "escape"])  # esc closes the dialog, then the puzzle
        assert isinstance(app.screen, MenuScreen)


async def test_a_question_typed_slowly_is_not_lost() -> None:
    """0.6 s between keys (a hesitant player): the question still lands."""
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        for key in ["a", *keys_for(screen, right_question())]:
            await pilot.press(key)
            await pilot.pause(0.6)
        assert list(screen.questions) == solution("induction-head")


async def test_move_dialog_names_the_question_and_backspace_steps_back() -> None:
    from game.widgets.dialogs import StepDialog

    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        other = {"round": "early", "asker": "A2", "card": "copy", "responder": "A"}
        await type_fast(pilot, ["a", *keys_for(screen, other)])
        await pilot.press("m")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, StepDialog)
        assert "Moving question 2: in round early, A2 asks A" in dialog.intro
        await type_fast(pilot, ["2", "backspace", *keys_for(screen, right_question())])
        assert list(screen.questions) == solution("induction-head")


async def test_text_dialogs_keep_every_character_typed_at_full_speed(tmp_path, monkeypatch) -> None:
    """s, a file name and enter, all at once: the file has exactly that name; the same for
    the menu's open dialog (o)."""
    monkeypatch.chdir(tmp_path)
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        name = "my-circuit_2.yaml"
        await type_fast(pilot, ["s", *["backspace"] * 40, *name, "enter"])
        assert isinstance(app.screen, PuzzleScreen)
        assert (tmp_path / name).is_file(), sorted(p.name for p in tmp_path.iterdir())
        await type_fast(pilot, ["escape", "o", *name, "enter"])
        assert isinstance(app.screen, PuzzleScreen)
        assert list(app.screen.questions) == given("induction-head")


async def test_hint_and_help_dialogs_typed_at_full_speed() -> None:
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        puzzle = app.screen
        await type_fast(pilot, ["h", "h", "h", "h", "r", "escape", "question_mark", "escape",
                                "h", "escape", "escape"])
        assert isinstance(app.screen, MenuScreen)
        assert puzzle.hint_state == {"shown": 2, "decoded": True}


BROKEN_QUESTIONS = [
    {"round": "early", "asker": "A2", "responder": "A"},  # no card
    {"asker": "A2", "card": "copy", "responder": "A"},  # no round
    {"round": "early", "card": "copy", "responder": "A"},  # no asker
    {"round": "early", "asker": "A2", "card": "copy"},  # no responder for a question
    {"round": 5, "asker": "A2", "card": "copy", "responder": "A"},  # mistyped
    {"round": "early", "asker": ["A2"], "card": "copy", "responder": "A"},
    {"round": "early", "asker": "[/]", "card": "copy", "responder": "A"},  # markup-like
    {"round": "[/b]", "asker": "A2", "card": "copy", "responder": "A"},
    {"round": "early", "asker": "A2", "card": "[red]", "responder": "A"},
    {"round": "early", "asker": "A2", "card": "copy", "responder": "[/]"},
    "not a question",
]


@pytest.mark.parametrize("bad", BROKEN_QUESTIONS, ids=range(len(BROKEN_QUESTIONS)))
async def test_a_broken_question_opens_the_puzzle_with_a_message(bad) -> None:
    """Each broken shape, handed to the puzzle screen as a circuit (a save or a file): the
    puzzle opens with the good question and a message, never a KeyError or MarkupError."""
    app = LineupApp(engine=FakeEngine())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        app.open_puzzle("induction-head", [bad, right_question()])
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, PuzzleScreen)
        assert list(app.screen.questions) == solution("induction-head")
        assert any("left out" in n.message for n in app._notifications)
        await pilot.press("c")  # checking and the verdict do not trip over it either
        await settle(app, pilot)
        assert app.screen.report is not None


@pytest.mark.parametrize("bad", BROKEN_QUESTIONS, ids=range(len(BROKEN_QUESTIONS)))
async def test_a_broken_save_entry_opens_the_puzzle_with_a_message(lineup_home, bad) -> None:
    """The same broken questions in the save file itself (what `KeyError: 'card'` came
    from): the menu and the puzzle open, the player hears about it, the good part stays."""
    path = lineup_home / "data" / "progress.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"stars": 1, "circuit": [bad, right_question()], "note": "[/]"}
    path.write_text(json.dumps({"version": 2, "models": {"toy": {"induction-head": entry}}}),
                    encoding="utf-8")
    app = LineupApp(engine=FakeEngine())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        screen = await open_from_menu(pilot, app, "induction-head")
        await pilot.pause()
        assert isinstance(app.screen, PuzzleScreen)
        assert right_question() in list(screen.questions) or not screen.questions[1:]
        assert app._notifications  # a message, from the save reader or the puzzle screen


async def test_enter_does_not_cancel_a_running_check() -> None:
    gate = threading.Event()
    app = LineupApp(engine=FakeEngine(gate=gate), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        check = app.screen
        assert isinstance(check, CheckScreen)
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert app.screen is check
        assert any(w.group == "judge" and not w.is_cancelled for w in app.workers)
        gate.set()
        await settle(app, pilot)
        assert check.report is not None
        await pilot.press("enter")  # with a verdict, enter goes back
        await pilot.pause()
        assert isinstance(app.screen, PuzzleScreen)


async def test_a_stage_without_a_fraction_shows_a_moving_bar() -> None:
    from textual.widgets import ProgressBar

    gate = threading.Event()
    app = LineupApp(engine=FakeEngine(gate=gate, unknown=True, steps=1), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        check = app.screen
        for _ in range(200):  # until the judge's first words arrive
            await pilot.pause(0.05)
            if check.stage != "starting the judge":
                break
        # the fake says "running the prompts" (no fraction), then 0.0 and waits at the gate:
        # after QUIET_S without word the bar is indeterminate again, with the stage name
        for _ in range(200):
            await pilot.pause(0.05)
            if check.query_one(ProgressBar).total is None:
                break
        assert check.query_one(ProgressBar).total is None
        assert "running the prompts" in str(check.query_one("#stage", Static).content)
        gate.set()
        await settle(app, pilot)
        assert check.report is not None


def test_quitting_while_the_model_loads_does_not_wait(lineup_home) -> None:
    """The model load never finishes here (the fake engine's load blocks forever); the game
    must still quit. A Textual thread worker would keep the process alive at exit."""
    code = textwrap.dedent("""
        import asyncio, threading
        from game.app import LineupApp
        from tests.fake_engine import FakeEngine
        async def main():
            engine = FakeEngine(load_gate=threading.Event())
            app = LineupApp(engine=engine)
            async with app.run_test(size=(80, 24)) as pilot:
                for _ in range(100):
                    await pilot.pause(0.02)
                    if engine.loads:
                        break
                assert engine.loads == 1, "the model load never started"
                await pilot.press("q")
            print("exited")
        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("exited")


class GreedyLoad(FakeEngine):
    """A model load that keeps the GIL in long C calls until the test lets it finish, as
    importing torch (dlopen) and reading the weights do: the game's event loop and its input
    thread run only between those calls."""

    def lm(self, puzzle=None) -> None:
        self.loads += 1
        assert self.load_gate is not None
        while not self.load_gate.is_set():
            re.match(r"(a+)+$", "a" * 20 + "b")  # tens of ms of backtracking in C, GIL held


async def wait_until(pilot, condition, seconds: float = 10.0) -> bool:
    """Let the app run (0.01 s at a time) until ``condition()`` holds; False on timeout."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        await pilot.pause(0.01)
    return True


@pytest.mark.parametrize("moment", ["at-start", "first-shown", "load-ends"])
@pytest.mark.parametrize("loader", [FakeEngine, GreedyLoad], ids=["waiting-load", "gil-load"])
async def test_a_key_pressed_while_the_model_loads_opens_the_dialog(moment, loader) -> None:
    """Issue #13: the real-terminal newcomer test sends ``a`` the moment the puzzle screen
    shows "Add question", while the model loads in the background. The key is sent the way
    the terminal driver sends it, with nothing awaited first: before the first frame
    (at-start), once the footer shows "Add question" with the load under way (first-shown),
    or just as the load ends (load-ends). The add dialog opens, the end of the load neither
    closes nor covers it, and the question typed into it lands."""
    from textual.widgets._footer import FooterKey

    from game.widgets.dialogs import StepDialog

    gate = threading.Event()
    engine = loader(load_gate=gate)
    app = LineupApp(engine=engine, puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        def first_shown() -> bool:
            screen = app.screen
            return (isinstance(screen, PuzzleScreen) and engine.loads == 1
                    and any(k.description == "Add question" for k in screen.query(FooterKey)))

        ready = (lambda: isinstance(app.screen, PuzzleScreen)) if moment == "at-start" \
            else first_shown
        end = time.monotonic() + 10
        while not ready():  # no pause: the key goes at that very moment
            assert time.monotonic() < end, f"the puzzle never showed ({app.screen!r})"
            await asyncio.sleep(0)
        send_now(app, ["a"])
        if moment == "load-ends":
            gate.set()
        assert await wait_until(pilot, lambda: isinstance(app.screen, StepDialog)), \
            f"the add dialog did not open: {app.screen!r} is on top"
        dialog = app.screen
        assert dialog.step is not None and dialog.step.key == "round"
        gate.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert engine.loads == 1 and app.screen is dialog
        puzzle = next(s for s in app.screen_stack if isinstance(s, PuzzleScreen))
        await type_fast(pilot, keys_for(puzzle, right_question()))
        assert app.screen is puzzle
        assert list(puzzle.questions) == solution("induction-head")


class CrashingEngine(FakeEngine):
    def grade(self, puzzle, questions, *, progress=None, cancelled=None):
        return "not a report"  # the verdict screen trips over this: an unforeseen crash


def test_a_crashed_game_exits_non_zero() -> None:
    from game.app import exit_code

    async def crash(pilot) -> None:
        await pilot.pause()
        await pilot.press("c")
        for _ in range(50):
            await pilot.pause(0.05)

    app = LineupApp(engine=CrashingEngine(), puzzle="induction-head")
    result = app.run(headless=True, size=SIZE, auto_pilot=crash)
    assert exit_code(app, result) == 1
    fine = LineupApp(engine=FakeEngine())

    async def leave(pilot) -> None:
        await pilot.press("q")

    assert exit_code(fine, fine.run(headless=True, size=SIZE, auto_pilot=leave)) == 0


# --------------------------------------------------------------------------- markup-like text


MARKUP = "[/] [b]bold[/b] [/b] [red]x[link=http://x]y[/link] \x1b[31m"


def markup_pack(folder: Path) -> Path:
    """A pack whose puzzle has markup-like text in every user-visible field, a second file
    with the same id, and a broken file whose problem message holds markup-like text."""
    import yaml

    from engine.puzzle import find_puzzle

    folder.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(find_puzzle("induction-head").path.read_text(encoding="utf-8"))
    data.update(title=f"Title {MARKUP}", story=f"Story {MARKUP}\n\nMore [/]",
                goal=f"Goal {MARKUP}", hints=[f"Uvag {MARKUP}", "[/i]"])
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    (folder / "a.yaml").write_text(text, encoding="utf-8")
    (folder / "b.yaml").write_text(text, encoding="utf-8")  # the same id again
    (folder / "c.yaml").write_text("id: [/b]\ntitle: '[/]'\n", encoding="utf-8")
    (folder / "pack.yaml").write_text(f"title: 'Pack {MARKUP[:20]}'\n", encoding="utf-8")
    return folder


async def test_markup_like_text_is_shown_as_text_everywhere(tmp_path) -> None:
    pack = markup_pack(tmp_path / "pack")
    app = LineupApp(engine=FakeEngine(), pack=pack)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        assert "Pack [/] [b]" in str(app.screen.query_one("#menu-title", Static).content)
        assert len(app.puzzles) == 1  # the second file with that id is a problem, not a crash
        assert app.pack.problems
        screen = await open_from_menu(pilot, app, "induction-head")
        assert "Title [/] [b]bold[/b]" in str(screen.query_one("#puzzle-title", Static).content)
        story = str(screen.query_one("#story", Static).content)
        assert "Goal [/]" in story and "Story [/]" in story and "␛" in story
        bad = {"round": "early", "asker": MARKUP, "card": "copy", "responder": "A"}
        await pilot.pause()
        await type_fast(pilot, ["a", *keys_for(screen, right_question())])
        await type_fast(pilot, ["h", "h", "h", "h", "r"])
        hints = str(app.screen.query_one("#hint-body", Static).content)
        assert "Hint [/] [o]obyq[/o]" in hints and "2. [/v]" in hints
        await type_fast(pilot, ["escape", "c"])
        await settle(app, pilot)
        assert "Title [/]" in plain(app.screen.query_one("#check-title", Static).content)
        await type_fast(pilot, ["escape", "w"])
        await settle(app, pilot)
        assert "Title [/]" in plain(app.screen.query_one("#tool-title", Static).content)
        await type_fast(pilot, ["escape", "p"])
        await settle(app, pilot)
        await type_fast(pilot, ["escape", "escape"])
        app.open_puzzle("induction-head", [bad])
        await pilot.pause()
        assert isinstance(app.screen, PuzzleScreen)
        assert any("[/] [b]bold" in n.message for n in app._notifications)
        await type_fast(pilot, ["escape", "ctrl+p", *"title", "escape"])
        assert isinstance(app.screen, MenuScreen)


async def test_sandbox_explains_unknown_words() -> None:
    from game.screens.sandbox import SandboxScreen

    class UnknownWords(FakeEngine):
        def lens(self, text, k=3, *, puzzle=None):
            report = super().lens(text, k, puzzle=puzzle)
            report.tokens[0] = "[UNK]"
            return report

    app = LineupApp(engine=UnknownWords())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, SandboxScreen)
        await pilot.press(*"zyzzyva cat", "enter")
        await settle(app, pilot)
        note = str(app.screen.query_one("#tool-note", Static).content)
        assert "[UNK]" in note and "vocabulary does not have" in note


async def test_swap_shows_both_sentences_in_patch_units() -> None:
    from game.screens.tools import SwapScreen

    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        line = app.screen.line.text
        await pilot.press("p")
        await settle(app, pilot)
        assert isinstance(app.screen, SwapScreen)
        note = str(app.screen.query_one("#tool-note", Static).content)
        assert "clean" in note and "corrupted" in note and line.strip() in note
        assert "lineup patch" in note and "share of the gap" in note


def test_no_screen_imports_another_and_no_widget_imports_the_judge() -> None:
    import ast

    root = Path(__file__).resolve().parents[1] / "game"
    for path in sorted((root / "screens").glob("*.py")) + sorted((root / "widgets").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        for name in names:
            if path.parent.name == "screens":
                assert not name.startswith("game.screens.") or name == "game.screens.base" \
                    or (path.name == "base.py"), f"{path.name} imports {name}"
            else:
                assert name not in ("engine.judge", "game.engine_bridge") \
                    and not name.startswith("game.screens"), f"{path.name} imports {name}"


def test_every_screen_starts_and_leaves_through_the_guard() -> None:
    """``game.lifecycle``: Textual runs the ``on_mount`` of every class in the MRO, even when
    the screen's widgets were never mounted (the app quitting, the screen already popped), so
    no screen of the game defines its own; each inherits ``Guarded`` (``set_up``, and a
    ``dismiss`` that closes once and only while on top)."""
    import importlib
    import inspect
    import pkgutil

    from textual.screen import Screen

    import game.screens
    import game.widgets
    from game.lifecycle import Guarded

    modules = [importlib.import_module("game.app")] + [
        importlib.import_module(f"{pkg.__name__}.{m.name}")
        for pkg in (game.screens, game.widgets) for m in pkgutil.iter_modules(pkg.__path__)]
    screens = {c for mod in modules for _, c in inspect.getmembers(mod, inspect.isclass)
               if issubclass(c, Screen) and c.__module__.startswith("game.")}
    assert len(screens) >= 10
    for cls in screens:
        assert issubclass(cls, Guarded), cls
        for klass in cls.__mro__:
            if klass.__module__.startswith("game.") and klass is not Guarded:
                assert not {"on_mount", "on_screen_resume", "dismiss"} & set(vars(klass)), klass


async def test_verdict_explains_numbers_out_of_range() -> None:
    from game.screens.check import render_verdict

    report = make_report(faithfulness=-0.35, solved=False, stars=0)
    report.questions[0].effect = 1.26
    text = plain(render_verdict(report))
    assert "below 0" in text and "126%" in text and "more than the whole gap" in text
    assert "faithfulness: the share of that gap your questions keep" in text
    assert "metric: full model 2.50" in text


def test_the_line_holds_the_people_the_story_names() -> None:
    """The IOI story quotes "When Mary and John went to the store, ...": the line on the
    puzzle screen is that sentence, with every role where the story puts it."""
    from engine.puzzle import find_puzzle
    from game.views import line_of

    line = line_of(find_puzzle("ioi-name-mover"))
    assert line.text == "When Mary and John went to the store, John gave a drink to"
    assert line.tokens[line.roles["IO"]].strip() == "Mary"
    assert line.tokens[line.roles["S2"]].strip() == "John"
    assert line.at == len(line.tokens) - 1


async def test_the_add_dialog_shows_its_first_step_at_once() -> None:
    from game.widgets.dialogs import ChoiceList, StepDialog

    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, StepDialog)
        assert "In which round?" in str(dialog.query_one("#dialog-title", Static).content)
        assert dialog.query_one(ChoiceList).option_count == len(dialog.step.options) == 3


def rendered(widget) -> list[str]:
    """Every line a widget draws at its current size, as plain text."""
    from textual.geometry import Region

    size = widget.size
    return [strip.text for strip in widget.render_lines(Region(0, 0, size.width, size.height))]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_no_text_is_cut_in_the_question_list_or_the_verdict(size) -> None:
    """Round names, questions and verdict marks are shown whole at both sizes: they wrap,
    nothing ends in a cut word ("middl", "jud")."""
    from game.screens.puzzle import QuestionList

    app = LineupApp(engine=FakeEngine(), puzzle="ioi-whole-circuit")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        wrong = {"round": "late", "asker": "END", "card": "name-mover", "responder": "S1"}
        placed = [q for q in solution("ioi-whole-circuit") if q not in given("ioi-whole-circuit")]
        for q in [*placed, wrong]:
            await type_fast(pilot, ["a", *keys_for(screen, q)])
        await pilot.press("c")
        await settle(app, pilot)
        body = app.screen.query_one("#verdict-body", Static)
        text = "\n".join(rendered(body))
        for q in app.screen.report.questions:
            assert f"[{q.round}] {q.asker}: {q.card}" in text.replace("\n    ", " ")
        assert "…" not in text
        await pilot.press("escape")
        await pilot.pause()
        lines = rendered(screen.query_one(QuestionList))
        shown = " ".join(line.strip() for line in lines)
        visible = [k for k in range(len(screen.questions)) if f"│ {k + 1}. " in shown]
        assert visible  # at least the highlighted question is on screen
        for k in visible:
            q = screen.questions[k]
            assert f"{k + 1}. {q['round']}  {q['asker']}" in shown
        assert "✗ wrong responder" in shown
        assert not any(line.rstrip().endswith("…") for line in lines)


async def test_two_games_on_one_home_keep_both_players_stars() -> None:
    """Both games load the save before either saves; each solves a different puzzle: both
    players' stars are in the file afterwards (the save merges, never last-writer-wins)."""
    first, second = LineupApp(engine=FakeEngine()), LineupApp(engine=FakeEngine())
    async with first.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert first.record_progress("induction-head", stars=3,
                                     circuit=solution("induction-head"))
    async with second.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert second.record_progress("ioi-name-mover", stars=2,
                                      circuit=solution("ioi-name-mover"))
    assert saved_stars("induction-head") == 3 and saved_stars("ioi-name-mover") == 2


async def test_the_sandbox_keeps_a_sentence_typed_right_after_x() -> None:
    from textual.widgets import Input

    from game.screens.sandbox import SandboxScreen

    app = LineupApp(engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_fast(pilot, ["x", *"the cat sat", "enter"])
        await settle(app, pilot)
        assert isinstance(app.screen, SandboxScreen)
        assert app.screen.query_one(Input).value == "the cat sat"
        assert app.screen.query_one("#lens", DataTable).row_count == 3


@pytest.mark.parametrize("size", [(80, 24), (100, 40), (120, 40)],
                         ids=["80x24", "100x40", "120x40"])
async def test_the_card_list_stays_in_view_under_a_long_story(size, monkeypatch) -> None:
    """The story scrolls in its own box; the rounds and every card stay inside the panel
    (a long story used to push the card list out of it, issue 24). On a small terminal the
    cards are listed by name."""
    from dataclasses import replace

    from engine.puzzle.files import Puzzle

    text_for = Puzzle.text_for
    monkeypatch.setattr(Puzzle, "text_for", lambda self, block: replace(
        text_for(self, block), story="\n\n".join([text_for(self, block).story] * 4)))
    app = LineupApp(engine=FakeEngine(), puzzle="ioi-whole-circuit")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        panel = screen.query_one("#puzzle-info")
        cards = screen.query_one("#cards", Static)
        assert cards.region.y >= panel.region.y
        assert cards.region.bottom <= panel.region.bottom - 1  # inside the bottom border
        shown = " ".join(" ".join(rendered(cards)).split())
        small = size[1] < 30
        assert screen.short_of_room() is small
        for card in screen.puzzle.cards:
            assert (screen.card_short(card) if small else screen.card_name(card)) in shown, card
        assert screen.query_one("#story-box").max_scroll_y > 0  # the story scrolls instead


async def test_the_key_that_opens_a_text_dialog_is_not_typed_into_it(tmp_path,
                                                                     monkeypatch) -> None:
    """`s` twice saved `...yamls`: the opening key, pressed again before anything else (at
    full speed or after the dialog is drawn), is not text; other keys still are."""
    from textual.widgets import Input

    from engine.limits import circuit_file_name

    monkeypatch.chdir(tmp_path)
    name = circuit_file_name("induction-head")
    app = LineupApp(engine=FakeEngine(), puzzle="induction-head")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_fast(pilot, ["s", "s"])
        assert app.screen.query_one(Input).value == name
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert app.screen.query_one(Input).value == name
        await pilot.press("backspace", "s")
        await pilot.pause()
        assert app.screen.query_one(Input).value == name[:-1] + "s"  # now it is text
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / (name[:-1] + "s")).is_file()
        await type_fast(pilot, ["escape", "o", "o"])
        assert app.screen.query_one(Input).value == ""


async def test_round_means_a_range_of_layers_on_every_screen() -> None:
    """One meaning of "round" (issue 24): the help says a round is a range of layers, and the
    tools, which work layer by layer, say which round a layer is in."""
    from game.screens.help import HELP

    assert "A round is a layer" not in HELP and "range of the model's layers" in HELP
    app = LineupApp(engine=FakeEngine(), puzzle="ioi-whole-circuit")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await settle(app, pilot)
        note = plain(app.screen.query_one("#tool-note", Static).content)
        assert "(layer 0, round early, question 0)" in note, note
        await pilot.press("escape", "l")
        await settle(app, pilot)
        note = plain(app.screen.query_one("#tool-note", Static).content)
        assert "after each layer" in note and "rounds: early 0-1 · middle 2 · late 3" in note
