"""`lineup play [PUZZLE|CIRCUIT.yaml] [--pack DIR] [--model M]`: the game."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path
from typing import Any

from game.output import Exit


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "play",
        help="start the game (the default when no command is given)",
        description="Start the Lineup game in the terminal. It needs a terminal: with input "
        "or output redirected it stops at once (use `lineup check` to grade a file).",
    )
    parser.add_argument("puzzle", nargs="?",
                        help="open this puzzle (an id or a file), or a saved circuit file")
    parser.add_argument("--pack", metavar="DIR",
                        help="play a teacher's pack: a folder of puzzles and a pack.yaml")
    parser.add_argument("--model", metavar="M", default=None,
                        help="gpt2, toy or a directory (default: gpt2 when cached, else toy)")
    parser.set_defaults(run=run)


def no_terminal() -> str | None:
    """Why the game cannot run here (stdin or stdout is not a terminal), or None."""
    for name, stream in (("input", sys.stdin), ("output", sys.stdout)):
        try:
            ok = stream is not None and stream.isatty()
        except (ValueError, OSError):  # closed
            ok = False
        if not ok:
            return name
    return None


def run(args: argparse.Namespace) -> int:
    from engine.errors import UsageError

    missing = no_terminal()
    if missing is not None:
        raise UsageError(f"the game needs a terminal, and its {missing} is not one; to grade a "
                         "circuit file without the game use `lineup check PUZZLE FILE`")
    circuit = None
    puzzle = args.puzzle
    if puzzle is not None:
        circuit, puzzle = _circuit_or_puzzle(puzzle)
    from game.app import LineupApp

    app = LineupApp(puzzle=puzzle, pack=args.pack, model=args.model, circuit=circuit)
    return finish(app, app.run())


def _circuit_or_puzzle(ref: str) -> tuple[str | None, str | None]:
    """(circuit file, None) when ``ref`` is a saved circuit file, else (None, ref). A path that
    is not a regular file is refused here, before anything could block reading it."""
    from engine.errors import UsageError
    from engine.limits import too_long
    from engine.pack import kind_of, read_doc
    from engine.puzzle import looks_like_id

    if looks_like_id(ref) and too_long(ref):  # the game says there is no such puzzle
        return None, ref
    path = Path(ref).expanduser()
    try:
        st = os.stat(path)
    except OSError:
        return None, ref  # a puzzle id; the game says if there is no such puzzle
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{ref} is {kind_of(st.st_mode)}, not a puzzle or circuit file")
    data = read_doc(path).data
    if isinstance(data, dict) and "questions" in data and "prompts" not in data:
        return ref, None
    return None, ref


def finish(app: Any, result: Any) -> int:
    """The exit code of a game that has ended: Textual's return code (1 after an unhandled
    exception, whose traceback then goes to a crash log with one line saying where)."""
    error = getattr(app, "_exception", None)
    code = getattr(app, "return_code", None)
    if error is not None:
        from game.crash import report

        report(error, where="game")
        return int(code or Exit.NO)
    if code:
        return int(code)
    return int(result) if isinstance(result, int) and not isinstance(result, bool) else Exit.OK
