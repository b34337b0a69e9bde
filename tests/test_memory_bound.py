"""Grading stays within its memory budget: a puzzle whose runs would not fit is refused before
anything runs, with the numbers; batches of patched runs shrink to fit; the verdicts do not
depend on the batch size."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from engine import memory
from engine.errors import UsageError
from tests.cli import ROOT, lineup

# The child's own peak: VmHWM belongs to its address space, made new at exec. (ru_maxrss
# keeps the forked copy of the parent's pages: inside a big pytest process it reported the
# parent's 3.3 GB.)
PEAK = """
import runpy, sys
sys.argv = ["lineup", *sys.argv[1:]]
try:
    runpy.run_module("game", run_name="__main__")
finally:
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(f"PEAK {kb * 1024}", file=sys.stderr)
"""


def long_induction_puzzle(folder: Path, words: int) -> Path:
    """Induction 1 with ``words`` filler words before the first template's random tokens."""
    source = (ROOT / "puzzles" / "induction" / "01-previous-token.yaml").read_text()
    long = source.replace(" {W1} {W2}", " the" * words + " {W1} {W2}", 1)
    assert long != source
    path = folder / "long.yaml"
    path.write_text(long.replace("id: induction-previous-token", "id: long-induction"))
    return path


@pytest.fixture(scope="module")
def toy():
    from engine.models import load_model

    return load_model("toy", device="cpu")


def test_the_estimate_grows_with_the_square_of_the_length() -> None:
    shape = memory.Shape(n_layers=30, n_heads=9, d_model=576, d_mlp=1536)
    short, long = memory.row_bytes(shape, 100), memory.row_bytes(shape, 1000)
    assert long > 20 * short  # ten times the length: the attention scores grow with its square
    # the issue's pack: 32 prompts of about 1,500 tokens on SmolLM2's shape, over 10 GB
    assert memory.split_bytes(shape, 32, 1500, play=True) > 10e9


def test_batches_shrink_to_the_budget(toy, monkeypatch) -> None:
    assert memory.batch_rows(toy, 20) == 512
    need = memory.patched_row_bytes(memory.Shape.of(toy), 20)
    budget = memory.weights_bytes(toy) + memory.BASE_BYTES + 7 * need
    monkeypatch.setenv("LINEUP_MEMORY_MB", str(budget / 1e6))
    assert memory.batch_rows(toy, 20) == 7
    assert memory.batch_rows(toy, 20, kept=5 * need) == 2
    assert memory.batch_rows(toy, 20, kept=50 * need) == 1


def test_a_small_budget_gives_the_same_verdicts_in_smaller_batches(toy, monkeypatch) -> None:
    from engine import cache, interventions
    from engine.judge import grade
    from engine.puzzle import Circuit, find_puzzle

    puzzle = find_puzzle("ioi-whole-circuit")
    circuit = Circuit(puzzle.id, list(puzzle.models["toy"].solution))

    def graded() -> tuple[dict, int]:
        cache.clear()
        before = interventions.RUNNER["batches"]
        report = grade(puzzle, circuit, toy).to_json()
        report.pop("timing_s")
        return report, interventions.RUNNER["batches"] - before

    roomy, roomy_batches = graded()
    asked: list[int] = []

    def two_rows(lm, n_tokens, *, kept=0, most=512) -> int:
        asked.append(kept)
        return 2

    monkeypatch.setattr(memory, "batch_rows", two_rows)  # what a small budget gives
    tight, tight_batches = graded()
    assert asked and all(kept > 0 for kept in asked)  # the split's runs are counted
    assert tight_batches > roomy_batches
    assert json.dumps(tight, sort_keys=True) == json.dumps(roomy, sort_keys=True)


def test_a_split_that_does_not_fit_is_refused_with_the_numbers(toy, monkeypatch) -> None:
    monkeypatch.setenv("LINEUP_MEMORY_MB", str(
        (memory.weights_bytes(toy) + memory.BASE_BYTES) / 1e6 + 0.01))
    problem = memory.too_big(toy, 32, 60)
    assert problem is not None
    assert "60 tokens" in problem and "32 of them" in problem and "at most" in problem
    with pytest.raises(UsageError, match="cannot be graded here"):
        from engine.judge import grade
        from engine.puzzle import Circuit, find_puzzle

        puzzle = find_puzzle("ioi-whole-circuit")
        grade(puzzle, Circuit(puzzle.id, []), toy)


def test_a_bad_budget_setting_is_a_usage_error(monkeypatch) -> None:
    monkeypatch.setenv("LINEUP_MEMORY_MB", "plenty")
    with pytest.raises(UsageError, match="plenty"):
        memory.budget_bytes()


@pytest.mark.slow
def test_a_long_prompt_puzzle_is_refused_on_smollm2_within_the_budget(tmp_path) -> None:
    """The issue's case: prompts of about 1,500 tokens (legal: SmolLM2 reads 8,192) made a
    check grow to 13 GB. Now it is one line, exit 2, and the process stays small."""
    from engine.smollm2 import converted_dir

    if converted_dir() is None:
        pytest.skip("SmolLM2 is not converted here (`lineup download smollm2`)")
    puzzle = long_induction_puzzle(tmp_path, 1500)
    good = tmp_path / "c.yaml"
    good.write_text("puzzle: long-induction\nquestions: []\n")
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", PEAK, "check", str(puzzle), str(good), "--model", "smollm2"],
        capture_output=True, text=True, timeout=1800, cwd=ROOT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2, done.stderr
    assert "cannot be graded here" in done.stderr and "at most" in done.stderr
    assert "Traceback" not in done.stderr
    peak = int(done.stderr.rsplit("PEAK ", 1)[1])
    assert peak < memory.DEFAULT_BUDGET_MB * 1_000_000, peak


def test_lineup_check_refuses_a_puzzle_that_does_not_fit_in_one_line(tmp_path) -> None:
    puzzle = long_induction_puzzle(tmp_path, 30)
    good = tmp_path / "c.yaml"
    good.write_text("puzzle: long-induction\nquestions: []\n")
    done = lineup("check", str(puzzle), str(good), "--model", "toy",
                  env={"LINEUP_MEMORY_MB": "460"})
    assert done.returncode == 2, done.stderr
    assert "cannot be graded here" in done.stderr and "LINEUP_MEMORY_MB" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
