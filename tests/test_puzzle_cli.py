"""`lineup validate` and `lineup list` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.puzzle import puzzle_files
from tests.cli import lineup

THREE_MISTAKES = """\
id: ioi-three-mistakes
title: Three mistakes
ladder: ioi
order: 9
story: A puzzle with exactly three things wrong.
prompts:
  templates: ["When {IO} and {S} went to the {PLACE}, {S} gave a {OBJECT} to"]
  fill: {IO: names, S: names, PLACE: places, OBJECT: objects}
roles:
  IO: "{IO}"
  S1: first {S}
  S2: second {S}
  END: last
metric: {logit_diff: {correct: IO, wrong: S1}, at: END}
corrupt: {resample: [IO, S1, S2]}
cards: [s-inhibition, name-mover]
hints: ["Jub xabjf?", "F2 qbrf."]
models:
  gpt2:
    rounds: {middle: [4, 8], late: [9, 14]}
    solutoin:
      - {round: middle, asker: END, card: s-inhibition, responder: S2}
    solution:
      - {round: middle, asker: END, card: s-inhibition, responder: S2}
      - {round: late, asker: END, card: name-mover, responder: Io}
"""



def test_three_mistakes_three_located_messages(tmp_path: Path) -> None:
    (tmp_path / "three.yaml").write_text(THREE_MISTAKES)
    result = lineup("validate", "three.yaml", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3, result.stdout
    assert lines[0] == ("three.yaml:20:36: round 'late' reaches layer 14, but the gpt2 model "
                        "has layers 0-11")
    assert lines[1] == ("three.yaml:21:5: unknown key 'solutoin' in model block 'gpt2' "
                        "(did you mean 'solution'?)")
    assert lines[2].startswith("three.yaml:25:64: responder: no role called 'Io' "
                               "(did you mean 'IO'?)")
    assert "3 problems" in result.stderr


def test_validate_clean_usage_and_json(tmp_path: Path) -> None:
    ok = lineup("validate", "puzzles", "--model", "gpt2")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == ""
    assert "not graded" in ok.stderr  # the judge hook is honest about not running
    missing = lineup("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("lineup: error: no such file")
    assert "Traceback" not in missing.stderr
    unknown = lineup("validate", "puzzles", "--model", "gpt7")
    assert unknown.returncode == 2 and "unknown model" in unknown.stderr
    noargs = lineup("validate")
    assert noargs.returncode == 2
    (tmp_path / "bad.yaml").write_bytes(b"id: [\x00\xff")
    as_json = lineup("validate", str(tmp_path / "bad.yaml"), "--json")
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["version"] == 1 and data["problems"][0]["line"] == 1


def test_validate_checks_circuit_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("puzzle: ioi-name-mover\nmodel: gpt2\nquestions:\n"
                    "  - {round: late, asker: END, card: name-mover, responder: IO}\n")
    assert lineup("validate", str(good)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("puzzle: ioi-name-mover\nmodel: gpt2\nquestions:\n"
                   "  - {round: lat, asker: END, card: name-movr, responder: IO}\n")
    result = lineup("validate", str(bad))
    assert result.returncode == 1
    assert "did you mean 'late'" in result.stdout and "did you mean 'name-mover'" in result.stdout


def test_list_shows_ladders_without_torch(lineup_home: Path) -> None:
    probe = (
        "import contextlib, io, json, sys\n"
        "from game.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    code = main(['list', '--json'])\n"
        "print(json.dumps({'code': code, 'out': buf.getvalue(),\n"
        "                  'heavy': [m for m in ('torch', 'transformers', 'textual')\n"
        "                            if m in sys.modules]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    assert result["heavy"] == [], f"lineup list imported {result['heavy']}"
    data = json.loads(result["out"])
    assert data["version"] == 1
    assert [lad["name"] for lad in data["ladders"]] == ["induction", "ioi", "docstring", "pronoun",
                                                   "beyond"]
    ids = [p["id"] for lad in data["ladders"] for p in lad["puzzles"]]
    assert len(ids) == len(puzzle_files())
    greater = next(p for lad in data["ladders"] for p in lad["puzzles"]
                   if p["id"] == "beyond-greater-than")
    assert greater["locked"] == ["smollm2", "toy"] and greater["stars"] == 0  # gpt2 only


def test_list_reads_stars_and_survives_a_damaged_progress_file(lineup_home: Path) -> None:
    data_dir = lineup_home / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    progress = data_dir / "progress.json"
    progress.write_text(json.dumps({"version": 1, "puzzles": {
        "ioi-name-mover": {"stars": 2}, "induction-head": {"stars": 3}}}))
    # version-1 stars predate per-model saves: they were won on the toy (no GPT-2 cached here)
    result = lineup("list", "--model", "toy", "--json")
    assert result.returncode == 0
    stars = {p["id"]: p["stars"] for lad in json.loads(result.stdout)["ladders"]
             for p in lad["puzzles"]}
    assert stars["ioi-name-mover"] == 2 and stars["induction-head"] == 3
    assert stars["ioi-whole-circuit"] == 0
    human = lineup("list", "--model", "toy")
    assert human.returncode == 0 and "★★☆" in human.stdout and "locked on toy" in human.stdout
    progress.write_text("{not json")
    damaged = lineup("list")
    assert damaged.returncode == 0
    assert "damaged" in damaged.stderr and "☆☆☆" in damaged.stdout
    assert progress.read_text() == "{not json"  # listing never moves or rewrites the save
