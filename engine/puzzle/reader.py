"""Safe YAML reading with positions, and problems located in what was read.

``read_yaml(path) -> Doc`` never raises on bad input. A ``yaml.SafeLoader`` subclass refuses
aliases (so alias bombs cannot expand), caps nesting depth and file size, reports duplicate
keys, and records the 1-based line and column of every key and value. Whatever goes wrong
becomes a ``Problem(path, line, col, message)`` in ``Doc.problems``. ``Findings`` collects the
problems later checks find, each at the place in the ``Doc`` it is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.puzzle.parts import Problem, Question

MAX_BYTES = 256 * 1024  # a puzzle is a few kilobytes; anything this big is a mistake
MAX_DEPTH = 24  # puzzles nest four or five levels deep
MAX_LIST = 2000  # items in any one list


class _Refused(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


def _base_loader() -> type:
    """A safe loader class: libyaml's parser when PyYAML was built with it (ten times faster),
    PyYAML's own otherwise. Composition stays in Python either way, so that the checks below
    see every node; construction is SafeConstructor's."""
    try:
        from yaml._yaml import CParser
    except ImportError:  # pragma: no cover - PyYAML without libyaml
        return yaml.SafeLoader
    from yaml.composer import Composer
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver

    class CSafeComposingLoader(CParser, Composer, SafeConstructor, Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        # CParser has C versions of these that cannot be hooked; use Composer's
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_node = Composer.compose_node
        compose_scalar_node = Composer.compose_scalar_node
        compose_sequence_node = Composer.compose_sequence_node
        compose_mapping_node = Composer.compose_mapping_node

    return CSafeComposingLoader


class _Loader(_base_loader()):  # type: ignore[misc]
    """A safe loader that refuses aliases and deep nesting while composing the node tree."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(
                f"aliases (*{event.anchor}) are not allowed in Lineup files: write the value out",
                event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    f"nesting is deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_STD_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")
}


@dataclass
class Doc:
    """A YAML file read safely: its data (plain dicts, lists, scalars), the position of every
    value (``marks``) and every mapping key (``key_marks``), and the problems found so far."""

    path: str
    data: Any = None
    text: str = ""
    marks: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def where(self, at: tuple, *, key: bool = False) -> tuple[int, int]:
        """Line and column of the value (or, with ``key``, the key) at ``at``, falling back to
        the nearest enclosing value that has a position."""
        if key and at in self.key_marks:
            return self.key_marks[at]
        probe = at
        while True:
            if probe in self.marks:
                return self.marks[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def problem(self, at: tuple, message: str, *, key: bool = False) -> None:
        line, col = self.where(at, key=key)
        self.problems.append(Problem(self.path, line, col, message))


def _line_col(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    line = before.count("\n") + 1
    return line, index - (before.rfind("\n") + 1) + 1


def read_yaml(path: str | Path, *, text: str | bytes | None = None) -> Doc:
    """Read a YAML file safely. Never raises for anything in the file; an unreadable path
    becomes a problem too (callers that want exit code 2 check existence first)."""
    doc = Doc(path=str(path))
    raw: bytes | str
    if text is None:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            doc.problems.append(Problem(doc.path, 1, 1, f"cannot read: {exc.strerror or exc}"))
            return doc
    else:
        raw = text
    if len(raw) > MAX_BYTES:
        doc.problems.append(
            Problem(doc.path, 1, 1, f"file is larger than {MAX_BYTES // 1024} KiB; "
                                    "a puzzle is a few kilobytes")
        )
        return doc
    if isinstance(raw, bytes):
        try:
            source = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            good = raw[: exc.start].decode("utf-8", errors="replace")
            line, col = _line_col(good, len(good))
            doc.problems.append(
                Problem(doc.path, line, col, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})")
            )
            return doc
    else:
        source = raw
    doc.text = source
    loader = None
    try:
        loader = _Loader(source)
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(Problem(doc.path, 1, 1, "the file is empty"))
            return doc
        doc.data = _convert(loader, node, (), doc)
    except _Refused as exc:
        doc.problems.append(Problem(doc.path, exc.mark.line + 1, exc.mark.column + 1, exc.message))
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(source, exc.position)
        char = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        what = f"character U+{char:04X}"
        doc.problems.append(
            Problem(doc.path, line, col, f"not valid YAML: {what} is not allowed in text")
        )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "cannot be read"
        if exc.context and exc.problem:
            what = f"{exc.problem} ({exc.context})"
        doc.problems.append(Problem(doc.path, line, col, f"not valid YAML: {what}"))
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:  # pragma: no cover
        doc.problems.append(Problem(doc.path, 1, 1, f"not valid YAML: {exc}".splitlines()[0]))
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def _convert(loader: _Loader, node: Any, at: tuple, doc: Doc) -> Any:
    doc.marks[at] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if node.tag not in _STD_TAGS and not (
        node.tag == "tag:yaml.org,2002:set" and isinstance(node, yaml.MappingNode)
    ):
        doc.problem(at, f"tag {node.tag!r} is not allowed here: use plain YAML values")
        return None
    if isinstance(node, yaml.ScalarNode):
        try:
            return loader.construct_object(node, deep=True)
        except Exception as exc:  # e.g. an integer of 5000 digits, a bad timestamp
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            doc.problem(at, f"cannot read the value {node.value[:30]!r}: {first}")
            return None
    if isinstance(node, yaml.SequenceNode):
        if len(node.value) > MAX_LIST:
            doc.problem(at, f"list has {len(node.value)} items; the limit is {MAX_LIST}")
            return None
        return [_convert(loader, item, (*at, i), doc) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        if len(node.value) > MAX_LIST:
            doc.problem(at, f"mapping has {len(node.value)} keys; the limit is {MAX_LIST}")
            return None
        for key_node, value_node in node.value:
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            merge = key_node.tag == "tag:yaml.org,2002:merge"
            if not isinstance(key_node, yaml.ScalarNode) or merge:
                doc.problems.append(Problem(doc.path, kline, kcol, "keys must be plain words"))
                continue
            key = key_node.value if key_node.tag != "tag:yaml.org,2002:null" else ""
            if not key:
                doc.problems.append(Problem(doc.path, kline, kcol, "empty key"))
                continue
            if key in out:
                first = doc.key_marks.get((*at, key), (kline, kcol))
                doc.problems.append(
                    Problem(doc.path, kline, kcol,
                            f"duplicate key {key!r} (first given on line {first[0]})")
                )
                continue
            doc.key_marks[(*at, key)] = (kline, kcol)
            out[key] = _convert(loader, value_node, (*at, key), doc)
        return out
    return None  # pragma: no cover - PyYAML has no other node kinds



class Findings:
    """The problems a check finds in one file, each located in its ``Doc`` (line 1, column 1
    when there is none, or a question's own place when the Doc has no mark there)."""

    def __init__(self, doc: Doc | None, path: str) -> None:
        self.doc = doc
        self.path = path
        self.problems: list[Problem] = []

    def add(self, at: tuple, message: str, *, key: bool = False) -> None:
        line, col = self.doc.where(at, key=key) if self.doc else (1, 1)
        self.problems.append(Problem(self.path, line, col, message))

    def at_question(self, q: Question, at: tuple, field_: str, message: str) -> None:
        if self.doc and (*at, field_) in self.doc.marks:
            self.add((*at, field_), message)
        else:
            self.problems.append(Problem(self.path, q.line or 1, q.col or 1, message))
