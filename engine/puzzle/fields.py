"""Typed fields of a read ``Doc``: each check reports a located problem and returns None when
the value is wrong, so the shape parser (``engine.puzzle.shape``) can report every problem of a
file at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from engine.limits import MAX_NAME, too_long
from engine.puzzle.parts import NAME_PATTERN
from engine.puzzle.reader import Doc
from engine.puzzle.suggest import closest, one_of

_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
               list: "a list", dict: "a mapping (key: value)"}


def type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    for t, name in _TYPE_NAMES.items():
        if type(value) is t:
            return name
    return type(value).__name__


class FieldReader:
    """Shape checks over a Doc: each helper reports problems and returns None when wrong."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    def problem(self, at: tuple, message: str, *, key: bool = False) -> None:
        self.doc.problem(at, message, key=key)

    def mapping(self, at: tuple, value: Any, known: Iterable[str], required: Iterable[str] = (),
                what: str = "") -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(at, f"{what or _label(at)} must be a mapping (key: value), "
                             f"not {type_name(value)}")
            return None
        known = list(known)
        suggested = set()
        for key in value:
            if key not in known:
                best = closest(key, known)
                if best:
                    suggested.add(best)
                    message = (f"unknown key {key!r} in {what or _label(at)} "
                               f"(did you mean {best!r}?)")
                else:
                    message = (f"unknown key {key!r} in {what or _label(at)}; expected one of "
                               f"{one_of(known)}")
                self.problem((*at, key), message, key=True)
        missing = [k for k in required if k not in value and k not in suggested]
        if missing:
            self.problem(at, f"{what or _label(at)} is missing {', '.join(missing)}")
        return value

    def fields(self, at: tuple, value: Any, readers: dict[str, Callable[[tuple, Any], Any]]
               ) -> dict[str, Any] | None:
        """A mapping whose keys are all optional, each read by its own reader (in the order
        of ``readers``): the values read, None where a reader refused one; None when
        ``value`` is not a mapping."""
        m = self.mapping(at, value, readers)
        if m is None:
            return None
        return {key: read((*at, key), m[key]) for key, read in readers.items() if key in m}

    def text(self, at: tuple, value: Any, *, what: str = "", empty_ok: bool = False,
             limit: int | None = None) -> str | None:
        """A text; with ``limit``, one of at most that many characters (``engine.limits``)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # `title: 1984` is a title
        if not isinstance(value, str):
            self.problem(at, f"{what or _label(at)} must be text, not {type_name(value)}")
            return None
        if not empty_ok and not value.strip():
            self.problem(at, f"{what or _label(at)} is empty")
            return None
        if limit is not None and (long := too_long(value, limit)):
            self.problem(at, f"{what or _label(at)} {long}")
            return None
        return value

    def integer(self, at: tuple, value: Any, lo: int, hi: int, *, what: str = "") -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(at, f"{what or _label(at)} must be a whole number, "
                             f"not {type_name(value)}")
            return None
        if not lo <= value <= hi:
            self.problem(at, f"{what or _label(at)} must be between {lo} and {hi}, not {value}")
            return None
        return value

    def number(self, at: tuple, value: Any, lo: float, hi: float, *,
               what: str = "") -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(at, f"{what or _label(at)} must be a number, not {type_name(value)}")
            return None
        if not lo <= value <= hi:
            self.problem(at, f"{what or _label(at)} must be between {lo} and {hi}, not {value}")
            return None
        return float(value)

    def boolean(self, at: tuple, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.problem(at, f"{_label(at)} must be true or false, not {type_name(value)}")
            return None
        return value

    def seq(self, at: tuple, value: Any, *, what: str = "", empty_ok: bool = False) -> list | None:
        if not isinstance(value, list):
            self.problem(at, f"{what or _label(at)} must be a list, not {type_name(value)}")
            return None
        if not value and not empty_ok:
            self.problem(at, f"{what or _label(at)} is an empty list")
            return None
        return value

    def name(self, at: tuple, value: Any, *, what: str = "") -> str | None:
        text = self.text(at, value, what=what, limit=MAX_NAME)
        if text is None:
            return None
        if not NAME_PATTERN.match(text):
            self.problem(at, f"{what or _label(at)} {text!r} must be a name: a letter, then "
                             "letters, digits, _, + or -")
            return None
        return text


def cut(text: str, keep: int = 40) -> str:
    """The start of a text too long to quote whole in a message."""
    return text if len(text) <= keep else text[:keep] + "..."


def _label(at: tuple) -> str:
    if not at:
        return "the file"
    parts = []
    for p in at:
        parts.append(f"[{p}]" if isinstance(p, int) else ("." if parts else "") + str(p))
    return "`" + "".join(parts) + "`"

