"""The judge on the toy model, whose circuits are known (planted by hand): the reference
solutions earn three stars and every single kind of mistake gets its own verdict."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from engine.judge import Report, grade
from engine.models import load_model, toy_names
from engine.puzzle import Circuit, Question, find_puzzle, load_all

pytestmark = pytest.mark.skipif(not toy_names(), reason="no bundled toy model built yet")

# The toy's planted IOI circuit (engine/assets/toys/toy/lineup.json): 1.0 duplicate-token
# (S2 -> S1), 2.1 inhibition (END -> S2), 3.2 name mover (END -> IO); one layer per round.
TOY_IOI_BLOCK = """  toy:
    rounds: {early: [0, 0], middle: [1, 1], late-middle: [2, 2], late: [3, 3]}
    solution:
      - {round: middle, asker: S2, card: duplicate-token, responder: S1}
      - {round: late-middle, asker: END, card: s-inhibition, responder: S2}
      - {round: late, asker: END, card: name-mover, responder: IO}
    pass: {faithfulness: 0.8}
"""
DUP = Question("middle", "S2", "duplicate-token", "S1")
INH = Question("late-middle", "END", "s-inhibition", "S2")
NM = Question("late", "END", "name-mover", "IO")


def toy_puzzle_file(folder: Path, *, replace: dict[str, str] | None = None) -> Path:
    """The shipped whole-IOI puzzle with its toy block set to the toy's planted circuit."""
    text = (Path(find_puzzle("ioi-whole-circuit").path)).read_text()
    text = text[: text.index("  toy:\n")] + TOY_IOI_BLOCK
    text = text.replace("id: ioi-whole-circuit", "id: toy-ioi-test")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "toy-ioi.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def toy():
    return load_model("toy", device="cpu")


@pytest.fixture(scope="module")
def ioi(tmp_path_factory):
    # the copy card is offered too, so that one mechanism can be named two ways
    cards = "cards: [previous-token, duplicate-token, induction, s-inhibition, name-mover"
    return find_puzzle(toy_puzzle_file(tmp_path_factory.mktemp("puzzles"),
                                       replace={cards + "]": cards + ", copy]"}))


def check(puzzle, toy, *questions: Question) -> Report:
    return grade(puzzle, Circuit(puzzle.id, list(questions)), toy)


def verdict(report: Report, q: Question) -> str:
    [found] = [r for r in report.questions
               if (r.round, r.asker, r.card, r.responder) == (q.round, q.asker, q.card,
                                                              q.responder)]
    return found.verdict


def test_reference_solution_earns_three_stars(ioi, toy):
    report = check(ioi, toy, DUP, INH, NM)
    assert report.stars == 3 and report.solved
    assert [q.verdict for q in report.questions] == ["confirmed"] * 3
    assert report.faithfulness == pytest.approx(1.0, abs=0.05)
    assert report.heldout_faithfulness == pytest.approx(1.0, abs=0.05)
    heads = {q.card: [h.head for h in q.heads] for q in report.questions}
    assert heads == {"duplicate-token": ["1.0"], "s-inhibition": ["2.1"], "name-mover": ["3.2"]}
    for q in report.questions:
        e = q.heads[0]
        assert e.attention > 0.5 and e.effect > 0.5 and not math.isnan(e.detector)
    payload = report.to_json()
    for key in ("puzzle", "model", "solved", "stars", "faithfulness", "heldout_faithfulness",
                "questions", "timing_s"):
        assert key in payload
    assert payload["questions"][0]["heads"][0]["head_id"] == "L1H0"


def test_wrong_round_says_which_round(ioi, toy):
    wrong = Question("middle", "END", "name-mover", "IO")
    report = check(ioi, toy, DUP, INH, wrong)
    assert verdict(report, wrong) == "wrong-round"
    assert "round late" in report.questions[-1].message
    assert report.stars == 0


def test_wrong_responder_says_who_with_numbers(ioi, toy):
    wrong = Question("late", "END", "name-mover", "S1")
    report = check(ioi, toy, DUP, INH, wrong)
    assert verdict(report, wrong) == "wrong-responder"
    message = report.questions[-1].message
    assert "mostly asks IO" in message and "head 3.2" in message and "not S1" in message
    assert report.stars == 0


def test_wrong_card_is_no_such_question(ioi, toy):
    wrong = Question("late", "END", "previous-token", "IO")
    report = check(ioi, toy, DUP, INH, wrong)
    assert verdict(report, wrong) == "no-such-question"
    assert report.stars == 0


def test_missing_step_fails_faithfulness(ioi, toy):
    report = check(ioi, toy, INH, NM)
    assert [q.verdict for q in report.questions] == ["confirmed", "confirmed"]
    assert report.faithfulness < report.pass_line
    assert report.stars == 1 and not report.solved
    assert any("below the pass line" in p for p in report.problems)


def test_useless_extra_question_costs_the_third_star(ioi, toy):
    extra = Question("early", "S1+1", "previous-token", "S1")  # real head 0.1, unused by IOI
    report = check(ioi, toy, DUP, INH, NM, extra)
    assert verdict(report, extra) == "not-needed"
    assert report.stars == 2 and report.solved


def test_redundant_question_is_not_needed(ioi, toy):
    """The copy card asks the same head as the name-mover card: one of them can go."""
    again = Question("late", "END", "copy", "IO")
    report = check(ioi, toy, DUP, INH, NM, again)
    assert "not-needed" in [q.verdict for q in report.questions]
    assert report.stars == 2


