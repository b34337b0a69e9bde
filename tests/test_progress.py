"""Saving: nothing lost, nothing crashes (issue 14).

Atomic writes survive a kill; an unreadable file is set aside with its reason; a bad entry is
kept in a set-aside copy; every field is validated; two games merge; stale temp files go;
stars are kept per model.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from game.progress import (
    MAX_BYTES,
    Progress,
    clean_stale_tmp,
    export_circuit,
    read_entry,
)

Q = {"round": "late", "asker": "A2", "card": "induction", "responder": "B"}


def save_path(home: Path) -> Path:
    path = home / "data" / "progress.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def aside(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.glob("progress.json.broken-*")
                  if not p.name.endswith(".reason"))


def test_record_keeps_best_stars_and_latest_circuit_per_model(lineup_home) -> None:
    p = Progress.load()
    p.record("induction-head", "toy", stars=3, circuit=[Q])
    p.record("induction-head", "toy", stars=1, circuit=[])
    p.record("induction-head", "gpt2", stars=1, circuit=[Q])
    again = Progress.load()
    assert again.stars("induction-head", "toy") == 3
    assert again.circuit("induction-head", "toy") == []
    assert again.stars("induction-head", "gpt2") == 1
    assert again.circuit("induction-head", "gpt2") == [Q]
    assert again.stars("induction-head", "smollm2") == 0  # toy stars never show elsewhere
    data = json.loads((lineup_home / "data" / "progress.json").read_text())
    assert data["version"] == 2 and set(data["models"]) == {"toy", "gpt2"}


def test_calls_without_a_model_use_the_default(lineup_home) -> None:
    p = Progress.load(model="gpt2")
    p.record("x", stars=2)
    assert Progress.load().stars("x", "gpt2") == 2
    assert Progress.load().stars("x", "toy") == 0


def test_version_1_is_migrated_under_the_legacy_model(lineup_home) -> None:
    path = save_path(lineup_home)
    path.write_text(json.dumps({"version": 1, "puzzles": {"a": {"stars": 2, "circuit": [Q]}}}))
    p = Progress.load(legacy_model="toy")
    assert p.stars("a", "toy") == 2 and p.circuit("a", "toy") == [Q]
    assert p.stars("a", "gpt2") == 0
    data = json.loads(path.read_text())
    assert data["version"] == 2 and data["models"]["toy"]["a"]["stars"] == 2
    assert p.problems == []


def test_version_1_stars_go_where_version_1_could_win_them(lineup_home, monkeypatch) -> None:
    import engine.models

    path = save_path(lineup_home)
    v1 = json.dumps({"version": 1, "puzzles": {"a": {"stars": 3}}})
    path.write_text(v1)
    monkeypatch.setattr(engine.models, "gpt2_cache_dir", lambda: None)
    assert Progress.load(read_only=True).stars("a", "toy") == 3
    monkeypatch.setattr(engine.models, "gpt2_cache_dir", lambda: lineup_home)
    p = Progress.load()
    assert p.stars("a", "gpt2") == 3 and p.stars("a", "toy") == 0
    assert p.stars("a", "smollm2") == 0


def test_list_command_reads_the_same_file(lineup_home) -> None:
    from game.commands.list import read_progress

    Progress.load().record("induction-head", "toy", stars=2)
    assert read_progress("toy") == {"induction-head": 2}
    assert read_progress("gpt2") == {}


@pytest.mark.parametrize("content, why", [
    (b"{ not json", "not JSON"),
    ("{\"version\": 1, \"puzzles\": {\"caf\xe9\": {}}}".encode("latin-1"), "not UTF-8"),
    (json.dumps({"version": 1, "puzzles": {}}).encode("utf-16"), "not UTF-8"),
    (bytes(range(256)) * 4, "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"", "empty"),
    (b'{"version": 1, "puzzles": []}', "no `puzzles`"),
    (b'{"version": "x", "puzzles": {}}', "unknown version"),
    (b"[]", "not a progress table"),
    (b'{"version": 2}', "no `models`"),
])
def test_an_unreadable_file_is_set_aside_with_its_reason(lineup_home, content, why) -> None:
    path = save_path(lineup_home)
    path.write_bytes(content)
    p = Progress.load()
    assert p.entries == {}
    assert p.message and "moved to progress.json.broken-" in p.message and why in p.message
    [moved] = aside(path)
    assert moved.read_bytes() == content  # nothing of it lost
    assert why in Path(f"{moved}.reason").read_text()
    assert p.record("x", "toy", stars=1)
    assert Progress.load().stars("x", "toy") == 1


def test_read_only_never_touches_a_broken_file(lineup_home) -> None:
    path = save_path(lineup_home)
    path.write_bytes(b"\xff\xfe garbage")
    p = Progress.load(read_only=True)
    assert p.message and "left as it is" in p.message
    assert path.read_bytes() == b"\xff\xfe garbage" and aside(path) == []
    assert p.record("x", "toy", stars=1) is False and path.read_bytes() == b"\xff\xfe garbage"


def test_a_huge_file_is_set_aside_without_reading_it_all(lineup_home) -> None:
    path = save_path(lineup_home)
    with open(path, "wb") as handle:
        handle.truncate(MAX_BYTES + 10)
    p = Progress.load()
    assert p.message and "larger than" in p.message
    assert len(aside(path)) == 1


def test_a_fifo_or_folder_in_its_place_never_hangs(lineup_home) -> None:
    path = save_path(lineup_home)
    os.mkfifo(path)
    p = Progress.load(read_only=True)  # would block forever if it opened the FIFO
    assert p.message and "named pipe" in p.message
    p = Progress.load()
    assert p.message and "named pipe" in p.message and len(aside(path)) == 1
    assert p.record("a", "toy", stars=1) and Progress.load().stars("a", "toy") == 1
    path.unlink()
    path.mkdir()
    p = Progress.load()
    assert p.message and "a folder" in p.message and len(aside(path)) == 2
    assert p.record("a", "toy", stars=2) and Progress.load().stars("a", "toy") == 2


BROKEN_ENTRIES = {
    "no-card": {"stars": 1, "circuit": [{"round": "late", "asker": "A2", "responder": "B"}]},
    "extra": {"stars": 2, "circuit": [{**Q, "foo": "bar"}], "note": "hi"},
    "markup": {"stars": 1, "circuit": [{"round": "[/]", "asker": "[b]", "card": "[/b]"}]},
    "bad-stars": {"stars": "x", "circuit": [Q]},
    "bool-stars": {"stars": True},
    "float-stars": {"stars": 2.5},
    "many-stars": {"stars": 99},
    "bad-circuit": {"stars": 1, "circuit": ["nope", 3, None]},
    "circuit-dict": {"stars": 1, "circuit": {"round": "late"}},
    "number-fields": {"circuit": [{"round": 1, "asker": ["x"], "card": {}, "responder": 2}]},
    "alias": {"stars": 1, "circuit": [{"round": "late", "asker": "A2", "question": "copy"}]},
    "not-an-object": 3,
    "null": None,
    "": {"stars": 1},
}


def test_every_broken_entry_shape_opens_and_is_kept_aside(lineup_home) -> None:
    path = save_path(lineup_home)
    raw = {"version": 1, "puzzles": {"good": {"stars": 2, "circuit": [Q]}, **BROKEN_ENTRIES}}
    text = json.dumps(raw)
    path.write_text(text)
    p = Progress.load()
    assert p.stars("good", "toy") == 2 and p.circuit("good", "toy") == [Q]
    assert p.circuit("no-card", "toy") == [] and p.stars("no-card", "toy") == 1
    assert p.circuit("extra", "toy") == [Q]  # unknown fields dropped, the rest kept
    assert p.circuit("markup", "toy") == [{"round": "[/]", "asker": "[b]", "card": "[/b]"}]
    assert p.stars("bad-stars", "toy") == 0 and p.circuit("bad-stars", "toy") == [Q]
    assert p.stars("many-stars", "toy") == 3
    assert p.circuit("alias", "toy") == [{"round": "late", "asker": "A2", "card": "copy"}]
    for table in p.entries.values():  # every field is what the screens expect
        for entry in table.values():
            assert isinstance(entry.stars, int) and 0 <= entry.stars <= 3
            for q in entry.circuit:
                assert set(q) <= {"round", "asker", "card", "responder"}
                assert {"round", "asker", "card"} <= set(q)
                assert all(isinstance(v, str) for v in q.values())
    assert p.message and "could not be used" in p.message and "copy" in p.message
    [copy] = aside(path)
    assert copy.read_text() == text  # every entry left out or cleaned is still there
    assert "no-card" in Path(f"{copy}.reason").read_text()
    # the cleaned file was saved once; reading again finds nothing more to set aside
    again = Progress.load()
    assert again.problems == [] and len(aside(path)) == 1
    assert again.stars("good", "toy") == 2


def test_read_entry_never_raises_on_any_json_value() -> None:
    for raw in [None, 1, "x", [], {}, {"stars": None}, {"circuit": None},
                {"circuit": [{}]}, {"saved": "now"}, {"saved": float("nan")}]:
        entry, _notes = read_entry(raw)
        assert entry is None or isinstance(entry.stars, int)


def test_a_newer_save_file_is_read_but_never_written_over(lineup_home) -> None:
    path = save_path(lineup_home)
    text = json.dumps({"version": 9, "models": {"toy": {"a": {"stars": 3}}}, "more": {}})
    path.write_text(text, encoding="utf-8")
    p = Progress.load()
    assert p.message and "newer Lineup" in p.message
    assert p.stars("a", "toy") == 3
    assert p.record("b", "toy", stars=1, circuit=[]) is False
    assert p.stars("b", "toy") == 1  # kept for this session
    assert path.read_text() == text and aside(path) == []


def test_a_file_that_cannot_be_opened_is_kept(lineup_home, monkeypatch) -> None:
    import game.progress as progress

    path = save_path(lineup_home)
    text = json.dumps({"version": 2, "models": {"toy": {"a": {"stars": 3}}}})
    path.write_text(text, encoding="utf-8")
    real = progress.read_regular

    def denied(where, limit):
        if Path(where) == path:
            raise PermissionError(13, "Permission denied")
        return real(where, limit)

    with monkeypatch.context() as patched:
        patched.setattr(progress, "read_regular", denied)
        p = Progress.load()
    assert p.message and "Permission denied" in p.message and "left as it is" in p.message
    assert p.record("a", "toy", stars=1, circuit=[]) is False
    assert path.read_text() == text and aside(path) == []
    assert Progress.load().stars("a", "toy") == 3


def test_a_save_that_cannot_be_written_is_a_message(lineup_home, monkeypatch) -> None:
    import game.progress as progress

    p = Progress.load()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(progress, "atomic_write", full)
    assert p.record("a", "toy", stars=2) is False
    assert p.message and "No space left" in p.message and p.stars("a", "toy") == 2


def test_two_games_on_one_home_keep_both_players_stars(lineup_home) -> None:
    first, second = Progress.load(), Progress.load()  # both started before either saved
    first.record("a", "toy", stars=3, circuit=[Q])
    second.record("b", "toy", stars=2)
    second.record("a", "toy", stars=1)
    final = Progress.load()
    assert final.stars("a", "toy") == 3 and final.stars("b", "toy") == 2
    assert final.circuit("a", "toy") == [Q]
    newer = dict(Q, responder="A")
    second.record("a", "toy", circuit=[newer])  # the newest circuit wins, stars stay the best
    first.record("b", "toy", stars=1)
    final = Progress.load()
    assert final.circuit("a", "toy") == [newer] and final.stars("a", "toy") == 3
    assert final.stars("b", "toy") == 2


HOLDER = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def test_a_save_waits_for_the_other_writer_then_merges(lineup_home, monkeypatch) -> None:
    import game.progress as progress

    path = save_path(lineup_home)
    p = Progress.load()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, f"{path}.lock", "60"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        monkeypatch.setattr(progress, "LOCK_WAIT_S", 0.2)
        assert p.record("a", "toy", stars=2) is False  # refused while the other one holds it
        assert p.message and "Another Lineup" in p.message
    finally:
        proc.kill()
        proc.wait()
    assert p.record("a", "toy", stars=2) is True  # the lock died with its owner
    assert Progress.load().stars("a", "toy") == 2


def test_stale_temp_files_are_cleaned(lineup_home) -> None:
    path = save_path(lineup_home)
    folder = path.parent
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    old = folder / ".progress.json.abcdefgh.tmp"  # the old naming, no pid
    orphan = folder / f".progress.json.{dead}.xyz.tmp"
    fresh = folder / f".progress.json.{os.getpid()}.live.tmp"
    other = folder / ".notes.txt.tmp"
    for f in (old, orphan, fresh, other):
        f.write_text("{")
    past = time.time() - 3600
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    Progress.load()
    assert not old.exists() and not orphan.exists()
    assert fresh.exists() and other.exists()
    assert clean_stale_tmp(folder, now=time.time() + 3600) == 1 and not fresh.exists()


def test_export_writes_a_circuit_lineup_check_reads(tmp_path) -> None:
    from engine.puzzle import load_circuit

    out = export_circuit("induction-head", [Q], tmp_path / "c.yaml", model="toy")
    circuit = load_circuit(out)
    assert circuit.puzzle == "induction-head"
    assert [x.as_dict() for x in circuit.questions] == [Q]


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from game.progress import Progress
    path = Path(sys.argv[1])
    p = Progress.load(path)
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        p.record(f"p{n % 300}", "toy", stars=n % 4, circuit=[])
""")


def test_kill_during_save_leaves_the_previous_save_readable(tmp_path) -> None:
    path = tmp_path / "progress.json"
    first = Progress.load(path)
    first.record("kept", "toy", stars=3)
    rng = random.Random(7)
    root = Path(__file__).resolve().parents[1]
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=root,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        again = Progress.load(path)  # whole: either the old save or a new one
        assert again.problems == [], again.problems
        assert again.stars("kept", "toy") == 3  # merged, never overwritten
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # cleaned at load


def test_a_file_broken_by_someone_else_meanwhile_is_set_aside_at_save(lineup_home) -> None:
    path = save_path(lineup_home)
    p = Progress.load()
    p.record("a", "toy", stars=2)
    path.write_bytes(b"\x00\x01 not a save")  # another program wrote over it
    assert p.record("b", "toy", stars=1)
    [moved] = aside(path)
    assert moved.read_bytes() == b"\x00\x01 not a save"
    assert "saved in a new file" in (p.message or "")
    again = Progress.load()
    assert again.stars("a", "toy") == 2 and again.stars("b", "toy") == 1
