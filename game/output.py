"""How the CLI speaks: exit codes in one place, errors as one stderr line, JSON on stdout."""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from typing import Any

JSON_VERSION = 1


class Exit(IntEnum):
    OK = 0
    NO = 1  # problems found / not solved
    ERROR = 2  # usage or other error
    INTERRUPT = 130


_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def visible(text: object) -> str:
    """User text made safe for a terminal or a CSV cell: control characters (escape
    sequences, carriage returns, newlines, bidi overrides) are shown as ``\\x1b``-style escapes
    instead of acting on the terminal."""
    s = str(text)
    if s.isprintable() and not (_BIDI & set(s)):
        return s
    out = []
    for ch in s:
        if ch in _BIDI or (not ch.isprintable() and ch != " "):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def error(message: str) -> int:
    """One line on stderr; control characters in it (user text) are made visible."""
    print(f"lineup: error: {visible(message)}", file=sys.stderr)
    return Exit.ERROR


def note(message: str) -> None:
    """A remark for the human (stderr), never mixed into data on stdout."""
    print(f"lineup: {visible(message)}", file=sys.stderr)


def emit_json(payload: Any) -> None:
    """Print a JSON document; objects get a `version` field first."""
    if isinstance(payload, dict):
        payload = {"version": JSON_VERSION, **payload}
    json.dump(payload, sys.stdout, indent=2, default=_default)
    sys.stdout.write("\n")


def _default(value: Any) -> Any:
    import dataclasses
    from pathlib import Path

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def add_model_option(parser: Any) -> None:
    from engine.models import model_option_help  # no torch: the registry and a disk check

    parser.add_argument("--model", metavar="M", default=None, help=model_option_help())
    parser.add_argument(
        "--device", default=None, help="torch device, e.g. cpu or cuda (default: auto)"
    )


def add_json_option(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
