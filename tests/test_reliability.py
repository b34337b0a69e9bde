"""Issue 14, outside the screens: packs, the run cache, CLI errors, pipes, crashes, TTYs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.pack import load_pack, read_pack
from tests.cli import lineup

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "puzzles"
PREV = SHIPPED / "induction" / "01-previous-token.yaml"
IND = SHIPPED / "induction" / "02-induction.yaml"



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


@pytest.mark.parametrize("value", ["0", "maybe", "[]", '"perhaps"'])
def test_a_junk_solutions_hidden_hides_the_solutions(tmp_path, value) -> None:
    pack, _, problems = read_pack(make_pack(tmp_path, f"solutions_hidden: {value}\n"))
    assert pack.solutions is False and problems[0].line == 1


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


def test_a_pack_yaml_that_does_not_read_hides_hints_and_solutions(tmp_path) -> None:
    folder = make_pack(tmp_path, "hints: true\ntitle: [unclosed\n")
    pack, puzzles, problems = read_pack(folder)
    assert len(puzzles) == 2 and problems
    assert pack.hints is False and pack.solutions is False


def test_a_fifo_pack_yaml_never_hangs(tmp_path) -> None:
    folder = make_pack(tmp_path)
    os.mkfifo(folder / "pack.yaml")
    _pack, puzzles, problems = read_pack(folder)
    assert len(puzzles) == 2 and "named pipe" in problems[0].message


# --------------------------------------------------------------------------- the run cache


def sample_entry():
    import torch

    return {"att": torch.rand(2, 3, 4, 4), "clean": torch.randn(8), "build": "abc",
            "effects": {"x": 0.5, "y": -1.25}, "uniform": 0.25}


def test_a_cache_entry_round_trips_and_is_verified():
    from engine import cache

    data = sample_entry()
    path = cache.save("judge", "00aa", data)
    assert path is not None and path.read_bytes().startswith(cache.MAGIC)
    back = cache.load("judge", "00aa", expect={"att": (2, 3, None, None), "build": "str"})
    assert back is not None and back["build"] == "abc" and back["effects"] == data["effects"]
    assert back["att"].equal(data["att"])


def test_the_side_file_copied_over_the_runs_file_is_rebuilt():
    from engine import cache

    cache.save("judge", "00bb", sample_entry())
    cache.save("judge-effects", "00bb", {"build": "abc", "effects": {"x": 1.0}})
    shutil.copy(cache.path_for("judge-effects", "00bb"), cache.path_for("judge", "00bb"))
    corrupt = cache.STATS["corrupt"]
    assert cache.load("judge", "00bb") is None
    assert cache.STATS["corrupt"] == corrupt + 1 and "kind" in cache.LAST_REJECTED[0]
    assert not cache.path_for("judge", "00bb").exists()  # rebuilt next time, never trusted


def test_a_file_under_another_key_is_rebuilt():
    from engine import cache

    cache.save("judge", "00cc", sample_entry())
    shutil.copy(cache.path_for("judge", "00cc"), cache.path_for("judge", "00dd"))
    assert cache.load("judge", "00dd") is None and "key" in cache.LAST_REJECTED[0]


@pytest.mark.parametrize("damage", ["truncate", "flip", "header", "old-format", "empty",
                                    "garbage", "fifo", "folder"])
def test_a_damaged_cache_file_is_rebuilt(damage):
    import torch

    from engine import cache

    path = cache.save("heads", "00ee", sample_entry())
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        path.write_bytes(raw[:-10] + bytes(b ^ 0xFF for b in raw[-10:]))
    elif damage == "header":
        path.write_bytes(raw.replace(b'"version":4', b'"version":[[[', 1))
    elif damage == "old-format":
        torch.save({**sample_entry(), "__key__": "00ee"}, path)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif damage == "folder":
        path.unlink()
        path.mkdir()
    cache.forget()
    assert cache.load("heads", "00ee") is None  # never a traceback, never a hang
    assert cache.save("heads", "00ee", sample_entry()) is not None or damage == "folder"


def test_wrong_shapes_and_nan_metrics_are_not_trusted():
    import torch

    from engine import cache

    good = sample_entry()
    cache.save("judge", "0100", good)
    assert cache.load("judge", "0100", expect={"att": (2, 3, 5, 5)}) is None
    assert "shape" in cache.LAST_REJECTED[0]
    cache.save("judge", "0101", good)
    assert cache.load("judge", "0101", expect={"missing": "tensor"}) is None
    # a well-formed file whose content holds NaN: refused on load, and never written
    bad = {**good, "clean": torch.tensor([1.0, float("nan")])}
    assert cache.save("judge", "0102", bad) is None
    cache.runs_dir().mkdir(parents=True, exist_ok=True)
    cache.path_for("judge", "0102").write_bytes(cache.encode("judge", "0102", bad))
    assert cache.load("judge", "0102") is None and "NaN" in cache.LAST_REJECTED[0]
    blob = cache.encode("judge", "0103", {**good, "effects": {"x": float("nan")}})
    cache.path_for("judge", "0103").write_bytes(blob)
    assert cache.load("judge", "0103") is None


def test_a_header_that_lies_about_shapes_is_refused():
    import torch

    from engine import cache

    honest = cache.encode("judge", "0200", {"att": torch.zeros(2, 2)})
    liar = cache.encode("judge", "0200", {"att": torch.zeros(3, 3)})
    magic, header, _ = honest.split(b"\n", 2)
    payload = liar.split(b"\n", 2)[2]
    head = json.loads(header)
    import hashlib

    head.update(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    cache.runs_dir().mkdir(parents=True, exist_ok=True)
    cache.path_for("judge", "0200").write_bytes(
        magic + b"\n" + json.dumps(head).encode() + b"\n" + payload)
    assert cache.load("judge", "0200") is None and "shapes" in cache.LAST_REJECTED[0]


def test_the_memo_checks_expected_shapes_too():
    from engine import cache

    cache.save("judge", "0300", sample_entry(), memo=True)
    assert cache.load("judge", "0300", memo=True) is not None
    assert cache.load("judge", "0300", memo=True, expect={"att": (9,)}) is None


def test_stale_cache_temp_files_are_pruned():
    import time

    from engine import cache

    folder = cache.runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    old = folder / ".judge-abcdef.tmp"
    old.write_bytes(b"x")
    past = time.time() - 3600
    os.utime(old, (past, past))
    live = folder / f".judge-{os.getpid()}-live.tmp"
    live.write_bytes(b"x")
    cache.save("heads", "0400", {"x": 1.0})
    assert not old.exists() and live.exists()


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("command", ["models", "list", "heads --model toy",
                                     "lens hello --model toy"])
def test_a_closed_pipe_exits_0_without_a_traceback(command):
    """`lineup models | true`: the reader is gone before anything is written."""
    line = f"{sys.executable} -m game {command} | true"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", line], capture_output=True,
                            text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_an_unusable_device_is_one_line_and_exit_2(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is usable here")
    circuit = tmp_path / "c.yaml"
    circuit.write_text("puzzle: induction-head\nquestions: []\n")
    for args in (["heads", "--model", "toy"], ["lens", "hi", "--model", "toy"],
                 ["check", "induction-head", str(circuit), "--model", "toy"],
                 ["grade", "induction-head", str(tmp_path), "--model", "toy"],
                 ["validate", str(PREV), "--model", "toy"]):
        for device in ("cuda", "nonsense") if args[0] == "heads" else ("cuda",):
            result = lineup(*args, "--device", device)
            assert result.returncode == 2, (args, result.stderr)
            assert result.stderr.startswith("lineup: error: --device")
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_game_refuses_to_start_without_a_terminal():
    for args in ([], ["play"], ["play", "induction-head"]):
        result = lineup(*args, stdin=subprocess.DEVNULL)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("lineup: error: the game needs a terminal")
        assert result.stdout == ""


def test_an_unforeseen_crash_writes_a_log_and_says_where(lineup_home, monkeypatch, capsys):
    from game import cli
    from game.commands import list as list_command

    def broken(args):
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr(list_command, "run", broken)
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lineup: error: Lineup crashed (RuntimeError")
    [log] = (lineup_home / "data").glob("crash-*.log")
    assert str(log) in err[0]
    text = log.read_text()
    assert "Traceback" in text and "something nobody foresaw" in text and "lineup list" in text


def test_a_crashed_game_exits_non_zero_with_a_log(lineup_home, capsys):
    from game.commands.play import finish

    class Crashed:
        return_code = 1
        _exception = KeyError("card")

    class Quit:
        return_code = 0
        _exception = None

    assert finish(Crashed(), None) == 1
    assert "Lineup crashed (KeyError" in capsys.readouterr().err
    assert list((lineup_home / "data").glob("crash-*.log"))
    assert finish(Quit(), None) == 0 and finish(Quit(), 3) == 3


def test_check_shows_user_text_as_text_with_controls_visible(capsys):
    from engine.report import QuestionReport, Report
    from game.commands.check import print_report

    q = QuestionReport("late", "[b]A2", "induction\x1b[31m", "[/]", False, "wrong-round",
                       "in round [late], [/b] asks \x1b]0;pwned\x07")
    report = Report("[/b]puzzle", "toy", "toy [red]", False, 0, 1.0, 0.0, 0.1, None, 0.8,
                    [q], ["a note [/]"], {})
    print_report(report)
    out = capsys.readouterr().out
    for text in ("[/b]puzzle", "toy [red]", "[late] [b]A2: induction\\x1b[31m -> [/]",
                 "in round [late], [/b] asks \\x1b]0;pwned\\x07", "note: a note [/]"):
        assert text in out, text
    assert "\x1b" not in out


def test_grade_cells_make_controls_visible_and_defuse_formulas():
    from game.commands.grade import _cell

    assert _cell("bob\x1b[2J.yaml") == "bob\\x1b[2J.yaml"
    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell(-0.25) == "-0.25"
    assert _cell("line\nbreak") == "line\\x0abreak"


def test_errors_are_one_line_with_controls_visible(capsys):
    from game import cli

    assert cli.main(["check", "no\x1b[2Jsuch\npuzzle", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lineup: error:") and err.count("\n") == 1
    assert "\x1b" not in err and "\\x1b[2J" in err
