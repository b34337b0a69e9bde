"""The `lineup` command: a thin argparse front over the engine.

Each subcommand lives in its own module under ``game.commands`` and exposes
``register(subparsers)``; the parser it adds sets ``run=`` to a function taking the parsed
arguments and returning an exit code. Heavy imports (torch, transformers) happen inside those
functions, so `lineup --help` and `lineup list` start instantly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from game.output import Exit, error

# Order here is the order `lineup --help` lists them.
COMMANDS = [
    "play",
    "list",
    "check",
    "grade",
    "validate",
    "heads",
    "patch",
    "lens",
    "models",
    "cache",
    "download",
    "doctor",
]

DESCRIPTION = """\
Lineup: find the circuit a transformer uses, one question at a time.

A prompt is a line of people, each holding a word and guessing the word of the person in
front. Attention heads are questions they shout to everyone behind them. You decide who asks
which question, in which round, and who answers; the judge checks your circuit against the
model's real attention and patching results.

Start with `lineup` (the game) or `lineup list` (the puzzles)."""

EPILOG = """\
models (--model):
{models}
  default: {default}

exit codes: 0 ok or solved, 1 problems found or not solved, 2 usage or other error."""


def _model_list() -> str:
    from engine.models import MODEL_CHOICES

    rows = [*MODEL_CHOICES, ("DIR", "a GPT-2 or Llama checkpoint in Hugging Face format")]
    return "\n".join(f"  {name:<12} {what}" for name, what in rows)


def _default_rule() -> str:
    from engine.models import DEFAULT_RULE

    return DEFAULT_RULE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lineup",
        description=DESCRIPTION,
        epilog=EPILOG.format(models=_model_list(), default=_default_rule()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from importlib.metadata import PackageNotFoundError, version

    try:
        own_version = version("circuit-lineup")
    except PackageNotFoundError:  # running from a source tree that was never installed
        own_version = "unknown"
    parser.add_argument("--version", action="version", version=f"lineup {own_version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"game.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"game.commands.{name}":
                raise
            continue  # a command whose module is not written yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `lineup` command; every way it can end becomes an exit code here (ok 0, no 1,
    usage or other error 2, interrupt 130), with one line on stderr and no traceback."""
    try:
        code = _main(argv)
    except SystemExit as exc:  # argparse's usage errors and --help; Rich on a closed pipe
        if _rich_broken_pipe(exc):
            return _closed_pipe()
        raise
    except BrokenPipeError:  # `lineup models | true`: the reader left; that is fine
        return _closed_pipe()
    except KeyboardInterrupt:
        print("lineup: interrupted", file=sys.stderr)
        return Exit.INTERRUPT
    except Exception as exc:  # what the code did not foresee: a log file, one line, exit 2
        from game.crash import report

        report(exc, ["lineup", *(sys.argv[1:] if argv is None else argv)])
        return Exit.ERROR
    try:  # what is still buffered goes now, while a closed pipe can be handled
        sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:  # bare `lineup` starts the game
        args = parser.parse_args(["play", *(argv or [])]) if "play" in _registered(parser) else args
        run = getattr(args, "run", None)
        if run is None:
            parser.print_help()
            return Exit.OK
    from engine.errors import LineupError

    try:
        check_device(getattr(args, "device", None))
        return int(run(args))
    except LineupError as exc:
        return error(str(exc))
    except (BrokenPipeError, KeyboardInterrupt):
        raise
    except OSError as exc:  # a file or folder the user named cannot be read or written
        if _is_stdout_pipe(exc):
            raise BrokenPipeError from exc
        where = f"{exc.filename}: " if exc.filename else ""
        return error(f"{where}{exc.strerror or exc}")


def check_device(device: str | None) -> None:
    """``--device``, checked once before any command uses it: a device torch does not know or
    cannot use here (``cuda`` on a CPU build) is a usage error, not a traceback."""
    if device in (None, "", "auto"):
        return
    import torch

    from engine.errors import UsageError

    try:
        where = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(f"--device {device!r} is not a torch device (try cpu, cuda, "
                         "cuda:1 or mps)") from None
    try:
        torch.empty(1, device=where)
    except Exception as exc:  # AssertionError on a CPU build, RuntimeError without a driver
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"--device {device!r} is not usable here ({first}); "
                         "leave --device out to use the CPU") from None


def _rich_broken_pipe(exc: SystemExit) -> bool:
    """Rich turns a closed stdout into ``SystemExit(1)`` from ``Console.on_broken_pipe``."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_name == "on_broken_pipe"


def _is_stdout_pipe(exc: OSError) -> bool:
    import errno

    return exc.errno == errno.EPIPE


def _closed_pipe(code: int = Exit.OK) -> int:
    """The reader of stdout is gone: point stdout at /dev/null so the final flush at exit is
    quiet, and end as if the output had been read."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return int(code)


def _registered(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
