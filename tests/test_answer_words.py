"""Answers that are not in the prompt: table fills (several slots filled from one row) and
metric answer texts such as ``" {PRONOUN}"`` (docs/authoring.md, "Answers that are not in the
prompt"). No model weights: GPT-2's bundled tokenizer only."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from engine.models import load_tokenizer
from engine.puzzle import word_lists
from engine.puzzle.checks import check_puzzle
from engine.puzzle.prompts import encode, sample
from engine.puzzle.reader import read_yaml
from engine.puzzle.shape import parse_puzzle, word_tables
from engine.puzzle.tokens import check_tokens

ROOT = Path(__file__).resolve().parent.parent

BASE = {
    "id": "pronoun-sketch",
    "title": "A sketch",
    "ladder": "beyond",
    "order": 1,
    "story": "Somebody must say the right pronoun.",
    "prompts": {
        "templates": ["So {NAME} is a great friend, isn't",
                      "So {NAME} is a good cook, isn't"],
        "fill": {"NAME": {"rows": "gendered_names", "with": ["PRONOUN", "OTHER"]}},
        "count": 24,
        "seed": 3,
    },
    "roles": {"NAME": "{NAME}", "IS": "after NAME", "END": "last"},
    "metric": {"logit_diff": {"correct": " {PRONOUN}", "wrong": " {OTHER}"}, "at": "END"},
    "corrupt": {"resample": ["NAME"]},
    "cards": ["copy", "think"],
    "hints": ["Nfx gur anzr.", "Guvax vg bire."],
    "models": {"gpt2": {"rounds": {"late": [9, 11]}, "kept": [0, 8],
                        "solution": [{"round": "late", "asker": "END", "card": "copy",
                                      "responder": "IS"}]}},
}


def puzzle_from(tmp_path: Path, data: dict, name: str = "p.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    doc = read_yaml(path)
    puzzle, problems = parse_puzzle(doc)
    return puzzle, doc, problems


def with_changes(**changes) -> dict:
    data = json.loads(json.dumps(BASE))
    for dotted, value in changes.items():
        where = data
        *path, last = dotted.split("__")
        for key in path:
            where = where[key]
        where[last] = value
    return data


def messages(problems) -> str:
    return "\n".join(p.message for p in problems)


@pytest.fixture(scope="module")
def gpt2_tok():
    return load_tokenizer("gpt2")


def test_a_table_is_not_a_word_list_and_its_rows_pair_names_with_pronouns() -> None:
    table = word_tables()["gendered_names"]
    assert "gendered_names" not in word_lists()
    assert all(len(row) == 3 and {row[1], row[2]} == {"she", "he"} for row in table)
    assert len({row[0] for row in table}) == len(table)


def test_table_fills_stay_paired_in_every_prompt_and_twin(tmp_path) -> None:
    puzzle, doc, problems = puzzle_from(tmp_path, BASE)
    assert problems == [] and check_puzzle(puzzle, doc) == []
    rows = {tuple(r) for r in word_tables()["gendered_names"]}
    for split in ("play", "heldout"):
        for raw in sample(puzzle, split):
            assert (raw.fills["NAME"], raw.fills["PRONOUN"], raw.fills["OTHER"]) in rows
            assert raw.words == [raw.fills["NAME"]]  # the pronouns stand in no template
            assert raw.corrupted_words[0] != raw.words[0]
    genders = {raw.fills["PRONOUN"] for raw in sample(puzzle)}
    assert genders == {"she", "he"}


def test_answer_ids_come_from_the_clean_prompt_also_for_its_twin(tmp_path, gpt2_tok) -> None:
    puzzle, _, _ = puzzle_from(tmp_path, BASE)
    ps = puzzle.build_prompts(gpt2_tok)
    she, he = encode(gpt2_tok, " she"), encode(gpt2_tok, " he")
    assert len(she) == len(he) == 1
    flipped = 0
    by_name = {r[0]: r[1] for r in word_tables()["gendered_names"]}
    for i, fills in enumerate(ps.fills):
        right, other = (she, he) if fills["PRONOUN"] == "she" else (he, she)
        assert ps.correct[i] == right and ps.wrong[i] == other
        twin_name = ps.corrupted[i].split()[1]
        flipped += by_name[twin_name] != fills["PRONOUN"]
    assert flipped > 0  # some twins hold a name of the other gender, yet keep the clean ids


def test_corruption_redraws_the_whole_row(tmp_path) -> None:
    data = with_changes(prompts__templates=["So {NAME} said {PRONOUN} is a great friend",
                                            "So {NAME} said {PRONOUN} is a good cook"],
                        metric={"logit_diff": {"correct": " {OTHER}", "wrong": " {PRONOUN}"},
                                "at": "END"})
    puzzle, doc, problems = puzzle_from(tmp_path, data)
    assert problems == [] and check_puzzle(puzzle, doc) == []
    rows = {r[0]: r[1] for r in word_tables()["gendered_names"]}
    for raw in sample(puzzle):
        name, pronoun = raw.corrupted_words
        assert rows[name] == pronoun and name != raw.words[0]
    # resampling the pronoun's own placeholder redraws the row as well
    data["corrupt"] = {"resample": ["{PRONOUN}"]}
    puzzle, doc, _ = puzzle_from(tmp_path, data)
    assert check_puzzle(puzzle, doc) == []
    for raw in sample(puzzle):
        name, pronoun = raw.corrupted_words
        assert rows[name] == pronoun and name != raw.words[0]


def test_inline_rows(tmp_path, gpt2_tok) -> None:
    rows = [["Mary", "she", "he"], ["John", "he", "she"], ["Anna", "she", "he"],
            ["Tom", "he", "she"]]
    puzzle, doc, problems = puzzle_from(
        tmp_path, with_changes(prompts__fill={"NAME": {"rows": rows, "with": ["PRONOUN",
                                                                              "OTHER"]}}))
    assert problems == [] and check_puzzle(puzzle, doc) == []
    ps = puzzle.build_prompts(gpt2_tok)
    assert {f["NAME"] for f in ps.fills} <= {r[0] for r in rows}
    assert all([f["NAME"], f["PRONOUN"], f["OTHER"]] in rows for f in ps.fills)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"prompts__fill": {"NAME": {"rows": "gendred_names", "with": ["PRONOUN", "OTHER"]}}},
     "unknown table 'gendred_names' (did you mean 'gendered_names'?)"),
    ({"prompts__fill": {"NAME": {"rows": [["Mary", "she", "he"], ["John", "he"]],
                                 "with": ["PRONOUN", "OTHER"]}}},
     "takes 3 words per row (NAME and PRONOUN, OTHER), but row 2 has 2"),
    ({"prompts__fill": {"NAME": {"rows": [["Mary", "she", "he"], ["Mary", "he", "she"]],
                                 "with": ["PRONOUN", "OTHER"]}}},
     "rows must differ in their first word; 'Mary' starts more than one"),
    ({"prompts__fill": {"NAME": {"rows": "gendered_names", "with": ["NAME", "OTHER"]}}},
     "fill 'NAME' is defined twice"),
    ({"prompts__fill": {"NAME": {"rows": "gendered_names"}}}, "fill 'NAME' is missing with"),
    ({"metric": {"logit_diff": {"correct": " {PRONOUN", "wrong": " {OTHER}"}, "at": "END"}},
     "has a brace without its partner"),
])
def test_shape_errors_are_located_and_say_why(tmp_path, changes, expected) -> None:
    _, _, problems = puzzle_from(tmp_path, with_changes(**changes))
    assert expected in messages(problems), messages(problems)
    assert all(p.line > 1 for p in problems)


@pytest.mark.parametrize(("metric", "expected"), [
    ({"logit_diff": {"correct": " {PRONOUN}", "wrong": " {OTHR}"}, "at": "END"},
     "uses {OTHR}, which `fill` does not define (did you mean 'OTHER'?)"),
    ({"logit_diff": {"correct": "PRONOUN", "wrong": " {OTHER}"}, "at": "END"},
     "PRONOUN is a fill: to compare its word, write the answer text \" {PRONOUN}\""),
    ({"logit_diff": {"correct": " {PRONOUN}", "wrong": " {PRONOUN}"}, "at": "END"},
     "compares an answer with itself"),
    ({"logit_diff": {"correct": " {PRONOUN}", "wrong": "NAME"}, "at": "END"},
     "fill 'OTHER' is used by no template and no answer of the metric"),
])
def test_meaning_errors(tmp_path, metric, expected) -> None:
    puzzle, doc, problems = puzzle_from(tmp_path, with_changes(metric=metric))
    assert problems == []
    assert expected in messages(check_puzzle(puzzle, doc))


def test_validator_names_the_answer_words_that_are_not_one_token(tmp_path, gpt2_tok) -> None:
    rows = [["Mary", "she", "Zyxwvut"], ["John", "he", "she"], ["Anna", "she", "he"],
            ["Tom", "he", "she"]]
    data = with_changes(prompts__fill={"NAME": {"rows": rows, "with": ["PRONOUN", "OTHER"]}})
    puzzle, doc, _ = puzzle_from(tmp_path, data)
    assert check_puzzle(puzzle, doc) == []
    problems = check_tokens(puzzle, doc, gpt2_tok, "gpt2", puzzle.models["gpt2"])
    text = messages(problems)
    assert "metric `wrong`: an answer must be one gpt2 token; 1 are not: ' Zyxwvut'" in text
    assert "`correct`" not in text
    assert problems[0].line == doc.where(("metric", "logit_diff", "wrong"))[0]
    # the same rows with a role answer: no answer-word problem
    data["metric"] = {"logit_diff": {"correct": " {PRONOUN}", "wrong": "NAME"}, "at": "END"}
    data["prompts"]["fill"]["NAME"]["with"] = ["PRONOUN"]
    data["prompts"]["fill"]["NAME"]["rows"] = [r[:2] for r in rows]
    puzzle, doc, _ = puzzle_from(tmp_path, data)
    assert check_tokens(puzzle, doc, gpt2_tok, "gpt2", puzzle.models["gpt2"]) == []


def test_the_schema_accepts_tables_and_answer_texts(tmp_path) -> None:
    schema = json.loads((ROOT / "puzzles" / "schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(BASE))
    bad = with_changes(prompts__fill={"NAME": {"rows": "gendered_names", "width": 3}})
    assert list(validator.iter_errors(bad))


def test_the_judge_names_answer_texts_by_their_fill():
    """The judge's lines name an answer text by what fills it, never as a raw template."""
    from engine.judge.task import _task_words
    from engine.puzzle import find_puzzle
    from engine.puzzle.parts import answer_label

    assert answer_label(" {PRONOUN}") == "PRONOUN" and answer_label("IO") == "IO"
    words = _task_words(find_puzzle("pronoun-say-it"))
    assert "{" not in words and "PRONOUN" in words and "OTHER" in words
