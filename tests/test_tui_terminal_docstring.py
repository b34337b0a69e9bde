"""The docstring ladder's first puzzle played to a verdict in a real terminal (tmux), on the
real SmolLM2: `lineup play`, place the reference one dialog step at a time, check, read
"Solved!" on screen, quit with exit code 0.

Reuses the tmux driver of tests/test_tui_terminal.py (no fixed sleeps: every key waits for
the screen it needs). Skipped when tmux or the converted SmolLM2 is absent.
"""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.test_tui_terminal import LINEUP, question_keys, smollm2_ready, start, wait_for_exit

PUZZLE = "docstring-fetch-argument"

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.slow,
]


def test_the_first_docstring_puzzle_is_solved_on_smollm2(tmp_path) -> None:
    from engine.puzzle import find_puzzle

    why = smollm2_ready()
    if why:
        pytest.skip(why)
    if not LINEUP.exists():
        pytest.skip(f"the lineup command is not installed next to {sys.executable}")
    puzzle = find_puzzle(PUZZLE)
    term, done = start(tmp_path, "lineup-docstring",
                       args=f"play {PUZZLE} --model smollm2", size=(120, 40))
    try:
        term.wait_for("Add question", puzzle.title, every=True)
        for key, then in question_keys(PUZZLE, "smollm2"):
            term.send(key, then)
        shown = term.send("c", ("Solved!", "Not yet."), timeout=900)
        assert "Solved!" in shown, shown
        assert "faithfulness" in shown
        assert "Traceback" not in shown
        term.send("Escape", "Add question")
        term.send("Escape", "Stars:")
        term.tmux("send-keys", "-t", term.session, "q")
        assert wait_for_exit(term, done) == "0"
    finally:
        term.close()
