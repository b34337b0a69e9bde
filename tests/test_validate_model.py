"""`lineup validate --model M`: the judge grades each reference solution (it must be solved)
and trivial circuits (they must not be). Through the real entry point, on the toy model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.authoring import (
    MAX_EVERY_HEAD,
    every_head,
    roles_behind,
    trivial_circuits,
    wrong_question,
)
from engine.puzzle import CARDS, Question, card_id, load_puzzle, puzzle_files, shipped_dir
from tests.cli import lineup

ROOT = Path(__file__).resolve().parents[1]
# the toy blocks: whole-circuit places nothing; duplicate-token places the two last steps
WHOLE = shipped_dir() / "ioi" / "04-whole-circuit.yaml"
DUPLICATE = shipped_dir() / "ioi" / "03-duplicate-token.yaml"
TOY_NAME_MOVER = "      - {round: late, asker: END, card: name-mover, responder: IO}\n"
TOY_DUPLICATE = "      - {round: early, asker: S2, card: duplicate-token, responder: S1}\n"

# where each role stands in the IOI puzzles' prompts: IO and S1 swap places between
# templates, so neither is behind the other in every prompt
IOI_BEHIND = {"IO": [], "S1": [], "S1+1": ["S1"], "S2": ["IO", "S1", "S1+1"],
              "END": ["IO", "S1", "S1+1", "S2"]}



def with_toy_line(replacement: str) -> str:
    """The shipped whole-circuit puzzle with its toy block's name-mover question replaced."""
    text = WHOLE.read_text()
    i = text.index(TOY_NAME_MOVER, text.index("\n  toy:\n"))  # in the toy block itself
    return text[:i] + replacement + text[i + len(TOY_NAME_MOVER):]


def line_of(text: str, fragment: str) -> int:
    return text[:text.rindex(fragment)].count("\n") + 1


# --------------------------------------------------------------------------- through the CLI


