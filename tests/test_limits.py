"""One limit for every id and name (engine.limits), and the smaller items of issue 23: a
201-character id is refused by the validator (it validated, then its stars were dropped by the
save file), a 5,000-character id never reaches the file system, a text the screen cannot show
is refused with its length, the save lock never follows a symlink, toy fill words outside the
toy's vocabulary are named."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from engine.limits import MAX_HINT, MAX_LABEL, MAX_NAME, MAX_TITLE, circuit_file_name

ROOT = Path(__file__).resolve().parents[1]
SOURCE = (ROOT / "puzzles" / "induction" / "01-previous-token.yaml").read_text()


def an_id(n: int) -> str:
    return "a" * (n - 2) + "-b"


def puzzle_file(folder: Path, *, pid: str | None = None, title: str | None = None,
                text: str = SOURCE, name: str = "p.yaml") -> Path:
    if pid is not None:
        text = re.sub(r"(?m)^id: .*$", f"id: {pid}", text)
    if title is not None:
        text = re.sub(r"(?m)^title: .*$", f"title: {title}", text)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def validate(capsys, *args: str) -> tuple[int, str]:
    from game.cli import main

    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out + err


# --------------------------------------------------------------------------- ids


def test_a_201_character_id_is_refused_with_the_number(tmp_path, capsys) -> None:
    code, text = validate(capsys, str(puzzle_file(tmp_path, pid=an_id(MAX_NAME + 1))))
    assert code == 1 and f"`id` is {MAX_NAME + 1} characters; the limit is {MAX_NAME}" in text


def test_an_id_that_validates_keeps_its_stars(tmp_path, capsys, lineup_home) -> None:
    """The longest id the validator accepts is one the save file keeps."""
    from engine.pack import load_pack
    from game.progress import Progress

    pid = an_id(MAX_NAME)
    path = puzzle_file(tmp_path / "pack", pid=pid)
    code, text = validate(capsys, str(path))
    assert code == 0, text
    _, puzzles = load_pack(tmp_path / "pack")
    assert [p.id for p in puzzles] == [pid]
    assert Progress.load().record(pid, "toy", stars=3) is not False
    again = Progress.load()
    assert again.stars(pid, "toy") == 3 and not again.problems


def test_a_pack_skips_a_puzzle_whose_id_is_too_long(tmp_path) -> None:
    from engine.pack import load_pack

    puzzle_file(tmp_path / "pack", pid=an_id(MAX_NAME + 1))
    puzzle_file(tmp_path / "pack", name="fine.yaml")
    (tmp_path / "pack" / "pack.yaml").write_text(f"order: [{an_id(5000)}]\n")
    pack, puzzles = load_pack(tmp_path / "pack")
    assert [p.id for p in puzzles] == ["induction-previous-token"]
    assert any(f"is {MAX_NAME + 1} characters" in p for p in pack.problems)
    assert any("`order` entry 1 is 5,000 characters" in p for p in pack.problems)


@pytest.fixture
def no_long_names(monkeypatch):
    """Fail any file-system call handed a name longer than a file name can be."""
    import builtins

    def guard(real):
        def call(path, *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)) and any(
                    len(part) > 255 for part in os.fsdecode(path).split(os.sep)):
                raise AssertionError(f"a {len(os.fsdecode(path))}-character name reached "
                                     f"the file system ({real.__name__})")
            return real(path, *args, **kwargs)
        return call

    for module, name in ((os, "stat"), (os, "lstat"), (os, "open"), (builtins, "open")):
        monkeypatch.setattr(module, name, guard(getattr(module, name)))


def test_a_5000_character_id_never_reaches_the_file_system(no_long_names, tmp_path, capsys,
                                                          lineup_home) -> None:
    from game.cli import main
    from game.commands.play import _circuit_or_puzzle

    circuit = tmp_path / "c.yaml"
    circuit.write_text("puzzle: x\nquestions: []\n")
    for command in (["check", an_id(5000), str(circuit)], ["patch", an_id(5000)],
                    ["grade", an_id(5000), str(tmp_path)]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert "no puzzle has that id: it is 5,000 characters; the limit is 200" in err, err
        assert err.count("\n") == 1
    assert _circuit_or_puzzle(an_id(5000)) == (None, an_id(5000))


def test_the_file_named_after_the_longest_id_can_be_written(tmp_path) -> None:
    """`s` in the game offers ID.yaml; its temporary twin is longer still."""
    from game.progress import export_circuit

    name = circuit_file_name(an_id(MAX_NAME))
    written = export_circuit(an_id(MAX_NAME), [], tmp_path / name)
    assert written.is_file() and "puzzle:" in written.read_text()
    with pytest.raises(ValueError, match="201 characters"):
        circuit_file_name(an_id(MAX_NAME + 1))


def test_the_save_file_and_the_reader_use_one_limit() -> None:
    from game import progress

    assert progress._text("x" * MAX_NAME) and progress._text("x" * (MAX_NAME + 1)) is None


# --------------------------------------------------------------------------- shown texts


def test_a_title_the_screen_cannot_show_is_refused_with_the_number(tmp_path, capsys) -> None:
    code, text = validate(capsys, str(puzzle_file(tmp_path, title="x" * 200_000)))
    assert code == 1 and f"`title` is 200,000 characters; the limit is {MAX_TITLE}" in text
    code, text = validate(capsys, str(puzzle_file(tmp_path, title="x" * MAX_TITLE)))
    assert code == 0, text


def test_long_role_round_and_hint_texts_are_refused_with_the_number(tmp_path, capsys) -> None:
    long_role = "R" * (MAX_LABEL + 1)
    text = SOURCE.replace("  A: first {A}", f"  {long_role}: first {{A}}")
    text = text.replace("rounds: {early: [0, 0]}", f"rounds: {{{'e' * (MAX_LABEL + 1)}: [0, 0]}}")
    text = re.sub(r"(?m)^hints:\n  - .*$", f"hints:\n  - {'Uvag ' * 100}", text)
    code, out = validate(capsys, str(puzzle_file(tmp_path, text=text)))
    assert code == 1
    limit = f"is {MAX_LABEL + 1} characters; the limit is {MAX_LABEL}"
    assert f"role name {long_role!r} {limit}" in out
    assert f"round name {'e' * (MAX_LABEL + 1)!r} {limit}" in out
    assert f"hint 1 is 499 characters; the limit is {MAX_HINT}" in out


def test_a_pack_title_the_menu_cannot_show_is_a_problem(tmp_path) -> None:
    from engine.pack import load_pack

    puzzle_file(tmp_path / "pack")
    (tmp_path / "pack" / "pack.yaml").write_text(f"title: {'T' * 1000}\n")
    pack, puzzles = load_pack(tmp_path / "pack")
    assert pack.title == "pack" and len(puzzles) == 1
    assert any("`title` is 1,000 characters; the limit is 80" in p for p in pack.problems)


# --------------------------------------------------------------------------- smaller items


def test_the_save_lock_never_follows_a_symlink(lineup_home, tmp_path) -> None:
    from game.progress import Progress, progress_path

    elsewhere = tmp_path / "elsewhere.txt"
    lock = progress_path().with_name(progress_path().name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.symlink_to(elsewhere)
    assert Progress.load().record("induction-head", "toy", stars=2) is not False
    assert not elsewhere.exists()  # O_CREAT through the link would have made it
    assert Progress.load().stars("induction-head", "toy") == 2
    elsewhere.write_text("mine")
    assert Progress.load().record("induction-head", "toy", stars=3) is not False
    assert elsewhere.read_text() == "mine" and lock.is_symlink()


def test_the_conversion_lock_never_follows_a_symlink(tmp_path) -> None:
    from engine import smollm2
    from engine.errors import ModelError

    elsewhere = tmp_path / "elsewhere.txt"
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / ".smollm2-135m.lock").symlink_to(elsewhere)
    with pytest.raises(ModelError, match="lock file"):
        smollm2.ensure_smollm2(target=tmp_path / "models" / "smollm2-135m",
                               pip=lambda dest: ["false"])
    assert not elsewhere.exists()


def test_toy_fill_words_outside_its_vocabulary_are_named(tmp_path, capsys) -> None:
    words = "[zebra, quokka, axolotl, wombat, narwhal, okapi, tapir, dingo]"
    text = SOURCE.replace("A: nouns, B: nouns}", f"A: {words}, B: nouns}}")
    assert text != SOURCE
    code, out = validate(capsys, str(puzzle_file(tmp_path, text=text)), "--model", "toy")
    assert code == 1
    assert ("fill 'A' (inline): 8 word(s) are not in the toy vocabulary (each would read as "
            "[UNK]): 'zebra', 'quokka'") in out
    assert "does not do the task" not in out


def test_schema_json_states_the_same_limits() -> None:
    import json

    schema = json.loads((ROOT / "puzzles" / "schema.json").read_text())
    top = schema["properties"]
    assert top["id"]["maxLength"] == MAX_NAME and top["title"]["maxLength"] == MAX_TITLE
    assert top["hints"]["items"]["maxLength"] == MAX_HINT
    assert top["roles"]["propertyNames"]["maxLength"] == MAX_LABEL
    rounds = schema["$defs"]["block"]["properties"]["rounds"]
    assert rounds["propertyNames"]["maxLength"] == MAX_LABEL
