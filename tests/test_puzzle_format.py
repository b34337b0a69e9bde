"""The puzzle and circuit formats: safe reading, selectors, meaning checks, schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from engine.errors import UsageError
from engine.puzzle import (
    CARDS,
    Circuit,
    PuzzleError,
    Question,
    RoleSpec,
    check_circuit,
    find_puzzle,
    load_circuit,
    load_puzzle,
    puzzle_files,
    read_yaml,
)
from engine.puzzle.checks import looks_plain
from engine.puzzle.selectors import parse_selector
from engine.puzzle.shape import (
    BLOCK_KEYS,
    CORRUPT_KEYS,
    PASS_KEYS,
    PROMPTS_KEYS,
    PUZZLE_KEYS,
    QUESTION_KEYS,
)
from engine.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "puzzles" / "ioi" / "04-whole-circuit.yaml"


def problems_for(tmp_path: Path, text: str | bytes, name: str = "p.yaml") -> list[str]:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return [str(p) for p in validate_paths([path])]


def edited(old: str, new: str, source: Path = SHIPPED) -> str:
    text = source.read_text()
    assert old in text, old
    return text.replace(old, new)


# --------------------------------------------------------------------------- safe reading


def test_aliases_are_refused_so_bombs_cannot_expand(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"b{k}: &b{k} [{', '.join(['*a' if k == 0 else f'*b{k - 1}'] * 9)}]\n" for k in range(12))
    out = problems_for(tmp_path, bomb)
    assert len(out) == 1 and "aliases (*a) are not allowed" in out[0] and ":2:" in out[0]


def test_duplicate_keys_are_reported_with_both_lines(tmp_path: Path) -> None:
    out = problems_for(tmp_path, edited("title: The whole line\n",
                                        "title: The whole line\ntitle: Again\n"))
    assert out == [f"{tmp_path / 'p.yaml'}:4:1: duplicate key 'title' (first given on line 3)"]


@pytest.mark.parametrize("text, expected", [
    (b"", "the file is empty"),
    (b"- a\n- b\n", "a puzzle file must be a mapping"),
    (b"id: [unclosed\n", "not valid YAML"),
    (b"id: x\n---\nid: y\n", "not valid YAML"),
    (b"id: \xff\xfe\n", "not UTF-8 text (byte 0xff)"),
    (b"id: ok\x00\n", "character U+0000 is not allowed"),
    (b"id: !!python/object/apply:os.system [ls]\n", "tag 'tag:yaml.org,2002:python/object"),
    (b"x: " + b"[" * 100 + b"]" * 100, "nesting is deeper than 24 levels"),
    (b"x: " + b"[" * 100_000, "not valid YAML"),
    (b"a: 1\n" * 60_000, "file is larger than 256 KiB"),
    (b"order: 1" + b"0" * 5000 + b"\n", "cannot read the value"),
    (b"? [a]\n: b\n", "keys must be plain words"),
])
def test_bad_files_give_located_problems(tmp_path: Path, text: bytes, expected: str) -> None:
    out = problems_for(tmp_path, text)
    assert out and any(expected in line for line in out), out
    assert all(line.startswith(str(tmp_path / "p.yaml") + ":") for line in out)


def test_marks_point_at_keys_and_values() -> None:
    doc = read_yaml(SHIPPED)
    assert doc.where(("ladder",)) == (4, 9)
    assert doc.where(("ladder",), key=True) == (4, 1)
    assert doc.where(("models", "gpt2", "solution", 0, "asker"))[0] > 40


# --------------------------------------------------------------------------- selectors, roles


def test_selectors() -> None:
    assert parse_selector("last") == RoleSpec("last", "last")
    assert parse_selector("second {S}") == RoleSpec("second {S}", "occurrence", fill="S", nth=2)
    assert parse_selector("{IO}").nth == 0
    after = parse_selector("after first {S}")
    assert after.kind == "after" and after.of.fill == "S"
    assert parse_selector("before S2").of == "S2"
    assert parse_selector("position -2").index == -2
    assert "did you mean 'second'" in parse_selector("secnd {S}")
    assert "not a selector" in parse_selector("somewhere")


def test_role_mistakes(tmp_path: Path) -> None:
    out = problems_for(tmp_path, edited("  S1+1: after S1\n", "  S1+1: after S9\n"))
    assert any("no role called 'S9'" in p for p in out)
    out = problems_for(tmp_path, edited("  IO: \"{IO}\"\n", "  IO: after END\n  X: \"{S}\"\n"))
    assert any("falls outside the prompt" in p or "appears more than once" in p for p in out)
    looped = edited("  S1+1: after S1\n", "  S1+1: after S2b\n  S2b: before S1+1\n")
    out = problems_for(tmp_path, looped)
    assert any("loop" in p for p in out)


def test_templates_must_line_up(tmp_path: Path) -> None:
    out = problems_for(tmp_path, edited(
        '    - "When {S} and {IO} went to the {PLACE}, {S} gave a {OBJECT} to"\n',
        '    - "When {S} and {IO} went over to the {PLACE}, {S} gave a {OBJECT} to"\n'))
    assert any("templates give different numbers of gpt2 tokens" in p for p in out)
    misspelt = edited("went to the {PLACE}, {S} gave", "went to the {PLCE}, {S} gave")
    out = problems_for(tmp_path, misspelt)
    assert any("{PLCE}, which `fill` does not define (did you mean 'PLACE'?)" in p for p in out)


def test_words_must_be_single_tokens(tmp_path: Path) -> None:
    inline = edited("fill: {IO: names,", "fill: {IO: [John, Johnathan, Mary, Bob, Tom],")
    out = problems_for(tmp_path, inline)
    assert any("1 word(s) are not one gpt2 token" in p and "'Johnathan'" in p for p in out), out


def test_responder_must_stand_behind_the_asker(tmp_path: Path) -> None:
    out = problems_for(tmp_path, edited(
        "      - {round: early, asker: S2, card: duplicate-token, responder: S1}\n",
        "      - {round: early, asker: S1, card: duplicate-token, responder: S2}\n"))
    assert any("S2 stands in front of S1" in p for p in out), out


def test_rounds_cards_and_hints(tmp_path: Path) -> None:
    out = problems_for(tmp_path, edited("late: [9, 11]}", "late: [8, 11]}"))
    assert any("inside or before round 'late-middle'" in p for p in out)
    out = problems_for(tmp_path, edited("cards: [previous-token,", "cards: [previus-token,"))
    assert any("did you mean 'previous-token'" in p for p in out)
    lines = SHIPPED.read_text().splitlines(keepends=True)
    first_hint = lines.index("hints:\n") + 1
    lines[first_hint] = '  - "Start at END: which name does it say, and who tells it that?"\n'
    out = problems_for(tmp_path, "".join(lines))
    assert any("reads as plain English" in p for p in out)
    assert looks_plain("Who tells END the names?")
    assert not looks_plain("Jub gryyf RAQ gur anzrf?")


# --------------------------------------------------------------------------- loading


def test_load_puzzle_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(edited("ladder: ioi", "ladder: iot").replace("order: 4", "order: zero"))
    with pytest.raises(PuzzleError) as err:
        load_puzzle(path)
    assert len(err.value.problems) == 2
    assert "did you mean 'ioi'" in str(err.value) and "1 more problem" in str(err.value)


def test_find_puzzle_by_id_and_path() -> None:
    assert find_puzzle("ioi-s-inhibition").title == "Don't say John"
    assert find_puzzle(str(SHIPPED)).id == "ioi-whole-circuit"
    with pytest.raises(UsageError, match="did you mean 'ioi-name-mover'"):
        find_puzzle("ioi-name-mvoer")
    with pytest.raises(UsageError, match="does not exist"):
        find_puzzle("nowhere/puzzle.yaml")


def test_cards_have_plain_and_technical_names() -> None:
    for card in CARDS.values():
        assert card.plain and card.technical and card.does
    assert not CARDS["think"].responder


# --------------------------------------------------------------------------- circuits


def test_circuit_round_trip_and_checks(tmp_path: Path) -> None:
    puzzle = find_puzzle("ioi-whole-circuit")
    circuit = Circuit(puzzle.id, [Question("late", "END", "name-mover", "IO"),
                                  Question("late-middle", "END", "s-inhibition", "S2")], "gpt2")
    path = tmp_path / "c.yaml"
    path.write_text(circuit.to_yaml())
    again = load_circuit(path)
    assert again.questions == circuit.questions and again.model == "gpt2"
    assert check_circuit(again, puzzle, "gpt2") == []
    # `question:` is accepted for `card:`, `inhibition` for `s-inhibition`
    path.write_text("puzzle: ioi-whole-circuit\nquestions:\n"
                    "  - {round: late, asker: END, question: inhibition, responder: S2}\n")
    assert load_circuit(path).questions[0].card == "s-inhibition"
    path.write_text("puzzle: ioi-whole-circuit\nquestions:\n"
                    "  - {round: lately, asker: END, card: name-mover, responder: S7}\n"
                    "  - {round: late, asker: END, card: think, responder: IO}\n")
    problems = [p.message for p in check_circuit(load_circuit(path), puzzle, "gpt2",
                                                 read_yaml(path))]
    assert any("did you mean 'late'" in m for m in problems)
    assert any("no role called 'S7'" in m for m in problems)
    assert any("not offered" in m for m in problems)
    assert check_circuit(load_circuit(path), find_puzzle("beyond-greater-than"), "toy")
    path.write_text("puzzle: [1]\n")
    with pytest.raises(PuzzleError):
        load_circuit(path)


def test_circuit_responder_order_with_a_tokenizer() -> None:
    from engine.models import load_tokenizer

    puzzle = find_puzzle("ioi-whole-circuit")
    backwards = Circuit(puzzle.id, [Question("late", "S1", "name-mover", "END")])
    problems = check_circuit(backwards, puzzle, "gpt2", tokenizer=load_tokenizer("gpt2"))
    assert any("END stands in front of S1" in p.message for p in problems)


# --------------------------------------------------------------------------- schema.json


def test_schema_json_matches_the_parser_and_the_shipped_puzzles() -> None:
    schema = json.loads((ROOT / "puzzles" / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == set(PUZZLE_KEYS)
    assert set(schema["properties"]["prompts"]["properties"]) == set(PROMPTS_KEYS)
    assert set(schema["properties"]["corrupt"]["properties"]) == set(CORRUPT_KEYS)
    assert set(schema["$defs"]["block"]["properties"]) == set(BLOCK_KEYS)
    assert set(schema["$defs"]["block"]["properties"]["pass"]["properties"]) == set(PASS_KEYS)
    assert set(schema["$defs"]["question"]["properties"]) == {*QUESTION_KEYS, "question"}
    validator = jsonschema.Draft202012Validator(schema)
    for path in puzzle_files():
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path}: {errors[0].message}"
