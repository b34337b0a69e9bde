"""Ladders that climb: givens only reuse what an earlier puzzle asked for, and ``kept``
layers let a puzzle teach one step while the rest of the line plays untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.judge import grade
from engine.ladders import ladder_reveals
from engine.models import load_model
from engine.puzzle import LADDERS, Circuit, Question, find_puzzle, load_all
from engine.report import stars_for
from engine.validate import validate_paths


def test_no_shipped_given_gives_away_a_later_puzzle() -> None:
    for ladder in LADDERS:
        puzzles = [p for p in load_all() if p.ladder == ladder]
        assert ladder_reveals(puzzles) == [], ladder


def test_the_first_puzzle_of_each_ladder_places_nothing() -> None:
    """Nothing has been found yet when a ladder starts, so nothing can be reused."""
    for ladder in ("induction", "ioi"):
        first = next(p for p in load_all() if p.ladder == ladder and p.order == 1)
        for name, block in first.models.items():
            assert block.given == [], (first.id, name)


def _copy_ladder(folder: Path, replace: dict[str, tuple[str, str]]) -> Path:
    """The shipped induction ladder copied to ``folder``, each file's text edited."""
    for p in load_all():
        if p.ladder != "induction":
            continue
        text = Path(p.path).read_text()
        if p.id in replace:
            old, new = replace[p.id]
            assert old in text
            text = text.replace(old, new)
        (folder / Path(p.path).name).write_text(text)
    return folder


def test_a_given_that_a_later_puzzle_asks_for_is_an_authoring_error(tmp_path) -> None:
    # show puzzle 1 (previous-token) the induction question that puzzle 2 asks for
    folder = _copy_ladder(tmp_path, {"induction-previous-token": (
        "    rounds: {early: [0, 0]}\n    kept: [1, 3]\n    solution:\n",
        "    rounds: {early: [0, 0], middle: [1, 1], late: [2, 3]}\n    given:\n"
        "      - {round: middle, asker: A2, card: induction, responder: B}\n    solution:\n"
        "      - {round: middle, asker: A2, card: induction, responder: B}\n")})
    problems = validate_paths([folder])
    gives = [p for p in problems if "gives away" in p.message]
    assert len(gives) == 1, problems
    assert "induction-head" in gives[0].message and gives[0].path.endswith(
        "01-previous-token.yaml")
    assert gives[0].line > 0


@pytest.mark.parametrize("edit, says", [
    (("kept: [1, 3]", "kept: [2, 3]"), "layer 1 of the toy model is in no round and not kept"),
    (("kept: [1, 3]", "kept: [0, 3]"), "overlap round 'early'"),
    (("kept: [1, 3]", "kept: [1, 9]"), "reach past the toy model's last layer"),
    (("kept: [1, 3]", "kept: [[1, 3], 5]"), "reach past"),
    (("kept: [1, 3]", "kept: yes"), "`kept` must be a list of layer ranges"),
])
def test_kept_layers_are_checked(tmp_path, edit, says) -> None:
    folder = _copy_ladder(tmp_path, {"induction-previous-token": edit})
    problems = [p for p in validate_paths([folder]) if p.path.endswith("01-previous-token.yaml")]
    assert any(says in p.message for p in problems), problems


def test_kept_layers_are_never_silenced(tmp_path) -> None:
    """On the toy's induction puzzle 1 only layer 0 is played (the induction head, 1.2, is in
    kept layers): faithfulness 0 means layer 0 silenced and the rest playing, not every head
    of the model silenced."""
    puzzle = find_puzzle("induction-previous-token")
    assert puzzle.block("toy").kept == [(1, 3)]
    toy = load_model("toy")
    prev = Question("early", "B", "previous-token", "A")
    solved = grade(puzzle, Circuit(puzzle.id, [prev]), toy)
    # were the kept layers silenced, 1.2 would be too and nothing could reach B
    assert solved.stars == 3 and solved.faithfulness > 0.9
    assert solved.circuit_heads == ["0.1"]  # no head of a kept layer is ever "used"
    empty = grade(puzzle, Circuit(puzzle.id, []), toy)
    assert abs(empty.faithfulness) < 1e-6
    # a question cannot be asked in a kept layer: there is no round there
    late = grade(puzzle, Circuit(puzzle.id, [prev, Question("late", "A2", "induction", "B")]),
                 toy)
    assert [q.verdict for q in late.questions] == ["confirmed", "invalid"]


def test_an_incomplete_circuit_earns_one_star_at_most() -> None:
    assert stars_for([], 1.0, 0.6, 1.0, 0.5) == 0
    from engine.report import QuestionReport

    ok = [QuestionReport("late", "END", "name-mover", "IO", False, "confirmed", "")]
    assert stars_for(ok, 0.9, 0.6, 0.9, 0.5) == 3
    assert stars_for(ok, 0.9, 0.6, 0.9, 0.5, complete=False) == 1


def test_without_needs_within_and_a_card_of_the_solution(tmp_path) -> None:
    src = Path(find_puzzle("ioi-backup-and-negative").path).read_text()
    line = "    pass: {faithfulness: 0.7, heldout: 0.6, within: 0.1, without: name-mover}"
    assert line in src
    for new, says in [
        (line.replace("within: 0.1, ", ""), "`without` needs `within`"),
        (line.replace("without: name-mover", "without: copy"), "names no card of the gpt2"),
        (line.replace("within: 0.1", "within: 2"), "within"),
    ]:
        path = tmp_path / "backup.yaml"
        path.write_text(src.replace(line, new))
        problems = validate_paths([path])
        assert any(says in p.message for p in problems), (says, problems)


def test_the_puzzle_screen_shows_kept_layers_in_order(tmp_path, monkeypatch) -> None:
    """The rounds panel lists the rounds you play, numbered, with the kept layers between
    them in layer order, marked as played for you."""
    import asyncio

    from textual.widgets import Static

    from game.app import LineupApp
    from game.screens.puzzle import PuzzleScreen
    from tests.fake_engine import FakeEngine

    monkeypatch.setenv("LINEUP_HOME", str(tmp_path))

    async def run() -> str:
        app = LineupApp(engine=FakeEngine(), puzzle="induction-previous-token")
        async with app.run_test(size=(100, 40)) as pilot:
            for _ in range(50):
                await pilot.pause()
                if isinstance(app.screen, PuzzleScreen):
                    break
            assert isinstance(app.screen, PuzzleScreen), app.screen
            return str(app.screen.query_one("#rounds", Static).render())

    text = asyncio.run(run())
    assert "1. early (layer 0)" in text
    assert "(layers 1-3) played for you" in text
    assert text.index("1. early") < text.index("played for you")
