"""Judging ahead (``engine.judge.prepare``): what it runs is what a check then needs, the
verdicts are the same as without it, and it stops when the player leaves the puzzle."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from engine import cache
from engine.judge import RUNS, grade
from engine.judge.prepare import candidate_questions, prepare
from engine.puzzle import Circuit, find_puzzle, question_problem


@pytest.fixture(scope="module")
def toy():
    from engine.models import load_model

    return load_model("toy", device="cpu")


def report_of(puzzle, questions, lm) -> dict:
    out = grade(puzzle, Circuit(puzzle.id, list(questions)), lm).to_json()
    out.pop("timing_s")
    return out


def test_candidates_are_every_valid_question_with_the_solution_first() -> None:
    puzzle = find_puzzle("ioi-whole-circuit")
    block = puzzle.models["toy"]
    found = candidate_questions(puzzle, "toy")
    assert found[: len(block.solution)] == list(block.solution)
    assert len({(q.round, q.asker, q.card, q.responder) for q in found}) == len(found)
    assert all(question_problem(q, puzzle, block) is None for q in found)
    rounds, roles = len(block.rounds), len(puzzle.roles)
    assert len(found) > rounds * len(puzzle.cards)  # every round, asker, card and responder
    assert len(found) <= rounds * roles * len(puzzle.cards) * roles


def test_a_check_after_preparing_runs_nothing_new_for_its_questions(toy) -> None:
    puzzle = find_puzzle("ioi-whole-circuit")
    solution = list(puzzle.models["toy"].solution)
    # any single question the puzzle offers, placed with the reference: judged ahead
    odd = next(q for q in candidate_questions(puzzle, "toy") if q not in solution)
    unprepared = report_of(puzzle, [*solution, odd], toy)
    cache.clear()
    done = prepare(puzzle, toy)
    assert not done.cancelled and done.questions == done.of > 0 and done.heldout
    cache.forget()  # as a new process would: from the files only
    before = dict(RUNS)
    prepared = report_of(puzzle, [*solution, odd], toy)
    assert RUNS["builds"] == before["builds"]  # both splits were ready
    assert json.dumps(prepared, sort_keys=True) == json.dumps(unprepared, sort_keys=True)
    # the reference and every circuit one question short of it run nothing at all
    before = dict(RUNS)
    report_of(puzzle, solution[:-1], toy)
    assert RUNS["copies"] == before["copies"]


def test_preparing_stops_when_cancelled_and_keeps_what_it_measured(toy) -> None:
    puzzle = find_puzzle("ioi-whole-circuit")
    stages: list[str] = []

    def cancel_at_the_tenth_question() -> bool:
        return sum(stage.startswith("preparing: question ") for stage in stages) >= 10

    done = prepare(puzzle, toy, progress=lambda stage, f: stages.append(stage),
                   cancelled=cancel_at_the_tenth_question)
    assert done.cancelled and 0 < done.questions < done.of
    again = prepare(puzzle, toy)  # picks up where it stopped: the first nine are cached
    assert not again.cancelled and again.questions == again.of


async def test_leaving_the_puzzle_cancels_the_preparation(lineup_home) -> None:
    """The real engine on the toy: the puzzle screen starts preparing as it opens, and esc
    back to the menu stops it (the engine sees ``cancelled()`` turn true)."""
    from game.app import LineupApp
    from game.engine_bridge import Engine
    from game.screens.menu import MenuScreen
    from game.screens.puzzle import PuzzleScreen

    started, finished = threading.Event(), threading.Event()
    outcome: list = []

    class Watched(Engine):
        def prepare(self, puzzle, *, progress=None, cancelled=None):
            def slow_progress(stage: str, fraction: float) -> None:
                started.set()
                if progress is not None:
                    progress(stage, fraction)
                while cancelled is not None and not cancelled() and not finished.is_set():
                    finished.wait(0.01)  # hold every stage until cancelled

            result = super().prepare(puzzle, progress=slow_progress, cancelled=cancelled)
            outcome.append(result)
            finished.set()
            return result

    app = LineupApp(engine=Watched("toy"), puzzle="ioi-whole-circuit")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, PuzzleScreen)
        for _ in range(2400):  # up to 2 minutes on a busy machine
            if started.is_set():
                break
            await asyncio.sleep(0.05)
        assert started.is_set(), "the puzzle screen did not start preparing"
        preparing = app.screen.query_one("#preparing")
        for _ in range(200):  # the line shows once the first progress reaches the screen
            if preparing.display:
                break
            await pilot.pause(0.05)
        assert preparing.display
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MenuScreen)
        for _ in range(2400):  # up to 2 minutes on a busy machine
            if finished.is_set():
                break
            await asyncio.sleep(0.05)
    assert outcome and outcome[0].cancelled
