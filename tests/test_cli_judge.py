"""`lineup check`, `grade` and `patch` through the real entry point (python -m game)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tests.cli import lineup as run_lineup

ROOT = Path(__file__).resolve().parent.parent


def lineup(tmp_path, *args):
    """The real command with a home of this test's own."""
    return run_lineup(*args, home=tmp_path / "home")


def circuit(path: Path, puzzle: str, questions) -> Path:
    from engine.puzzle import Circuit

    path.write_text(Circuit(puzzle, list(questions)).to_yaml())
    return path


@pytest.fixture(scope="module")
def puzzle():
    from engine.puzzle import find_puzzle

    return find_puzzle("induction-two-step")


def test_check_exit_codes_and_json(tmp_path, puzzle):
    solution = puzzle.models["toy"].solution
    good = circuit(tmp_path / "good.yaml", puzzle.id, solution)
    half = circuit(tmp_path / "half.yaml", puzzle.id, [q for q in solution
                                                        if q.card == "induction"])
    done = lineup(tmp_path, "check", puzzle.id, str(good), "--model", "toy", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for key in ("version", "puzzle", "model", "solved", "stars", "faithfulness",
                "heldout_faithfulness", "questions", "timing_s"):
        assert key in report
    assert report["stars"] == 3 and report["solved"] is True
    assert {"verdict", "heads", "message"} <= set(report["questions"][0])
    assert "model_load" in report["timing_s"]
    not_solved = lineup(tmp_path, "check", puzzle.id, str(half), "--model", "toy")
    assert not_solved.returncode == 1, not_solved.stderr
    assert "faithfulness" in not_solved.stdout


def test_check_errors_exit_2_with_located_messages(tmp_path, puzzle):
    broken = tmp_path / "broken.yaml"
    broken.write_text("puzzle: x\nquestions:\n  - {round: [oops\n")
    done = lineup(tmp_path, "check", puzzle.id, str(broken), "--model", "toy")
    assert done.returncode == 2
    assert f"{broken}:" in done.stderr and "Traceback" not in done.stderr
    unknown = lineup(tmp_path, "check", "no-such-puzzle", str(broken))
    assert unknown.returncode == 2 and "lineup: error:" in unknown.stderr
    good = circuit(tmp_path / "c.yaml", "ioi-backup-and-negative", [])
    locked = lineup(tmp_path, "check", "ioi-backup-and-negative", str(good), "--model", "toy")
    assert locked.returncode == 2 and "locked" in locked.stderr


def test_grade_folder_with_a_broken_file(tmp_path, puzzle):
    folder = tmp_path / "class"
    folder.mkdir()
    circuit(folder / "alice.yaml", puzzle.id, puzzle.models["toy"].solution)
    circuit(folder / "bob.yml", puzzle.id, [])
    (folder / "carol.yaml").write_text("questions: {not: a list\n")
    (folder / "notes.txt").write_text("ignored")
    (folder / "dir.yaml").mkdir()
    os.mkfifo(folder / "pipe.yaml")
    (folder / "gone.yml").symlink_to(folder / "nowhere.yaml")
    # one question 1,999 times (116 KB): collapsed before anything is graded or formatted
    solution = puzzle.models["toy"].solution
    circuit(folder / "dave.yaml", puzzle.id, [solution[0]] * 1999 + solution[1:])
    out = tmp_path / "grades.csv"
    done = lineup(tmp_path, "grade", puzzle.id, str(folder), "--model", "toy", "--csv", str(out))
    assert done.returncode == 1, done.stderr  # some rows are errors
    assert "Traceback" not in done.stderr and "4 of 7 files could not be graded" in done.stderr
    rows = {r["file"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"alice.yaml", "bob.yml", "carol.yaml", "dir.yaml", "pipe.yaml",
                         "gone.yml", "dave.yaml"}
    assert rows["alice.yaml"]["stars"] == "3" and rows["alice.yaml"]["status"] == "solved"
    assert rows["bob.yml"]["stars"] == "0" and rows["bob.yml"]["status"] == "not solved"
    assert rows["carol.yaml"]["stars"] == "" and "carol.yaml" in rows["carol.yaml"]["problems"]
    assert "it is a folder" in rows["dir.yaml"]["problems"]
    assert "named pipe" in rows["pipe.yaml"]["problems"]
    assert "does not exist" in rows["gone.yml"]["problems"]
    assert {rows[f]["status"] for f in ("carol.yaml", "dir.yaml", "pipe.yaml", "gone.yml")} \
        == {"error"}
    assert rows["dave.yaml"]["stars"] == "3"
    assert "1998 repeated questions counted once" in rows["dave.yaml"]["problems"]
    # a previous grades file is replaced; a student's file is not, unless --force
    again = lineup(tmp_path, "grade", puzzle.id, str(folder), "--model", "toy", "--csv",
                   str(out), "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["errors"] == 4
    theirs = folder / "notes.txt"
    refused = lineup(tmp_path, "grade", puzzle.id, str(folder), "--csv", str(theirs))
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert theirs.read_text() == "ignored"
    forced = lineup(tmp_path, "grade", puzzle.id, str(folder), "--model", "toy", "--csv",
                    str(theirs), "--force")
    assert forced.returncode == 1 and theirs.read_text().startswith("file,status,")


def test_check_refuses_a_fifo_and_a_prompt_longer_than_the_model_reads(tmp_path, puzzle):
    fifo = tmp_path / "circuit.yaml"
    os.mkfifo(fifo)
    done = lineup(tmp_path, "check", puzzle.id, str(fifo), "--model", "toy")  # no hang
    assert done.returncode == 2 and "named pipe" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    source = (ROOT / "puzzles" / "induction" / "01-previous-token.yaml").read_text()
    long = source.replace(' {W1} {W2}', " the" * 80 + ' {W1} {W2}', 1)  # the first template
    assert long != source
    (tmp_path / "long.yaml").write_text(long)
    good = circuit(tmp_path / "c.yaml", "induction-previous-token", [])
    done = lineup(tmp_path, "check", str(tmp_path / "long.yaml"), str(good), "--model", "toy")
    assert done.returncode == 2, done.stderr
    assert "reads at most 64" in done.stderr and "Traceback" not in done.stderr


def test_patch_json(tmp_path):
    done = lineup(tmp_path, "patch", "ioi-whole-circuit", "--model", "toy", "--count", "4",
                  "--json")
    assert done.returncode == 0, done.stderr
    grid = json.loads(done.stdout)
    for key in ("prompts", "corrupted", "answers", "clean_metric", "corrupted_metric",
                "effects", "timing_s"):
        assert key in grid
    assert len(grid["prompts"]) == 4 and len(grid["answers"][0]) == 2
    assert len(grid["effects"]) == 4 and len(grid["effects"][0]) == 4
    # the toy's name mover 3.2 alone restores most of the clean logit difference
    assert grid["effects"][3][2] > grid["corrupted_metric"] + 0.5 * (
        grid["clean_metric"] - grid["corrupted_metric"])


def test_patch_runs_each_prompt_set_once_and_matches_head_patch_grid(monkeypatch, capsys):
    """The baselines come from the grid's own two runs: one full forward of the clean
    prompts, one of the corrupted; the numbers are head_patch_grid's and the metric's."""
    import argparse

    import torch

    from engine import hooks
    from engine.interventions import grids, head_patch_grid, runner
    from engine.metrics import PuzzleMetric
    from engine.models import load_model, pad_rows
    from engine.puzzle import find_puzzle
    from game.commands import patch

    lm = load_model("toy", device="cpu")
    ps = find_puzzle("ioi-whole-circuit").build_prompts(lm.tokenizer, "play")
    clean, corrupted = pad_rows(ps.token_ids[:5]), pad_rows(ps.corrupted_ids[:5])
    full: list[list[list[int]]] = []
    real = hooks.forward

    def counting(lm, tokens, **kw):
        if kw.get("start_layer", 0) == 0 and kw.get("resid") is None:
            full.append(tokens.ids.tolist())
        return real(lm, tokens, **kw)

    monkeypatch.setattr(hooks, "forward", counting)
    monkeypatch.setattr(grids, "forward", counting)  # the grid's two full runs
    monkeypatch.setattr(runner, "forward", counting)  # and its patched runs
    args = argparse.Namespace(puzzle="ioi-whole-circuit", model="toy", device="cpu", count=5,
                              json=True, at="head", silence=False, pos="*", numbers=False,
                              svg=None)
    assert patch.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(full) == sorted([clean.ids.tolist(), corrupted.ids.tolist()])
    monkeypatch.undo()

    metric = PuzzleMetric(ps.metric.kind, ps.correct[:5], ps.wrong[:5])
    grid = head_patch_grid(lm, corrupted, clean, metric)
    assert out["effects"] == [[pytest.approx(float(v), abs=1e-4) for v in row] for row in grid]
    with torch.inference_mode():
        for name, tokens in (("clean_metric", clean), ("corrupted_metric", corrupted)):
            expected = float(metric(real(lm, tokens, logits="last").logits).mean())
            assert out[name] == pytest.approx(expected, abs=1e-4)
    assert out["prompts"] == ps.texts[:5] and out["corrupted"] == ps.corrupted[:5]
    decode = lm.tokenizer.decode
    assert out["answers"] == [[decode(c), decode(w)] for c, w in zip(ps.correct[:5],
                                                                     ps.wrong[:5], strict=True)]


def test_doctor_reports_the_cache_and_clears_it(tmp_path):
    runs = tmp_path / "home" / "cache" / "runs"
    runs.mkdir(parents=True)
    for name in ("judge-v3-aa.pt", "judge-effects-v3-aa.pt", "heads-v3-bb.pt"):
        (runs / name).write_bytes(b"x" * 1000)
    done = lineup(tmp_path, "doctor", "--json")
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    detail = checks["run cache"]["detail"]
    assert "3 files" in detail and "3.0 kB of a 500.0 MB cap (the default)" in detail
    assert "lineup cache clear" in detail
    cleared = lineup(tmp_path, "doctor", "--clear-cache", "--json")
    payload = json.loads(cleared.stdout)
    assert payload["cache_files_deleted"] == 3
    assert not list(runs.glob("*.pt"))
    assert "0 files" in {c["check"]: c for c in payload["checks"]}["run cache"]["detail"]
    text = lineup(tmp_path, "doctor", "--clear-cache")
    assert "deleted 0 cached run files" in text.stdout
