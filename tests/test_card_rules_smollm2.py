"""Issue 20 on the real SmolLM2-135M: the false solves found among 202 varied circuits are
refused, and the true two-route answers stay accepted.

Skipped when SmolLM2 is not converted here (``lineup download smollm2``); slow (a cold check
of a puzzle takes half a minute on two cores), but run in CI."""

from __future__ import annotations

import pytest

from engine import smollm2
from engine.puzzle import Circuit, Question, find_puzzle

pytestmark = [
    pytest.mark.skipif(smollm2.converted_dir() is None,
                       reason="SmolLM2-135M is not converted here (run `lineup download smollm2`)"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def lm():
    from engine.models import load_model

    return load_model("smollm2", device="cpu")


def check(pid: str, lm, questions: list[Question]):
    from engine.judge import grade

    return grade(find_puzzle(pid), Circuit(pid, questions), lm)


def rep_of(report, q: Question):
    [found] = [r for r in report.questions
               if (r.round, r.asker, r.card, r.responder) == (q.round, q.asker, q.card,
                                                              q.responder)]
    return found


def test_the_induction_card_is_not_a_name_mover(lm):
    """Case 1: {late, END, induction, IO} alone solved ioi-name-mover with 3 stars (the name
    movers score as induction heads on repeated random words)."""
    q = Question("late", "END", "induction", "IO")
    report = check("ioi-name-mover", lm, [q])
    rep = rep_of(report, q)
    assert rep.verdict == "no-such-question", rep.message
    assert "right after an earlier copy of END's word" in rep.message
    assert report.stars == 0


@pytest.mark.parametrize("pid", ["ioi-duplicate-token", "ioi-whole-circuit"])
def test_s_inhibition_is_not_a_duplicate_token_head(lm, pid):
    """Case 2: {early, S2, s-inhibition, S1} in place of the duplicate-token question solved
    both puzzles with 3 stars (the path counted S2's own later heads' queries)."""
    block = find_puzzle(pid).block("smollm2")
    dup = Question("early", "S2", "duplicate-token", "S1")
    swap = Question("early", "S2", "s-inhibition", "S1")
    assert dup in block.solution
    report = check(pid, lm, [swap if q == dup else q for q in block.solution])
    rep = rep_of(report, swap)
    assert rep.verdict == "no-such-question", rep.message
    assert "they ask at END" in rep.message
    assert not report.solved


def test_false_questions_are_not_not_needed_and_do_not_pad(lm):
    """Case 3: a group that moves the guess the wrong way, and questions false by position,
    were called not-needed, so a solved circuit padded with them stayed solved."""
    pid = "ioi-whole-circuit"
    block = find_puzzle(pid).block("smollm2")
    against = Question("late-middle", "END", "s-inhibition", "IO")
    by_position = [Question("middle", "END", "previous-token", "S2"),
                   Question("middle", "END", "induction", "S2")]
    report = check(pid, lm, [*block.solution, against, *by_position])
    rep = rep_of(report, against)
    assert rep.verdict != "not-needed" and not rep.holds, rep.message
    if rep.verdict == "no-such-question":
        assert "work against the guess" in rep.message
    assert rep_of(report, by_position[0]).message.endswith(
        "S2 stands four people behind END, not right behind")
    assert rep_of(report, by_position[1]).verdict == "no-such-question"
    assert not report.solved and report.stars == 0


def test_the_true_two_route_answers_stay_accepted(lm):
    """The second routes SmolLM2 really has: A2 recognising its own word (duplicate-token
    A2 -> A) beside the reference of induction-previous-token; 24.5 as a weak mover of S; and
    ioi-backup-and-negative without 24.4 (the sceptic of IO)."""
    pid = "induction-previous-token"
    block = find_puzzle(pid).block("smollm2")
    dup = Question("middle", "A2", "duplicate-token", "A")
    report = check(pid, lm, [*block.solution, dup])
    assert rep_of(report, dup).holds, rep_of(report, dup).message
    assert report.solved
    weak = Question("late", "END", "name-mover", "S1")
    nm = find_puzzle("ioi-name-mover").block("smollm2")
    report = check("ioi-name-mover", lm, [*nm.solution, weak])
    assert rep_of(report, weak).holds, rep_of(report, weak).message
    assert report.solved
    of_s = Question("late", "END", "negative-name-mover", "S2")
    assert check("ioi-backup-and-negative", lm, [of_s]).solved
