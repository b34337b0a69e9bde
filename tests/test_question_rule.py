"""One rule decides whether a question can be asked (engine.puzzle.question_problems): the
validator, `lineup check`, the judge and the game all give the same answer."""

from __future__ import annotations

from engine.puzzle import Question, find_puzzle, question_problem, question_problems
from game.views import saved_questions
from tests.cli import lineup

SELF = {"round": "late", "asker": "END", "card": "name-mover", "responder": "END"}
SAYS = "END cannot ask themself"


def write_circuit(tmp_path, question: dict[str, str]):
    path = tmp_path / "circuit.yaml"
    fields = ", ".join(f"{k}: {v}" for k, v in question.items())
    path.write_text(f"puzzle: ioi-name-mover\nquestions:\n  - {{{fields}}}\n")
    return path


def test_end_asking_end_gets_one_answer_everywhere(tmp_path) -> None:
    path = write_circuit(tmp_path, SELF)
    validated = lineup("validate", str(path))
    assert validated.returncode == 1, validated.stdout + validated.stderr
    assert SAYS in validated.stdout
    checked = lineup("check", "ioi-name-mover", str(path), "--model", "toy")
    assert checked.returncode == 1, checked.stdout + checked.stderr  # graded: not solved
    assert "END: name-mover -> END: invalid" in checked.stdout and SAYS in checked.stdout
    puzzle = find_puzzle("ioi-name-mover")
    block = puzzle.block("toy")
    kept, problems = saved_questions([SELF], puzzle, block)  # the game opening that file
    assert kept == [] and len(problems) == 1 and SAYS in problems[0]
    assert SAYS in (question_problem(Question(**SELF), puzzle, block) or "")  # the judge


def test_the_rule_reports_every_reason_with_the_field_it_is_about() -> None:
    puzzle = find_puzzle("ioi-name-mover")
    block = puzzle.block("toy")
    wrong = Question("lat", "ENDD", "name-mover", "Io")
    fields = [p.field for p in question_problems(wrong, puzzle, block)]
    assert fields == ["round", "asker", "responder"]
    assert question_problems(Question("late", "END", "name-mover", "IO"), puzzle, block) == []
    think = Question("late", "END", "think", "IO")
    reasons = question_problems(think, puzzle, block)
    assert reasons and reasons[0].kind in ("not-offered", "responder")


def test_a_responder_in_front_of_the_asker_needs_the_prompts() -> None:
    puzzle = find_puzzle("ioi-name-mover")
    block = puzzle.block("toy")
    q = Question("late", "IO", "name-mover", "END")
    assert question_problems(q, puzzle, block) == []  # names are fine on their own
    positions = {"IO": [1, 3], "END": [9, 9]}
    [problem] = question_problems(q, puzzle, block, positions)
    assert problem.kind == "behind" and "END stands in front of IO" in problem.message
