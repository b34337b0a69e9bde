"""The judge on planted GPT-2-small-shaped models (engine.planted), whose circuits are known
and noisy like a real model's: redundant heads sharing a job, the circuit moved to other
layers, a step missing, a head doing a job by another mechanism.

These models have 124M parameters, so the tests are few: each model is graded on one short
prompt set (``COUNT`` prompts), and the runs are shared by every test of this module through
one cache folder, so a second circuit on the same model only runs what it changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.judge import Report, grade
from engine.puzzle import Circuit, Puzzle, Question, find_puzzle

COUNT = 12

DUP = Question("early", "S2", "duplicate-token", "S1")
PREV_EARLY = Question("early", "S1+1", "previous-token", "S1")
PREV = Question("middle", "S1+1", "previous-token", "S1")
IND = Question("middle", "S2", "induction", "S1+1")
INH = Question("late-middle", "END", "s-inhibition", "S2")
NM = Question("late", "END", "name-mover", "IO")
REFERENCE = [DUP, PREV_EARLY, PREV, IND, INH, NM]

# planted-moved (engine.planted.truth): duplicate-token 0.1/1.0, previous-token 1.2/1.11,
# induction 2.5/3.9, s-inhibition in layers 4-5, name movers in 6-7
MOVED_ROUNDS = "{early: [0, 1], middle: [2, 3], late-middle: [4, 5], late: [6, 11]}"
MOVED = [DUP, PREV_EARLY, IND, INH, NM]


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    return tmp_path_factory.mktemp("planted-home")


@pytest.fixture(autouse=True)
def _one_cache(shared_home, lineup_home, monkeypatch):
    monkeypatch.setenv("LINEUP_HOME", str(shared_home))


def _puzzle_file(folder: Path, name: str, *, rounds: str | None = None,
                 solution: list[Question] | None = None) -> Path:
    """ioi-whole-circuit with COUNT prompts per split, its gpt2 block's rounds and solution
    optionally replaced (the toy and other blocks dropped)."""
    text = Path(find_puzzle("ioi-whole-circuit").path).read_text()
    text = text.replace("count: 32", f"count: {COUNT}").replace(
        "heldout: {count: 32", f"heldout: {{count: {COUNT}")
    head, models = text.split("\nmodels:\n")
    block = models.split("\n  toy:")[0].split("\n  smollm2:")[0]
    if rounds is not None:
        lines = block.splitlines()
        block = "\n".join(f"    rounds: {rounds}" if line.startswith("    rounds:") else line
                          for line in lines)
    if solution is not None:
        keep = [line for line in block.splitlines()  # the givens go too: all is placed
                if not line.startswith("      - ") and line not in ("    solution:",
                                                                    "    given:")]
        at = keep.index(next(x for x in keep if x.startswith("    pass:")))
        keep[at:at] = ["    solution:"] + [
            f"      - {{round: {q.round}, asker: {q.asker}, card: {q.card}, "
            f"responder: {q.responder}}}" for q in solution]
        block = "\n".join(keep)
    path = folder / f"{name}.yaml"
    path.write_text(head.replace("id: ioi-whole-circuit", f"id: {name}") + "\nmodels:\n"
                    + block + "\n")
    return path


@pytest.fixture(scope="module")
def ioi(tmp_path_factory):
    return find_puzzle(_puzzle_file(tmp_path_factory.mktemp("p"), "planted-ioi"))


def check(puzzle, lm, *questions: Question) -> Report:
    return grade(puzzle, Circuit(puzzle.id, list(questions)), lm)


def rep_of(report: Report, q: Question):
    [found] = [r for r in report.questions
               if (r.round, r.asker, r.card, r.responder) == (q.round, q.asker, q.card,
                                                              q.responder)]
    return found


def test_reference_solution_is_solved_and_its_variants_are_not(ioi, planted):
    lm = planted("planted-gpt2")
    report = check(ioi, lm, *REFERENCE)
    assert report.task_ok, report.task_message
    assert report.solved, [(q.verdict, q.message) for q in report.questions]
    assert all(q.verdict == "confirmed" for q in report.questions)
    # the redundant S-inhibition heads are confirmed as one group, each with its share
    inh = rep_of(report, INH)
    assert {"7.3", "7.9", "8.6", "8.10"} <= {h.head for h in inh.heads}
    assert inh.numbers["through_queries"] >= 0.5 * inh.effect
    # a step missing: no second star
    missing = check(ioi, lm, DUP, PREV_EARLY, PREV, IND, INH)
    assert not missing.solved and missing.faithfulness < missing.pass_line
    # one question made wrong, each way: the circuit is not solved
    for wrong, verdict in [
        (Question("late", "END", "name-mover", "S1"), "wrong-responder"),
        (Question("middle", "END", "name-mover", "IO"), "wrong-round"),
    ]:
        r = check(ioi, lm, *[q for q in REFERENCE if q != NM], wrong)
        assert rep_of(r, wrong).verdict == verdict, rep_of(r, wrong).message
        assert not r.solved


@pytest.mark.parametrize("wrong", [
    Question("early", "S2", "s-inhibition", "S1"),  # duplicate-token heads
    Question("late-middle", "END", "name-mover", "S2"),  # s-inhibition heads
    Question("middle", "S2", "name-mover", "S1+1"),  # induction heads
    Question("early", "S1+1", "name-mover", "S1"),  # a previous-token head, at S1+1
])
def test_wrong_cards_are_not_confirmed(ioi, planted, wrong):
    report = check(ioi, planted("planted-gpt2"), *REFERENCE, wrong)
    rep = rep_of(report, wrong)
    assert not rep.holds, (rep.verdict, rep.message)
    assert not report.solved


def test_a_model_missing_a_step_does_not_do_the_task(ioi, planted):
    report = check(ioi, planted("planted-missing-s-inhibition"), *REFERENCE)
    assert not report.task_ok and report.stars == 0
    assert "does not do the task" in report.task_message
    assert {q.verdict for q in report.questions} == {"not-measurable"}


def test_redundant_heads_are_confirmed_as_a_group(ioi, planted):
    report = check(ioi, planted("planted-redundant"), *REFERENCE)
    inh = rep_of(report, INH)
    assert inh.verdict == "confirmed", inh.message
    shares = [h.share for h in inh.heads if h.head in {"7.3", "7.9", "8.6", "8.10"}]
    assert len(shares) == 4 and max(shares) < 0.9
    assert report.solved


def test_the_moved_circuit_is_found_in_its_new_rounds_only(tmp_path, planted):
    lm = planted("planted-moved")
    new = find_puzzle(_puzzle_file(tmp_path, "planted-moved-new", rounds=MOVED_ROUNDS,
                                   solution=MOVED))
    report = check(new, lm, *MOVED)
    assert report.solved, [(q.round, q.card, q.verdict, q.message) for q in report.questions]
    old = find_puzzle(_puzzle_file(tmp_path, "planted-moved-old"))
    refused = check(old, lm, *REFERENCE)
    assert not refused.solved
    # the old rounds hold at most weak stragglers: the job is done in another round
    verdicts = {rep_of(refused, q).verdict for q in (INH, NM)}
    assert "wrong-round" in verdicts and "confirmed" not in verdicts, verdicts


def test_another_mechanism_is_not_the_card(ioi, planted):
    """8.6 attends END -> S2 but copies S into the guess; 9.9 attends END -> IO but writes
    nothing the guess reads: neither is counted for the card its attention suggests."""
    report = check(ioi, planted("planted-othermech"), *REFERENCE)
    assert "8.6" not in {h.head for h in rep_of(report, INH).heads}
    assert "9.9" not in {h.head for h in rep_of(report, NM).heads}


def _shipped(folder: Path, pid: str, *, given: bool = True) -> Puzzle:
    """A shipped puzzle with COUNT prompts per split and only its gpt2 block (optionally
    without its given questions), written to ``folder``."""
    text = Path(find_puzzle(pid).path).read_text()
    text = text.replace("count: 32", f"count: {COUNT}").replace(
        "heldout: {count: 32", f"heldout: {{count: {COUNT}")
    head, models = text.split("\nmodels:\n")
    block = models.split("\n  toy:")[0].split("\n  smollm2:")[0]
    if not given:
        lines = block.splitlines()
        start = lines.index("    given:")
        end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("      "))
        block = "\n".join(lines[:start] + lines[end:])
    path = folder / f"{pid}.yaml"
    path.write_text(head + "\nmodels:\n" + block + "\n")
    return find_puzzle(path)


PLANTED_PUZZLES = ["induction-previous-token", "induction-head", "induction-two-step",
                   "ioi-name-mover", "ioi-s-inhibition", "ioi-duplicate-token",
                   "ioi-whole-circuit", "ioi-backup-and-negative"]


@pytest.mark.parametrize("pid", PLANTED_PUZZLES)
def test_every_gpt2_reference_is_solved_on_the_planted_model(tmp_path, planted, pid):
    """The planted model holds GPT-2's induction and IOI heads where the papers put them (not
    greater-than: nothing of it is planted), so each shipped gpt2 reference is solved."""
    puzzle = _shipped(tmp_path, pid)
    block = puzzle.block("gpt2")
    report = check(puzzle, planted("planted-gpt2"),
                   *[q for q in block.solution if q not in block.given])
    assert report.solved, (report.problems, [(q.card, q.verdict, q.message)
                                             for q in report.questions])


def test_backups_are_found_with_the_name_movers_silenced(tmp_path, planted):
    """Planted backups (10.1, 10.2, 10.6, 10.10, 11.2, 11.9) barely listen to anyone while the
    name movers work; the judge finds them in the run where those are silenced, and the
    completeness test refuses a circuit without them, or without the negative movers."""
    puzzle = _shipped(tmp_path, "ioi-backup-and-negative")
    lm = planted("planted-gpt2")
    backup = Question("late", "END", "backup-name-mover", "IO")
    negative = Question("late", "END", "negative-name-mover", "IO")
    full = check(puzzle, lm, backup, negative)
    assert full.solved, full.problems
    found = {h.head for h in rep_of(full, backup).heads}
    assert {"10.1", "10.2", "10.6", "10.10", "11.2", "11.9"} <= found
    assert not {"9.6", "9.9", "10.0"} & found  # the name movers themselves are not backups
    assert full.completeness["ok"] == 1.0
    for circuit, says in [((negative,), "takes over"), ((backup,), "holds the answer back"),
                          ((), "")]:
        r = check(puzzle, lm, *circuit)
        assert not r.solved and r.completeness["ok"] == 0.0, r.completeness
        assert says in " ".join(r.problems)


def test_given_questions_do_not_flip_with_the_seed(tmp_path, planted):
    """Issue 20, case 4: a given question's verdict was not-measurable on one prompt seed and
    confirmed on another, and its heads left the circuit with it. Now a verdict inside its
    noise is measured on more prompts first, and a given question keeps its heads whatever
    its verdict: on two seeds the givens get the same verdicts and their heads are kept."""
    lm = planted("planted-gpt2")
    seen = []
    for seed in (401, 411):
        path = _puzzle_file(tmp_path, f"planted-seed-{seed}")
        path.write_text(path.read_text().replace("seed: 401", f"seed: {seed}"))
        puzzle = find_puzzle(path)
        block = puzzle.block("gpt2")
        report = check(puzzle, lm, *[q for q in REFERENCE if q not in block.given])
        givens = [r for r in report.questions if r.given]
        assert givens
        seen.append([(r.round, r.asker, r.card, r.verdict) for r in givens])
        for r in givens:
            assert {h.head for h in r.heads} <= set(report.circuit_heads), (r.verdict, r.message)
        prev = rep_of(report, PREV)
        assert prev.verdict == "confirmed", prev.message
    assert seen[0] == seen[1]
