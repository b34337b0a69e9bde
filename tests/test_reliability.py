"""Issue 14, outside the screens: packs, the run cache, CLI errors, pipes, crashes, TTYs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.pack import load_pack, read_pack

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "puzzles"
PREV = SHIPPED / "induction" / "01-previous-token.yaml"
IND = SHIPPED / "induction" / "02-induction.yaml"


def lineup(*args: str, timeout: float = 300, stdin=None, cwd=None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "game", *args], capture_output=True,
                          text=True, timeout=timeout, env=full, stdin=stdin,
                          cwd=cwd or ROOT)


def make_pack(tmp_path: Path, meta: str | None = None, files: tuple[Path, ...] = (PREV, IND)
              ) -> Path:
    folder = tmp_path / "pack"
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    if meta is not None:
        (folder / "pack.yaml").write_text(meta, encoding="utf-8")
    return folder


# --------------------------------------------------------------------------- packs


def test_a_good_pack_reads_in_its_order(tmp_path) -> None:
    folder = make_pack(tmp_path, "title: Week 3\norder: [induction-head, "
                                 "induction-previous-token]\nseed: 7\nhints: false\n"
                                 "solutions_hidden: true\n")
    pack, puzzles, problems = read_pack(folder)
    assert problems == [] and pack.problems == []
    assert [p.id for p in puzzles] == ["induction-head", "induction-previous-token"]
    assert (pack.title, pack.hints, pack.solutions, pack.seed) == ("Week 3", False, False, 7)
    assert all(p.prompts.seed == 7 and p.prompts.heldout_seed == 8 for p in puzzles)


@pytest.mark.parametrize("value, read_as", [('"false"', False), ("'no'", False),
                                            ('"true"', True), ("maybe", False), ("0.5", False),
                                            ("[1]", False)])
def test_quoted_booleans_are_never_read_as_true_by_accident(tmp_path, value, read_as) -> None:
    folder = make_pack(tmp_path, f"hints: {value}\nsolutions: {value}\n")
    pack, puzzles, problems = read_pack(folder)
    assert pack.hints is read_as and pack.solutions is read_as
    assert len(puzzles) == 2
    assert problems and all(p.path.endswith("pack.yaml") for p in problems)
    assert {p.line for p in problems} == {1, 2} and all(p.col > 1 for p in problems)


def test_two_files_with_one_id_is_a_located_problem(tmp_path) -> None:
    folder = make_pack(tmp_path)
    shutil.copy(PREV, folder / "zz-copy.yaml")
    pack, puzzles, problems = read_pack(folder)
    assert [p.id for p in puzzles].count("induction-previous-token") == 1
    [dup] = problems
    assert dup.path.endswith("zz-copy.yaml") and dup.line == 2 and "already used" in dup.message
    assert str(dup) in pack.problems


def test_a_broken_pack_says_what_is_wrong(tmp_path) -> None:
    from engine.errors import UsageError

    folder = tmp_path / "pack"
    folder.mkdir()
    (folder / "a.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    (folder / "b.yaml").write_text("id: x\ntitle: [/b]\n", encoding="utf-8")
    os.mkfifo(folder / "pipe.yaml")
    (folder / "dir.yaml").mkdir()
    (folder / "gone.yaml").symlink_to(folder / "nowhere.yaml")
    (folder / "pack.yaml").write_text("hints: yes please\norder: [nope]\ncolour: red\n")
    pack, puzzles, _problems = read_pack(folder)  # would hang on the FIFO if it opened it
    assert puzzles == []
    text = "\n".join(pack.problems)
    for needle in ("a.yaml:", "b.yaml:", "pipe.yaml:1:1: not a puzzle file: it is a named pipe",
                   "dir.yaml:1:1: not a puzzle file: it is a folder",
                   "gone.yaml:1:1: a link to a file that does not exist",
                   "pack.yaml:1:", "'nope'", "unknown setting 'colour'"):
        assert needle in text, needle
    with pytest.raises(UsageError) as err:
        load_pack(folder)
    assert "has no puzzles that load: " in str(err.value) and ".yaml:" in str(err.value)


def test_a_missing_pack_folder_is_a_usage_error(tmp_path) -> None:
    from engine.errors import UsageError

    with pytest.raises(UsageError):
        read_pack(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError):
        read_pack(tmp_path / "file")


def test_a_fifo_pack_yaml_never_hangs(tmp_path) -> None:
    folder = make_pack(tmp_path)
    os.mkfifo(folder / "pack.yaml")
    _pack, puzzles, problems = read_pack(folder)
    assert len(puzzles) == 2 and "named pipe" in problems[0].message
