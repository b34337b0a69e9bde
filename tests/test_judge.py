"""The judge on the toy model, whose circuits are known (planted by hand): the reference
solutions earn three stars and every single kind of mistake gets its own verdict."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from engine.judge import Report, grade
from engine.models import load_model
from engine.puzzle import Circuit, Question, find_puzzle, load_all

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


def test_wrong_round_says_why_and_keeps_the_answer_for_later(ioi, toy):
    wrong = Question("middle", "END", "name-mover", "IO")
    report = check(ioi, toy, DUP, INH, wrong)
    assert verdict(report, wrong) == "wrong-round"
    rep = report.questions[-1]
    # the reason, with numbers, in the line's terms; the right round only in `reveal`
    assert "round middle" in rep.message and "another round" in rep.message
    assert "late" not in rep.message and "3.2" not in rep.message
    assert rep.reveal["round"] == "late" and rep.reveal["heads"] == ["3.2"]
    assert report.stars == 0


def test_wrong_responder_says_who_with_numbers(ioi, toy):
    wrong = Question("late", "END", "name-mover", "S1")
    report = check(ioi, toy, DUP, INH, wrong)
    assert verdict(report, wrong) == "wrong-responder"
    rep = report.questions[-1]
    assert "listen to someone else" in rep.message and "S1" in rep.message
    assert "IO" not in rep.message and "3.2" not in rep.message
    assert re.search(r"at most 0\.\d\d of their attention \(an even spread gives 0\.\d\d\)",
                     rep.message)
    assert rep.reveal == {"responder": "IO", "heads": ["3.2"]}
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
    # the held-out prompts can only confirm a pass: they are not even run
    assert report.heldout_faithfulness is None
    assert report.to_json()["heldout_faithfulness"] is None
    assert "heldout" not in report.timing_s


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


def big_files():
    from engine import cache

    return sorted(p for p in cache.runs_dir().glob("judge-v*.pt"))


def test_second_grade_uses_the_cache_and_a_corrupt_file_is_rebuilt(tmp_path, toy, ioi):
    from engine import cache, judge

    first = check(ioi, toy, DUP, INH, NM)
    assert first.timing_s["cached"] == 0.0  # every test has its own, empty cache folder
    hits, runs = cache.STATS["hits"], dict(judge.RUNS)
    second = check(ioi, toy, DUP, INH, NM)
    assert second.timing_s["cached"] == 1.0
    assert cache.STATS["hits"] > hits
    assert dict(judge.RUNS) == runs  # nothing is run again: no split built, no patched copy
    assert second.to_json()["questions"] == first.to_json()["questions"]
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


def test_a_changed_circuit_runs_only_what_it_changes(toy, ioi):
    """Counted, not timed: the patched copies (one copy = every prompt once) each check runs.
    New results go to a small side file; the big file of runs is written once."""
    from engine import cache, judge

    before = dict(judge.RUNS)
    check(ioi, toy, DUP, INH, NM)
    first_copies = judge.RUNS["copies"] - before["copies"]
    assert judge.RUNS["builds"] - before["builds"] == 2  # play and held-out splits
    big = {p: p.stat().st_mtime_ns for p in big_files()}
    assert len(big) == 2
    after_first = dict(judge.RUNS)
    # the first check measured every two-question subset (minimality); one question keeps a
    # new set of heads: one faithfulness run, nothing else
    missing = check(ioi, toy, NM)
    assert judge.RUNS["builds"] == after_first["builds"]
    assert judge.RUNS["copies"] - after_first["copies"] == 1 < first_copies
    assert missing.stars == 1
    # the new result outlives the process memo: it is in the side file
    assert list(cache.runs_dir().glob("judge-effects-v*.pt"))
    cache.forget()
    counted = dict(judge.RUNS)
    again = check(ioi, toy, NM)
    assert dict(judge.RUNS) == counted
    assert again.faithfulness == pytest.approx(missing.faithfulness)
    assert {p: p.stat().st_mtime_ns for p in big_files()} == big  # never rewritten


def test_effects_of_another_build_are_ignored(toy, ioi):
    from engine import cache, judge

    first = check(ioi, toy, DUP, INH, NM)
    sides = list(cache.runs_dir().glob("judge-effects-v*.pt"))
    assert len(sides) == 2  # play and held-out
    for side in sides:
        key = side.name.rsplit("-", 1)[1].removesuffix(".pt")
        saved = cache.load("judge-effects", key)
        assert saved is not None and saved["effects"]
        # the same key, but written for another build of the big file, with wrong numbers
        cache.save("judge-effects", key, {"build": "another-build",
                                          "effects": {k: 999.0 for k in saved["effects"]}})
    cache.forget()
    runs = dict(judge.RUNS)
    second = check(ioi, toy, DUP, INH, NM)
    assert second.faithfulness == pytest.approx(first.faithfulness)
    assert second.stars == 3
    assert judge.RUNS["copies"] > runs["copies"]  # recomputed, not trusted


def test_saving_deletes_other_cache_versions(tmp_path):
    from engine import cache

    folder = cache.runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    old = [folder / f"judge-v{cache.CACHE_VERSION - 1}-abc123.pt",
           folder / f"heads-v{cache.CACHE_VERSION + 7}-def456.pt",
           folder / "judge-effects-v1-0a0b.pt"]
    keep = [folder / f"judge-v{cache.CACHE_VERSION}-fff000.pt", folder / "notes.txt"]
    for p in old + keep:
        p.write_bytes(b"x")
    assert cache.save("heads", "0123abcd", {"x": 1.0}) is not None
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in keep)
    assert cache.path_for("heads", "0123abcd").exists()
    assert cache.size()[0] == 2
    assert cache.clear() == 2 and cache.size() == (0, 0)
    assert (folder / "notes.txt").exists()


def test_memo_is_used_only_while_the_file_is_unchanged(tmp_path):
    from engine import cache

    cache.save("heads", "00ff", {"x": 1.0}, memo=True)
    memo_hits = cache.STATS["memo_hits"]
    assert cache.load("heads", "00ff", memo=True)["x"] == 1.0
    assert cache.STATS["memo_hits"] == memo_hits + 1
    # another process rewrites the entry: the memo is stale and is not used
    path = cache.path_for("heads", "00ff")

    stale = dict(cache._MEMO)
    cache.save("heads", "00ff", {"x": 2.0})
    cache._MEMO.update(stale)  # as if another process had rewritten the file
    assert cache.load("heads", "00ff", memo=True)["x"] == 2.0
    path.write_bytes(b"garbage")
    assert cache.load("heads", "00ff", memo=True) is None
    assert not path.exists()


def test_detector_parameters_are_in_the_heads_cache_key(toy, monkeypatch):
    from engine import detectors, judge

    key = judge._heads_key(toy)
    data = judge._head_scores(toy)
    monkeypatch.setattr(detectors, "COPY_TOP_K", 1)
    assert judge._heads_key(toy) != key
    stricter = judge._head_scores(toy)  # recomputed, not the stale entry
    assert not torch_equal(stricter["scores"][3], data["scores"][3])
    assert bool((stricter["scores"][3] <= data["scores"][3]).all())
    monkeypatch.undo()
    assert judge._heads_key(toy) == key

    def attention_scores(lm, *, n_sequences=16, seed=0):
        raise AssertionError("not called")

    def copy_scores(lm, *, n_tokens=100, n_compared=500, seed=0):
        raise AssertionError("not called")

    monkeypatch.setattr(detectors, "attention_scores", attention_scores)
    changed = judge._heads_key(toy)
    assert changed != key
    monkeypatch.setattr(detectors, "copy_scores", copy_scores)
    assert judge._heads_key(toy) not in (key, changed)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_backup_evidence_is_measured_with_the_name_movers_silenced(toy, tmp_path):
    """The backup card's effect is measured with the round's name movers ablated; each
    head's evidence must be too, or it shows the name mover's own large effect next to a
    question effect of about zero."""
    cards = "cards: [previous-token, duplicate-token, induction, s-inhibition, name-mover"
    puzzle = find_puzzle(toy_puzzle_file(tmp_path, replace={
        cards + "]": cards + ", backup-name-mover]"}))
    backup = Question("late", "END", "backup-name-mover", "IO")
    report = check(puzzle, toy, DUP, INH, NM, backup)
    [rep] = [q for q in report.questions if q.card == "backup-name-mover"]
    # the toy has no backup: 3.2 is the primary name mover itself, so it is not its own
    # backup, and nobody else takes over when it is silenced
    assert not rep.holds and "3.2" not in [h.head for h in rep.heads]
    assert "3.2" not in rep.message
    [mover] = [q for q in report.questions if q.card == "name-mover"]
    assert mover.verdict == "confirmed" and mover.heads[0].effect > 0.5
    assert report.stars == 0


def test_only_a_circuit_for_another_puzzle_loses_every_star(ioi, toy):
    wrong = grade(ioi, Circuit("some-other-puzzle", [DUP, INH, NM]), toy)
    assert wrong.stars == 0 and not wrong.solved
    assert any("some-other-puzzle" in p for p in wrong.problems)
    # other problems do not cost stars, whatever their wording
    twice = check(ioi, toy, DUP, INH, NM, NM, Question("early", "S1+1", "previous-token", "S1"),
                  Question("early", "S1+1", "previous-token", "S1"))
    assert any("placed twice" in p for p in twice.problems)
    assert twice.stars == 2


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


@pytest.mark.parametrize("wrong, why", [
    # a duplicate-token head is no s-inhibition head: its effect goes through later heads'
    # keys and values at S2, not through what later heads ask
    (Question("middle", "S2", "s-inhibition", "S1"), "questions"),
    # the s-inhibition head is no name mover: it listens to S2, and its words do not reach the
    # guess directly
    (Question("late-middle", "END", "name-mover", "S2"), ""),
    # the induction head at S2 is no name mover: the guess is not made at S2
    (Question("middle", "S2", "name-mover", "S1+1"), ""),
])
def test_wrong_cards_are_not_confirmed(ioi, toy, wrong, why):
    report = check(ioi, toy, DUP, INH, NM, wrong)
    [rep] = [q for q in report.questions if (q.round, q.card) == (wrong.round, wrong.card)]
    assert not rep.holds, (rep.verdict, rep.message)
    assert why in rep.message
    assert report.stars == 0


def test_previous_token_head_is_no_copy_head(toy):
    """On the induction puzzle, the previous-token head 0.1 (B asks A) is not a copy head:
    what it says at B never reaches the guess, which is made at A2."""
    puzzle = find_puzzle("induction-two-step")
    solution = list(puzzle.models["toy"].solution)
    wrong = Question("early", "B", "copy", "A")
    report = grade(puzzle, Circuit(puzzle.id, [*solution, wrong]), toy)
    [rep] = [q for q in report.questions if q.card == "copy"]
    assert not rep.holds and "does not reach it" in rep.message
    assert report.stars == 0


def test_random_weights_do_not_do_the_task_and_confirm_nothing(ioi, random_gpt2, tmp_path):
    puzzle = find_puzzle("ioi-whole-circuit")
    block = puzzle.models["gpt2"]
    report = grade(puzzle, Circuit(puzzle.id, list(block.solution)), random_gpt2)
    assert not report.task_ok and report.stars == 0
    assert "does not do the task" in report.task_message
    assert all(q.verdict == "not-measurable" for q in report.questions)
    assert report.task_message in report.problems


def test_progress_moves_through_each_run_layer_by_layer(tmp_path, toy, monkeypatch):
    """On a big model each run of the split takes seconds: the fraction moves after every
    layer (the toy's 4), never backwards, and a cancel lands inside a run."""
    monkeypatch.setenv("LINEUP_HOME", str(tmp_path))  # a cold cache: the runs happen
    puzzle = find_puzzle(toy_puzzle_file(tmp_path))
    stages: list[tuple[str, float]] = []
    grade(puzzle, Circuit(puzzle.id, [DUP, INH, NM]), toy,
          progress=lambda s, f: stages.append((s, f)))
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions)
    for stage in ("running the swapped sentences", "running the real sentences"):
        seen = {f for s, f in stages if s == stage}
        assert len(seen) >= toy.n_layers, (stage, sorted(seen))
    calls = []

    def cancel_in_the_real_run() -> bool:
        calls.append(1)
        return len(calls) > 8

    monkeypatch.setenv("LINEUP_HOME", str(tmp_path / "again"))
    with pytest.raises(InterruptedError):
        grade(puzzle, Circuit(puzzle.id, [DUP]), toy, cancelled=cancel_in_the_real_run)


def test_fail_fast_stops_at_the_first_question_that_does_not_hold(ioi, toy):
    wrong = Question("late", "END", "name-mover", "S1")
    fast = grade(ioi, Circuit(ioi.id, [wrong, DUP, INH, NM]), toy, fail_fast=True)
    assert not fast.solved and fast.stars == 0
    assert len(fast.questions) == 1 and not fast.questions[0].holds
    assert any("3 more not judged" in p for p in fast.problems)
    full = grade(ioi, Circuit(ioi.id, [DUP, INH, NM]), toy, fail_fast=True)
    assert full.stars == check(ioi, toy, DUP, INH, NM).stars == 3
