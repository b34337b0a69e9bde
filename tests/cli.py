"""The one way the tests run the real `lineup` command: `python -m game` in a subprocess,
from the repository, offline. Each test's LINEUP_HOME is already sandboxed by conftest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANG = 1800
"""Seconds after which a command counts as hung: a guard against a test that never ends,
not a speed limit (the slowest here, a SmolLM2 patch grid or validate, take minutes)."""


def lineup(*args: str, cwd: Path | str | None = None, stdin=None, home: Path | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    if home is not None:
        full["LINEUP_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "game", *args], capture_output=True,
                          text=True, timeout=HANG, env=full, stdin=stdin, cwd=cwd or ROOT)
