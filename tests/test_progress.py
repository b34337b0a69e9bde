"""Saving: atomic writes survive a kill, damaged files are set aside, never a crash."""

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

from game.progress import Progress, atomic_write, export_circuit


def test_record_keeps_best_stars_and_latest_circuit(lineup_home) -> None:
    p = Progress.load()
    q = {"round": "late", "asker": "A2", "card": "induction", "responder": "B"}
    p.record("induction-head", stars=3, circuit=[q])
    p.record("induction-head", stars=1, circuit=[])
    again = Progress.load()
    assert again.stars("induction-head") == 3
    assert again.circuit("induction-head") == []
    data = json.loads((lineup_home / "data" / "progress.json").read_text())
    assert data == {"version": 1, "puzzles": {"induction-head": {"stars": 3, "circuit": []}}}


def test_list_command_reads_the_same_file(lineup_home) -> None:
    from game.commands.list import read_progress

    Progress.load().record("induction-head", stars=2)
    assert read_progress() == {"induction-head": 2}


def test_damaged_file_is_set_aside_with_a_message(lineup_home) -> None:
    path = lineup_home / "data" / "progress.json"
    path.parent.mkdir(parents=True)
    path.write_text("{ not json", encoding="utf-8")
    p = Progress.load()
    assert p.puzzles == {}
    assert p.message and "could not be read" in p.message
    aside = list(path.parent.glob("progress.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
    p.record("x", stars=1)
    assert Progress.load().stars("x") == 1


def test_wrong_shapes_are_damaged_too(lineup_home) -> None:
    path = lineup_home / "data" / "progress.json"
    path.parent.mkdir(parents=True)
    for bad in ('{"version": 1, "puzzles": []}', '{"version": "x", "puzzles": {}}', '[]'):
        path.write_text(bad, encoding="utf-8")
        p = Progress.load()
        assert p.message and "moved to progress.json.damaged-" in p.message
        assert not path.exists()


def test_a_bad_entry_is_left_out_alone(lineup_home) -> None:
    path = lineup_home / "data" / "progress.json"
    path.parent.mkdir(parents=True)
    q = {"round": "late", "asker": "A2", "card": "induction", "responder": "B"}
    path.write_text(json.dumps({"version": 1, "puzzles": {
        "good": {"stars": 2, "circuit": [q]}, "bad-stars": {"stars": "x"},
        "bad-circuit": {"stars": 1, "circuit": ["nope"]}, "not-an-object": 3,
        "also-good": {"stars": 1}}}), encoding="utf-8")
    p = Progress.load()
    assert p.stars("good") == 2 and p.circuit("good") == [q] and p.stars("also-good") == 1
    assert set(p.puzzles) == {"good", "also-good"}
    assert p.message and "3 entries" in p.message
    assert all(name in p.message for name in ("bad-stars", "bad-circuit", "not-an-object"))
    assert not list(path.parent.glob("progress.json.damaged-*"))
    p.record("good", stars=3)
    assert set(json.loads(path.read_text())["puzzles"]) == {"good", "also-good"}
    assert Progress.load().message is None


def test_a_newer_save_file_is_read_but_never_written_over(lineup_home) -> None:
    path = lineup_home / "data" / "progress.json"
    path.parent.mkdir(parents=True)
    text = json.dumps({"version": 2, "puzzles": {"a": {"stars": 3}}, "more": {"new": "stuff"}})
    path.write_text(text, encoding="utf-8")
    p = Progress.load()
    assert p.message and "newer version of Lineup" in p.message
    assert p.stars("a") == 3
    p.record("b", stars=1, circuit=[])
    assert p.stars("b") == 1  # kept for this session
    assert path.read_text() == text
    assert not list(path.parent.glob("progress.json.damaged-*"))


def test_a_file_that_cannot_be_opened_is_kept(lineup_home, monkeypatch) -> None:
    path = lineup_home / "data" / "progress.json"
    path.parent.mkdir(parents=True)
    text = json.dumps({"version": 1, "puzzles": {"a": {"stars": 3}}})
    path.write_text(text, encoding="utf-8")
    real = Path.read_text

    def denied(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(Path, "read_text", denied)
        p = Progress.load()
    assert p.message and "Permission denied" in p.message and "left as it is" in p.message
    p.record("a", stars=1, circuit=[])
    assert path.read_text() == text  # not renamed, not written over
    assert not list(path.parent.glob("progress.json.damaged-*"))
    assert Progress.load().stars("a") == 3  # next time it reads, nothing was lost


def test_export_writes_a_circuit_lineup_check_reads(tmp_path) -> None:
    from engine.puzzle import load_circuit

    q = {"round": "late", "asker": "A2", "card": "induction", "responder": "B"}
    out = export_circuit("induction-head", [q], tmp_path / "c.yaml", model="toy")
    circuit = load_circuit(out)
    assert circuit.puzzle == "induction-head"
    assert [x.as_dict() for x in circuit.questions] == [q]


WRITER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from game.progress import atomic_write
    path = Path(sys.argv[1])
    n = 0
    print("ready", flush=True)
    while True:
        n += 1
        payload = {"version": 1, "puzzles": {f"p{k}": {"stars": n % 4, "circuit": []}
                                             for k in range(300)}, "n": n}
        atomic_write(path, json.dumps(payload))
""")


def test_kill_during_save_leaves_the_previous_save_readable(tmp_path) -> None:
    path = tmp_path / "progress.json"
    atomic_write(path, json.dumps({"version": 1, "puzzles": {}, "n": 0}))
    rng = random.Random(7)
    root = Path(__file__).resolve().parents[1]
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=root,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        data = json.loads(path.read_text())  # whole: either the old save or a new one
        assert data["version"] == 1
        assert len(data["puzzles"]) in (0, 300)
    leftovers = [p for p in tmp_path.iterdir() if p.name != "progress.json"]
    assert all(p.name.startswith(".progress.json.") for p in leftovers)  # temp files only
