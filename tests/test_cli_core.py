"""The `lineup` command through its real entry point: help, models, heads, lens, doctor."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.cli import lineup


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_teaches_and_imports_no_torch():
    result = lineup("--help")
    assert result.returncode == 0
    for command in ("heads", "lens", "models", "doctor", "download"):
        assert command in result.stdout
    modules = imported_after(
        "import contextlib, io\nfrom game.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert "torch" not in modules and "transformers" not in modules


def test_engine_never_imports_textual():
    modules = imported_after(
        "import engine, engine.models, engine.hooks, engine.interventions, engine.detectors,"
        " engine.lens, engine.paths"
    )
    assert not any(m == "textual" or m.startswith("textual.") for m in modules)


@pytest.mark.parametrize("args", [
    ["heads", "--model", "no-such-model"],
    ["lens", "hello", "--model", "./no/such/dir"],
    ["lens", "   ", "--model", "random-gpt2"],
    ["heads", "--model", "gpt2"],
    ["no-such-command"],
])
def test_usage_errors_are_one_line_and_exit_2(args):
    result = lineup(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # argparse adds its usage line


def test_missing_gpt2_names_the_fix():
    result = lineup("lens", "hi", "--model", "gpt2")
    assert "lineup download gpt2" in result.stderr and "--model PATH" in result.stderr


def test_models_lists_every_source_as_json():
    result = lineup("models", "--json")
    assert result.returncode == 0
    payload = json.loads(result.stdout)
    names = {row["name"] for row in payload["models"]}
    assert {"gpt2", "random-gpt2"} <= names
    random_row = next(r for r in payload["models"] if r["name"] == "random-gpt2")
    assert "random" in random_row["note"].lower()


def test_heads_on_random_gpt2_gives_144_rows():
    result = lineup("heads", "--model", "random-gpt2", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 144
    for key in ("layer", "head", "previous_token", "duplicate_token", "induction", "copy"):
        assert key in rows[0]
    assert "RANDOM" in result.stderr  # the model is labelled as random wherever it is shown


def test_lens_json_has_embeddings_plus_one_entry_per_layer():
    result = lineup("lens", "When Mary and John went to the store", "--model", "random-gpt2",
                    "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["tokens"][:2] == ["When", " Mary"]
    assert len(payload["layers"]) == 13
    assert [entry["layer"] for entry in payload["layers"]] == list(range(13))
    first = payload["layers"][0]["positions"][0]
    assert first["token"] == "When" and len(first["top"]) == 5
    token, prob = first["top"][0]
    assert isinstance(token, str) and 0 <= prob <= 1


def test_lens_text_table_runs():
    result = lineup("lens", "one two three", "--model", "random-gpt2")
    assert result.returncode == 0, result.stderr
    assert "'one'" in result.stdout and "L11" in result.stdout


def test_doctor_reports_each_check():
    result = lineup("doctor", "--json")
    payload = json.loads(result.stdout)
    checks = {c["check"]: c for c in payload["checks"]}
    assert checks["GPT-2 tokenizer"]["ok"]
    assert "real GPT-2" in checks
    tools = [c for name, c in checks.items() if name.startswith("tool: ")]
    assert len(tools) >= 9 and all(c["ok"] for c in tools), tools  # on the default model
    assert result.returncode == (0 if payload["ok"] else 1)


def test_download_offline_fails_fast_with_exit_2():
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-m", "game", "download", "gpt2"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2  # an error, as `lineup --help` says (not a "no": 1)
    assert "cannot reach" in result.stderr and not result.stdout


def test_an_unwritable_output_file_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "alice.yaml").write_text(
        "puzzle: ioi-name-mover\nquestions:\n  - {round: late, asker: END, card: name-mover,"
        " responder: IO}\n")
    result = lineup("grade", "ioi-name-mover", str(tmp_path), "--model", "toy",
                    "--csv", str(tmp_path / "no" / "such" / "dir" / "marks.csv"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "marks.csv" in result.stderr and "No such file" in result.stderr


def test_grading_an_empty_folder_needs_no_model(tmp_path):
    result = lineup("grade", "ioi-name-mover", str(tmp_path), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["rows"] == []
    assert "no circuit files" in result.stderr


def test_a_closed_pipe_is_not_an_error():
    """`lineup list | true`: the reader is gone before anything is written (the write
    fails with a broken pipe); that is no error and no traceback."""
    command = f"{sys.executable} -m game list | true"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
