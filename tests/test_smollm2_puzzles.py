"""The puzzles' smollm2 blocks graded on the real SmolLM2-135M (docs/smollm2-circuits.md).

Each block's reference must be solved by the judge, trivial circuits must not be, and a
reference with one question made wrong (its card, its responder or its round) must not be
either. The wrong questions are chosen by hand from the field notes: each one asks something
SmolLM2 does not do (a question moved to a round that SmolLM2 also uses for it would still be
right, and would rightly pass).

Skipped when SmolLM2 is not converted on this machine (``lineup download smollm2``). One model
is loaded for the whole module, and the judge's in-process memo shares each puzzle's runs
between the tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import smollm2

pytestmark = [
    pytest.mark.skipif(smollm2.converted_dir() is None,
                       reason="SmolLM2-135M is not converted here (run `lineup download smollm2`)"),
    # about five minutes on two cores: the validator judges a trivial circuit only until
    # its first question that does not hold (``grade(..., fail_fast=True)``)
    pytest.mark.slow,
]

ROOT = Path(__file__).resolve().parent.parent
PUZZLES = ROOT / "puzzles"

# (round, asker, card, responder) changed one field at a time; None keeps the field.
# puzzle id -> [(index of the reference question to change, the change, what it tests)]
WRONG: dict[str, list[tuple[int, dict[str, str], str]]] = {
    # B's only role behind it is A, so its question has no other responder to change to
    "induction-previous-token": [
        (0, {"card": "duplicate-token"}, "card"),
        (0, {"round": "early"}, "round"),
    ],
    "induction-head": [
        (1, {"card": "previous-token"}, "card"),
        (1, {"responder": "A"}, "responder"),
        (1, {"round": "early"}, "round"),
    ],
    "induction-two-step": [
        (1, {"card": "duplicate-token"}, "card"),
        (1, {"responder": "A"}, "responder"),
        (0, {"round": "late-middle"}, "round"),
    ],
    # one round only (the earlier layers are kept): no round to move to
    "ioi-name-mover": [
        (0, {"card": "s-inhibition"}, "card"),
        (0, {"responder": "S1"}, "responder"),
    ],
    "ioi-s-inhibition": [
        (0, {"card": "name-mover"}, "card"),
        (0, {"responder": "IO"}, "responder"),
        (0, {"round": "late"}, "round"),
    ],
    "ioi-duplicate-token": [
        (0, {"card": "induction"}, "card"),
        (0, {"responder": "IO"}, "responder"),
        (0, {"round": "late"}, "round"),
    ],
    "ioi-whole-circuit": [
        (3, {"card": "duplicate-token"}, "card"),
        (4, {"responder": "S1"}, "responder"),
        (3, {"round": "late"}, "round"),
    ],
    # (the sceptic of IO made a name mover would merge into the given name-mover question)
    "ioi-backup-and-negative": [
        (5, {"card": "backup-name-mover"}, "card"),
        (6, {"responder": "S1"}, "responder"),
        (5, {"round": "middle"}, "round"),
    ],
    # docstring ladder (docs/smollm2-circuits.md, section 9); puzzle 1 has one round only
    "docstring-fetch-argument": [
        (0, {"card": "negative-name-mover"}, "card"),
        (0, {"responder": "B2"}, "responder"),
    ],
    "docstring-already-described": [
        (0, {"card": "induction"}, "card"),
        (0, {"responder": "A1"}, "responder"),
        (0, {"round": "late"}, "round"),
    ],
    # pronoun ladder (docs/smollm2-circuits.md, "Pronouns"); one round only (layers 0-25 kept)
    "pronoun-say-it": [
        (0, {"card": "previous-token"}, "card"),
        (0, {"responder": "NAME"}, "responder"),
    ],
}


@pytest.fixture(scope="module")
def lm():
    from engine.models import load_model

    return load_model("smollm2", device="cpu")


def _smollm2_puzzles() -> list[str]:
    from engine.puzzle import load_all

    return sorted(p.id for p in load_all() if p.block("smollm2") is not None)


def test_every_induction_and_ioi_puzzle_has_a_smollm2_block() -> None:
    from engine.puzzle import load_all

    ladders = {p.id: p.ladder for p in load_all()}
    wanted = sorted(pid for pid, ladder in ladders.items() if ladder in ("induction", "ioi"))
    assert [pid for pid in wanted if pid in _smollm2_puzzles()] == wanted
    assert sorted(WRONG) == _smollm2_puzzles()


def test_validate_with_smollm2_passes(lm) -> None:
    """`lineup validate puzzles/ --model smollm2`: every reference solved, trivial circuits
    (empty, one wrong question, every card everywhere) not."""
    from engine.authoring import check_reference_with_judge
    from engine.validate import validate_paths

    notes: list[str] = []
    problems = validate_paths([PUZZLES], model="smollm2", notes=notes,
                              grader=check_reference_with_judge,
                              load=lambda *args, **kwargs: lm)
    assert [str(p) for p in problems] == []


@pytest.mark.parametrize("pid", sorted(WRONG))
def test_one_changed_question_is_not_solved(lm, pid: str) -> None:
    from dataclasses import replace

    from engine.judge import grade
    from engine.puzzle import Circuit, find_puzzle

    puzzle = find_puzzle(pid)
    block = puzzle.block("smollm2")
    assert block is not None
    reference = list(block.solution)
    assert grade(puzzle, Circuit(pid, reference), lm).solved, "the reference itself must pass"
    given = set(block.given)
    for index, change, what in WRONG[pid]:
        q = reference[index]
        assert q not in given, f"{pid}: question {index} is given; change a placed one"
        wrong = replace(q, **change)
        questions = [wrong if k == index else x for k, x in enumerate(reference)]
        report = grade(puzzle, Circuit(pid, questions), lm)
        assert not report.solved, f"{pid}: {what} changed ({q} -> {wrong}) still solves"


def test_two_different_circuits_both_pass_the_sceptic_puzzle(lm) -> None:
    """The reference is not the answer key: on ioi-backup-and-negative (main circuit placed)
    the sceptic of S alone (23.3) passes, and so do both sceptics; the sceptic of IO alone
    (24.4) does not carry the answer."""
    from engine.judge import grade
    from engine.puzzle import Circuit, Question, find_puzzle

    puzzle = find_puzzle("ioi-backup-and-negative")
    of_s = Question("late", "END", "negative-name-mover", "S2")
    of_io = Question("late", "END", "negative-name-mover", "IO")
    assert grade(puzzle, Circuit(puzzle.id, [of_s, of_io]), lm).solved
    assert grade(puzzle, Circuit(puzzle.id, [of_s]), lm).solved
    assert not grade(puzzle, Circuit(puzzle.id, [of_io]), lm).solved
