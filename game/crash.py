"""What happens when the code meets something it did not foresee: the traceback goes to a log
file in the data folder (``data_dir()/crash-<time>.log``), the player gets one line saying
where it is, and the process exits non-zero. A crash is never silent and never a wall of
traceback on the terminal.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

KEEP_LOGS = 20  # older crash logs beyond this many are removed


def _folder() -> Path:
    try:
        from engine.paths import data_dir

        return data_dir()
    except Exception:  # the paths module itself is what broke: fall back to the temp folder
        return Path(tempfile.gettempdir())


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("circuit-lineup")
    except Exception:
        return "unknown"


def write_log(error: BaseException, argv: Sequence[str] | None = None,
              where: str = "command") -> Path | None:
    """Write the traceback of ``error`` and what was running to a new crash log; returns its
    path, or None when no folder could be written (then nothing else is tried)."""
    argv = list(sys.argv if argv is None else argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = "".join([
        f"Lineup {_version()} crashed in the {where} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n",
        f"command: {' '.join(argv)}\n",
        f"python {sys.version.split()[0]} on {platform.platform()}\n\n",
        *traceback.format_exception(type(error), error, error.__traceback__),
    ])
    for folder in (_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"crash-{stamp}-", suffix=".log", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(text)
        except OSError:
            continue
        _prune(folder)
        return Path(name)
    return None


def _prune(folder: Path) -> None:
    try:
        logs = sorted(folder.glob("crash-*.log"), key=lambda p: p.stat().st_mtime)
    except OSError:
        return
    for old in logs[:-KEEP_LOGS]:
        with contextlib.suppress(OSError):
            old.unlink()


def one_line(error: BaseException, log: Path | None) -> str:
    """The line the player sees: what broke, and where the details are."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    what = f"{type(error).__name__}: {first}" if first else type(error).__name__
    if len(what) > 200:
        what = what[:197] + "..."
    from game.output import visible

    where = f"the details are in {log}" if log else "no crash log could be written"
    return (f"lineup: error: Lineup crashed ({visible(what)}); {where}. Please report it with "
            "that file.")


def report(error: BaseException, argv: Sequence[str] | None = None,
           where: str = "command") -> None:
    """Log ``error`` and print the one line on stderr (never raises)."""
    try:
        log = write_log(error, argv, where)
    except Exception:
        log = None
    try:
        print(one_line(error, log), file=sys.stderr)
        sys.stderr.flush()
    except Exception:
        pass