def test_every_head_of_every_round_does_not_pass(ioi, toy):
    block = ioi.models["toy"]
    everything = [Question(r, a, c, p) for r in block.rounds for a in ("S2", "END")
                  for c in ioi.cards for p in ("S1", "IO", "S2", "S1+1") if p != a]
    report = check(ioi, toy, *everything)
    assert report.faithfulness == pytest.approx(1.0, abs=0.05)  # every head kept...
    assert report.stars == 0  # ...but most of those questions are not what the heads do
    verdicts = {q.verdict for q in report.questions}
    assert {"wrong-round", "wrong-responder", "no-such-question"} <= verdicts, verdicts


def test_empty_circuit_scores_zero(ioi, toy):
    report = check(ioi, toy)
    assert report.faithfulness == pytest.approx(0.0, abs=1e-6)
    assert report.stars == 0


def test_invalid_questions_are_reported_not_raised(ioi, toy):
    bad = [Question("lunch", "END", "name-mover", "IO"),
           Question("late", "END", "name-mover", "END"),
           Question("late", "S1", "name-mover", "IO"),  # IO stands in front of S1 sometimes
           Question("late", "END", "teleport", "IO")]
    report = check(ioi, toy, DUP, INH, NM, *bad)
    assert [q.verdict for q in report.questions[3:]] == ["invalid"] * 4
    assert report.stars == 0


def test_heldout_catches_a_circuit_tuned_to_the_play_prompts(tmp_path, toy):
    """An honest play-set overfit, on the toy's induction circuit.

    The play set is one prompt and only B is corrupted, so A is the same in the prompt and its
    twin. Mean ablation over a single corrupted prompt then gives the previous-token head
    (0.1) exactly the output it has on the play prompt ("A stood behind me"), and a circuit
    with the induction question alone looks faithful there. The held-out set has 32 prompts
    with different A's; the mean over them says nothing about A, the induction head finds
    nothing, and the held-out check fails: no third star. With the previous-token question
    too, on the shipped puzzle's prompts, the circuit passes both."""
    text = Path(find_puzzle("induction-two-step").path).read_text()
    text = text.replace("count: 32\n  seed: 31", "count: 1\n  seed: 31")
    old = 'resample: ["first {W1}", "first {W2}", "first {W3}", "first {W4}", A, B]'
    assert old in text
    text = text.replace(old, "resample: [B]").replace("id: induction-two-step", "id: overfit")
    path = tmp_path / "overfit.yaml"
    path.write_text(text)
    puzzle = find_puzzle(path)
    solution = {q.card: q for q in puzzle.models["toy"].solution}
    induction, previous = solution["induction"], solution["previous-token"]
    tuned = check(puzzle, toy, induction)
    assert tuned.faithfulness >= tuned.pass_line
    assert tuned.heldout_faithfulness < tuned.heldout_pass_line
    assert tuned.stars == 2
    assert any("held-out" in p for p in tuned.problems)
    # on the real play set (32 prompts, the whole first half corrupted) the same circuit
    # already fails on play prompts: it was the one-prompt play set that it fitted
    honest = find_puzzle("induction-two-step")
    assert check(honest, toy, induction).faithfulness < honest.models["toy"].thresholds.faithfulness
    assert check(honest, toy, previous, induction).stars == 3


def test_other_correct_circuits_pass_too(ioi, toy):
    """The reference solution is not the answer key: listing the name mover with the copy
    card instead of the name-mover card names the same mechanism and passes."""
    report = check(ioi, toy, DUP, INH, Question("late", "END", "copy", "IO"))
    assert report.stars == 3


def test_second_grade_uses_the_cache_and_a_corrupt_file_is_rebuilt(tmp_path, toy, ioi):
    from engine import cache

    first = check(ioi, toy, DUP, INH, NM)
    assert first.timing_s["cached"] in (0.0, 1.0)
    hits = cache.STATS["hits"]
    second = check(ioi, toy, DUP, INH, NM)
    assert second.timing_s["cached"] == 1.0
    assert cache.STATS["hits"] > hits
    assert second.timing_s["judging"] < 0.5
    files = list(cache.runs_dir().glob("judge-*.pt"))
    assert files
    for f in files:
        f.write_bytes(b"not a torch file")
    corrupt = cache.STATS["corrupt"]
    third = check(ioi, toy, DUP, INH, NM)
    assert cache.STATS["corrupt"] > corrupt
    assert third.timing_s["cached"] == 0.0
    assert third.stars == 3 and third.faithfulness == pytest.approx(first.faithfulness)
    assert check(ioi, toy, DUP, INH, NM).timing_s["cached"] == 1.0


def test_progress_and_cancel(ioi, toy):
    stages = []
    check_report = grade(ioi, Circuit(ioi.id, [DUP, INH, NM]), toy,
                         progress=lambda s, f: stages.append((s, f)))
    assert check_report.stars == 3
    assert stages[0][0] == "prompts" and stages[-1] == ("done", 1.0)
    with pytest.raises(InterruptedError):
        grade(ioi, Circuit(ioi.id, [DUP]), toy, cancelled=lambda: True)


def test_locked_puzzle_is_a_usage_error(toy):
    from engine.errors import UsageError

    puzzle = find_puzzle("ioi-backup-and-negative")
    with pytest.raises(UsageError, match="locked"):
        grade(puzzle, Circuit(puzzle.id, []), toy)


SHIPPED_TOY = [p.id for p in load_all() if "toy" in p.models]


@pytest.mark.parametrize("puzzle_id", SHIPPED_TOY)
def test_shipped_toy_reference_solutions_earn_three_stars(puzzle_id, toy):
    puzzle = find_puzzle(puzzle_id)
    block = puzzle.models["toy"]
    report = grade(puzzle, Circuit(puzzle.id, list(block.solution)), toy)
    assert report.stars == 3, [(q.verdict, q.message) for q in report.questions]
