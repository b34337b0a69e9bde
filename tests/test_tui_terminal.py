"""The installed `lineup` in a real terminal (tmux): play a toy puzzle to its verdict, quit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tui_helpers import solution_keys

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (CI installs it)")

LINEUP = Path(sys.executable).with_name("lineup")
SESSION = f"lineup-test-{os.getpid()}"
SOCKET = SESSION  # a private tmux server: no other tmux user can end or confuse it


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True,
                          check=True).stdout


def screen() -> str:
    try:
        return tmux("capture-pane", "-p", "-t", SESSION)
    except subprocess.CalledProcessError as exc:
        return f"(tmux could not show the pane: {exc.stderr.strip()})"


def wait_for(text: str, timeout: float = 60.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        shown = screen()
        if text in shown:
            return shown
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared; the screen shows:\n{screen()}")


def real_engine_ready() -> bool:
    import importlib.util

    from engine.models import toy_names

    return importlib.util.find_spec("engine.judge") is not None and bool(toy_names())


def test_play_to_verdict_and_quit(tmp_path) -> None:
    if not LINEUP.exists():
        pytest.skip(f"the lineup command is not installed next to {sys.executable}")
    env = {"LINEUP_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "TERM": "xterm-256color"}
    if not real_engine_ready():  # the toy model or the judge is not built yet: same keys, fake
        env["LINEUP_ENGINE"] = "fake"
    done = tmp_path / "exit-code"
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    command = f"env {exports} {LINEUP}; echo $? > {done}; sleep 30"
    tmux("new-session", "-d", "-s", SESSION, "-x", "100", "-y", "30", command)
    try:
        wait_for("Stars:")
        tmux("send-keys", "-t", SESSION, "Down", "Enter")
        wait_for("Last time, what came next?")
        for key in solution_keys("induction-head"):
            tmux("send-keys", "-t", SESSION, key)
            time.sleep(0.4)
        tmux("send-keys", "-t", SESSION, "c")
        shown = wait_for("Solved!", timeout=300)
        assert "★★★" in shown
        tmux("send-keys", "-t", SESSION, "Escape")
        wait_for("Add question")
        tmux("send-keys", "-t", SESSION, "Escape")
        wait_for("Stars: 3")
        tmux("send-keys", "-t", SESSION, "q")
        end = time.monotonic() + 20
        while not done.exists() and time.monotonic() < end:
            time.sleep(0.1)
        assert done.exists(), screen()
        assert done.read_text().strip() == "0"
        assert "Traceback" not in screen()
    finally:
        subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True)