def test_shipped_toy_puzzles_grade_clean() -> None:
    result = lineup("validate", "puzzles", "--model", "toy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "not graded" not in result.stderr
    assert result.stderr.count("loading model toy") == 1  # once for every file
    toy, locked = [], []
    for path in puzzle_files(ROOT / "puzzles"):
        puzzle = load_puzzle(path)
        (toy if puzzle.block("toy") else locked).append(puzzle.id)
    assert toy and locked
    for pid in toy:
        assert f"grading reference solution of {pid} on toy ..." in result.stderr
        assert f"{pid} on toy: reference solution solved" in result.stderr
        assert re.search(rf"{pid} on toy: (\d+) of \1 trivial circuits fail", result.stderr)
    for pid in locked:
        assert f"reference solution of {pid}" not in result.stderr
    assert result.stderr.count("so the puzzle is locked for toy") == len(locked)


@pytest.mark.parametrize("broken, verdict", [
    ("      - {round: middle, asker: END, card: name-mover, responder: IO}\n", "wrong-round"),
    ("      - {round: late, asker: END, card: name-mover, responder: S1}\n", "wrong-responder"),
])
def test_broken_reference_solution_is_located(tmp_path: Path, broken: str, verdict: str) -> None:
    text = with_toy_line(broken)
    (tmp_path / "broken.yaml").write_text(text)
    result = lineup("validate", "broken.yaml", "--model", "toy", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    line = line_of(text, broken)
    question = str(Question(*re.findall(r"(?:round|asker|card|responder): ([\w+-]+)", broken)))
    located = [s for s in result.stdout.splitlines() if s.startswith(f"broken.yaml:{line}:")]
    assert len(located) == 1, result.stdout
    message = located[0]
    assert "the reference solution is not solved on toy" in message
    assert f"{question} is {verdict}:" in message
    assert "faithfulness" in message and "pass line 0.80" in message
    # the judge's own numbers (the attention given), never the answer's head numbers
    assert re.search(r"\d\.\d\d of (its|their) attention", message), message
    assert "grading reference solution of ioi-whole-circuit on toy" in result.stderr


def test_given_questions_that_solve_the_puzzle_are_too_easy(tmp_path: Path) -> None:
    text = DUPLICATE.read_text()
    given = ("    given:\n"
             "      - {round: middle, asker: END, card: s-inhibition, responder: S2}\n"
             "      - {round: late, asker: END, card: name-mover, responder: IO}\n")
    i = text.rindex(given)
    text = text[:i] + given + TOY_DUPLICATE + text[i + len(given):]  # give the last step too
    (tmp_path / "easy.yaml").write_text(text)
    result = lineup("validate", "easy.yaml", "--model", "toy", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    given_line = text[:i].count("\n") + 1
    assert lines[0].startswith(f"easy.yaml:{given_line}:")
    assert ("the puzzle is too easy on toy: the empty circuit (with its 3 given questions) "
            "passes") in lines[0]
    assert "reference solution solved" in result.stderr


def test_engine_validate_imports_without_torch() -> None:
    code = ("import sys, engine.validate; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- construction


def test_roles_behind() -> None:
    roles = {"A": [0, 0], "B": [1, 1], "A2": [2, 2], "X": [3, 0]}
    behind = roles_behind(roles, ["A", "B", "A2", "X"])
    assert behind == {"A": [], "B": ["A"], "A2": ["A", "B"], "X": []}
    assert roles_behind({"IO": [1, 3], "S1": [3, 1], "END": [9, 9]}) == {
        "IO": [], "S1": [], "END": ["IO", "S1"]}


def test_trivial_circuits_for_the_duplicate_token() -> None:
    puzzle = load_puzzle(DUPLICATE)
    block = puzzle.block("toy")
    trivials = trivial_circuits(puzzle, block, IOI_BEHIND)
    assert [t.kind for t in trivials] == ["empty", "wrong-question", "every-head"]
    empty, wrong, every = trivials
    # (a) nothing placed: the judge adds the block's two given questions itself
    assert empty.circuit.questions == [] and empty.circuit.puzzle == "ioi-duplicate-token"
    assert empty.label == "the empty circuit (with its 2 given questions)"
    # (b) only the placed (not given) question is made wrong: its responder changes to the
    # first other role behind S2
    dup = Question("early", "S2", "duplicate-token", "S1")
    assert wrong.changed == dup
    assert wrong.into == Question("early", "S2", "duplicate-token", "IO")
    assert wrong.circuit.questions == [
        Question("early", "S2", "duplicate-token", "IO"),
        Question("middle", "END", "s-inhibition", "S2"),
        Question("late", "END", "name-mover", "IO"),
    ]
    assert "responder changed" in wrong.label
    # (c) every offered card, every round, every asker with every responder behind it
    pairs = sum(len(v) for v in IOI_BEHIND.values())  # 8
    assert len(every.circuit.questions) == len(block.rounds) * len(puzzle.cards) * pairs
    assert every.left_out == 0
    assert len(set(every.circuit.questions)) == len(every.circuit.questions)
    for q in every.circuit.questions:
        assert q.responder in IOI_BEHIND[q.asker]
        assert q.round in block.rounds and card_id(q.card) in puzzle.cards
    assert set(block.solution) <= set(every.circuit.questions)


def test_whole_circuit_gets_one_wrong_circuit_per_placed_question() -> None:
    puzzle = load_puzzle(shipped_dir() / "ioi" / "04-whole-circuit.yaml")
    block = puzzle.block("toy")
    assert not block.given
    trivials = trivial_circuits(puzzle, block, IOI_BEHIND)
    assert trivials[0].label == "the empty circuit"
    wrong = [t for t in trivials if t.kind == "wrong-question"]
    assert [t.changed for t in wrong] == list(block.solution)
    for t in wrong:
        # exactly one question differs from the reference solution, and it is not in it
        diff = [q for q in t.circuit.questions if q not in block.solution]
        assert diff == [t.into] and len(t.circuit.questions) == len(block.solution)


def test_wrong_question_moves_the_round_when_no_other_responder() -> None:
    puzzle = load_puzzle(shipped_dir() / "induction" / "03-two-step.yaml")
    block = puzzle.block("toy")  # rounds early, middle, late
    behind = {"A": [], "B": ["A"], "A2": ["A", "B"]}
    prev = Question("early", "B", "previous-token", "A")
    assert wrong_question(prev, block, behind) == Question("middle", "B", "previous-token", "A")
    last = Question("late", "B", "previous-token", "A")
    assert wrong_question(last, block, behind) == Question("middle", "B", "previous-token", "A")
    # the responder change skips questions already in the circuit
    induction = Question("middle", "A2", "induction", "B")
    taken = [Question("middle", "A2", "induction", "A")]
    assert wrong_question(induction, block, behind, taken) == Question(
        "late", "A2", "induction", "B")
    # a card that is not a question can only move
    think = Question("middle", "A2", "think")
    assert wrong_question(think, block, behind) == Question("late", "A2", "think")
    one_round = type(block)("toy", {"all": (0, 3)}, [prev])
    assert wrong_question(Question("all", "B", "previous-token", "A"), one_round, behind) is None


def test_every_head_is_capped_keeping_the_metric_askers() -> None:
    puzzle = load_puzzle(DUPLICATE)
    block = puzzle.block("toy")
    full, left = every_head(puzzle, block, IOI_BEHIND)
    assert left == 0 and len(full) <= MAX_EVERY_HEAD
    capped, left = every_head(puzzle, block, IOI_BEHIND, cap=20)
    assert len(capped) == 20 and left == len(full) - 20
    assert all(q.asker == puzzle.metric.at for q in capped)  # END reads the metric
    assert all(q in full for q in capped)
    think_cards = [c for c in CARDS.values() if not c.responder]
    assert think_cards  # a card without a responder is placed once per asker
    puzzle.cards = [*puzzle.cards, think_cards[0].id]
    with_think, _ = every_head(puzzle, block, IOI_BEHIND)
    thinks = [q for q in with_think if q.card == think_cards[0].id]
    assert len(thinks) == len(block.rounds) * len(IOI_BEHIND)
    assert all(q.responder is None for q in thinks)
