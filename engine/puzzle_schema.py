"""The puzzle and circuit formats: safe YAML reading with positions, the dataclasses, the cards.

This module knows the *shape* of a Lineup file and nothing about models. It has three parts:

``read_yaml(path) -> Doc``
    Safe YAML loading that never raises on bad input. A ``yaml.SafeLoader`` subclass refuses
    aliases (so alias bombs cannot expand), caps nesting depth and file size, reports duplicate
    keys, and records the 1-based line and column of every key and value. Whatever goes wrong
    becomes a ``Problem(path, line, col, message)`` in ``Doc.problems``.

``parse_puzzle(doc) -> (Puzzle | None, problems)`` / ``parse_circuit(doc) -> (Circuit | None, ...)``
    Turn the plain data into dataclasses, reporting every shape problem at once (wrong type,
    missing or unknown key, with a difflib "did you mean"). Parts that are broken are left out
    and the rest is still parsed, so the meaning checks in ``engine.validate`` can run on them.

The dataclasses (``Puzzle``, ``PromptSpec``, ``RoleSpec``, ``Metric``, ``Corruption``,
``ModelBlock``, ``Thresholds``, ``Question``, ``Circuit``) and the card catalogue ``CARDS``.

The public entry points live in ``engine.puzzle``; import from there.
"""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from engine.cards import CARD_ALIASES as CARD_ALIASES
from engine.cards import CARDS as CARDS
from engine.cards import Card as Card
from engine.cards import card_id as card_id
from engine.limits import MAX_HINT, MAX_LABEL, MAX_NAME, MAX_TITLE, too_long

if TYPE_CHECKING:
    from engine.puzzle import PromptSet

MAX_BYTES = 256 * 1024  # a puzzle is a few kilobytes; anything this big is a mistake
MAX_DEPTH = 24  # puzzles nest four or five levels deep
MAX_LIST = 2000  # items in any one list
LADDERS = ("induction", "ioi", "beyond")
LADDER_TITLES = {
    "induction": "Induction: copying what came next last time",
    "ioi": "Indirect objects: who gets the drink?",
    "beyond": "Beyond: when thinking matters",
}
BLOCKS = ("gpt2", "smollm2", "toy")  # one block per model family a puzzle supports
METRIC_KINDS = ("logit_diff", "logprob", "greater_than")
ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a file, located at a 1-based line and column."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (difflib), or None."""
    if not isinstance(word, str):
        return None
    pool = list(choices)
    cutoff = 0.5 if len(word) <= 3 else 0.6  # "S3" is as close to "S2" as short names get
    close = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    if close:
        return close[0]
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[close[0]] if close else None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    best = closest(word, choices)
    return f" (did you mean {best!r}?)" if best else ""


def one_of(choices: Iterable[str]) -> str:
    return ", ".join(str(c) for c in choices)


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Question:
    """One placed card: in ``round``, the person ``asker`` asks ``card`` and ``responder``
    answers. ``responder`` is None for cards that are not questions (``think``)."""

    round: str
    asker: str
    card: str
    responder: str | None = None
    line: int = field(default=0, compare=False)
    col: int = field(default=0, compare=False)

    def as_dict(self) -> dict[str, str]:
        out = {"round": self.round, "asker": self.asker, "card": self.card}
        if self.responder is not None:
            out["responder"] = self.responder
        return out

    def __str__(self) -> str:
        to = f" -> {self.responder}" if self.responder else ""
        return f"[{self.round}] {self.asker}: {self.card}{to}"


@dataclass
class FillSource:
    """Where a template placeholder's words come from: a named list in words.yaml, or a list
    written in the puzzle itself (``list`` is then ``"inline"``)."""

    list: str
    words: list[str]


@dataclass
class PromptSpec:
    templates: list[str]
    fill: dict[str, FillSource]
    count: int = 32
    seed: int = 1
    heldout_count: int = 32
    heldout_seed: int = 2


@dataclass(frozen=True)
class RoleSpec:
    """A named person in the line, found per prompt.

    kind ``occurrence``: the ``nth`` (1-based; -1 = last) occurrence of fill ``fill``;
    ``after`` / ``before``: the token after / before role or selector ``of``;
    ``last`` / ``start``: the last / first token; ``position``: token ``index`` (negative
    counts from the end).
    """

    text: str
    kind: str
    fill: str | None = None
    nth: int = 1
    of: RoleSpec | str | None = None
    index: int = 0


@dataclass
class Metric:
    """``logit_diff``: logit(correct) - logit(wrong) at ``at``; ``logprob``: log p(correct)
    at ``at``; ``greater_than``: p(two-digit numbers above the number at role ``correct``)
    minus p(those at or below it), at ``at``. ``correct``/``wrong`` are role names: the answer
    is the token that person holds."""

    kind: str
    at: str
    correct: str
    wrong: str | None = None


@dataclass
class Corruption:
    """How the corrupted twin of a prompt is made: every item of ``resample`` (a role, a
    selector such as ``first {A}``, or ``{FILL}`` for every occurrence of a fill) gets a new
    word from the same list; with ``distinct`` the new words differ from each other and from
    every word of the clean prompt (for IOI: the ABC distribution)."""

    resample: list[str]
    distinct: bool = True


@dataclass
class Thresholds:
    """What a circuit needs to pass on this model: faithfulness (metric kept when every head
    outside the circuit is mean-ablated, as a fraction of the full model's) on the play
    prompts, and on the held-out prompts (``heldout``; defaults to ``faithfulness``)."""

    faithfulness: float = 0.6
    heldout: float | None = None
    # Completeness (Wang et al.): the circuit behaves like the whole model, not only keeps
    # enough of it. ``within``: faithfulness must lie within this of 1 (a circuit saying the
    # answer more surely than the model left out someone who holds it back). ``without``: a
    # card; with the heads of the circuit's questions of that card silenced in both the
    # model and the circuit, the two must still agree within ``within`` (the circuit holds
    # whoever takes over when they are gone).
    within: float | None = None
    without: str | None = None

    @property
    def heldout_faithfulness(self) -> float:
        return self.faithfulness if self.heldout is None else self.heldout


@dataclass
class ModelBlock:
    """How one model family (``gpt2`` or ``toy``) plays the puzzle."""

    name: str
    rounds: dict[str, tuple[int, int]]  # round name -> inclusive layer range, in order
    solution: list[Question]
    given: list[Question] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    toy: str | None = None  # which bundled toy plays it (toy blocks; default: "toy")
    # Layer ranges the model plays as usual in this puzzle: outside every round, never
    # silenced by the judge, no question placed there. They let a puzzle teach one step
    # while the rest of the line works untouched, without showing (giving away) the rest.
    kept: list[tuple[int, int]] = field(default_factory=list)

    def layers(self, round_name: str) -> range:
        lo, hi = self.rounds[round_name]
        return range(lo, hi + 1)

    def round_of(self, layer: int) -> str | None:
        for name, (lo, hi) in self.rounds.items():
            if lo <= layer <= hi:
                return name
        return None

    def is_kept(self, layer: int) -> bool:
        return any(lo <= layer <= hi for lo, hi in self.kept)


@dataclass
class Puzzle:
    id: str
    title: str
    ladder: str
    order: int
    story: str
    prompts: PromptSpec
    roles: dict[str, RoleSpec]
    metric: Metric
    corrupt: Corruption
    cards: list[str]
    hints: list[str]  # rot13, as written in the file
    models: dict[str, ModelBlock]
    goal: str = ""
    path: Path | None = None
    text: str = field(default="", repr=False)  # the file's text (for cache keys)
    broken: frozenset[str] = frozenset()  # sections that failed to parse (reporting only)

    def block(self, name: str | None) -> ModelBlock | None:
        """The model block for ``gpt2`` or ``toy``; None means the puzzle is locked for it."""
        return self.models.get(name) if name else None

    def locked_for(self, block_name: str | None) -> bool:
        return self.block(block_name) is None

    @property
    def hints_plain(self) -> list[str]:
        return [codecs.encode(h, "rot13") for h in self.hints]

    def hint(self, n: int) -> str:
        """Hint ``n`` (0-based), decoded."""
        return codecs.encode(self.hints[n], "rot13")

    def given(self, block_name: str) -> list[Question]:
        block = self.block(block_name)
        return list(block.given) if block else []

    def build_prompts(self, tokenizer: Any, split: str = "play") -> PromptSet:
        """Seeded prompts (``play`` or ``heldout``), corrupted twins, role positions and answer
        token ids; see ``engine.puzzle.build_prompts``."""
        from engine.puzzle import build_prompts

        return build_prompts(self, tokenizer, split)


@dataclass
class Circuit:
    """A player's circuit file: which puzzle, optionally which model, and the questions."""

    puzzle: str
    questions: list[Question]
    model: str | None = None
    path: Path | None = None

    def to_yaml(self) -> str:
        data: dict[str, Any] = {"puzzle": self.puzzle}
        if self.model:
            data["model"] = self.model
        lines = [yaml.safe_dump(data, sort_keys=False).rstrip(), "questions:"]
        if not self.questions:
            lines[-1] = "questions: []"
        for q in self.questions:  # safe_dump quotes names YAML would misread (on, No, null)
            flow = yaml.safe_dump(q.as_dict(), default_flow_style=True, sort_keys=False)
            lines.append(f"  - {flow.strip()}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- safe YAML


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

Path_ = tuple  # a path into the data: keys and list indices


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


# --------------------------------------------------------------------------- parsing helpers


_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
               list: "a list", dict: "a mapping (key: value)"}


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    for t, name in _TYPE_NAMES.items():
        if type(value) is t:
            return name
    return type(value).__name__


class _Reader:
    """Shape checks over a Doc: each helper reports problems and returns None when wrong."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    def problem(self, at: tuple, message: str, *, key: bool = False) -> None:
        self.doc.problem(at, message, key=key)

    def mapping(self, at: tuple, value: Any, known: Iterable[str], required: Iterable[str] = (),
                what: str = "") -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(at, f"{what or _label(at)} must be a mapping (key: value), "
                             f"not {_type_name(value)}")
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

    def text(self, at: tuple, value: Any, *, what: str = "", empty_ok: bool = False,
             limit: int | None = None) -> str | None:
        """A text; with ``limit``, one of at most that many characters (``engine.limits``)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # `title: 1984` is a title
        if not isinstance(value, str):
            self.problem(at, f"{what or _label(at)} must be text, not {_type_name(value)}")
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
                             f"not {_type_name(value)}")
            return None
        if not lo <= value <= hi:
            self.problem(at, f"{what or _label(at)} must be between {lo} and {hi}, not {value}")
            return None
        return value

    def number(self, at: tuple, value: Any, lo: float, hi: float, *,
               what: str = "") -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(at, f"{what or _label(at)} must be a number, not {_type_name(value)}")
            return None
        if not lo <= value <= hi:
            self.problem(at, f"{what or _label(at)} must be between {lo} and {hi}, not {value}")
            return None
        return float(value)

    def boolean(self, at: tuple, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.problem(at, f"{_label(at)} must be true or false, not {_type_name(value)}")
            return None
        return value

    def seq(self, at: tuple, value: Any, *, what: str = "", empty_ok: bool = False) -> list | None:
        if not isinstance(value, list):
            self.problem(at, f"{what or _label(at)} must be a list, not {_type_name(value)}")
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


def _cut(text: str, keep: int = 40) -> str:
    """The start of a text too long to quote whole in a message."""
    return text if len(text) <= keep else text[:keep] + "..."


def _label(at: tuple) -> str:
    if not at:
        return "the file"
    parts = []
    for p in at:
        parts.append(f"[{p}]" if isinstance(p, int) else ("." if parts else "") + str(p))
    return "`" + "".join(parts) + "`"


# --------------------------------------------------------------------------- words


_WORD_LISTS: dict[str, list[str]] | None = None


def word_lists() -> dict[str, list[str]]:
    """The named word lists of puzzles/words.yaml (read once)."""
    global _WORD_LISTS
    if _WORD_LISTS is None:
        from puzzles import PUZZLES_DIR

        doc = read_yaml(PUZZLES_DIR / "words.yaml")
        lists: dict[str, list[str]] = {}
        if isinstance(doc.data, dict):
            for name, words in doc.data.items():
                if isinstance(words, list):
                    lists[name] = [str(w) for w in words if isinstance(w, (str, int))]
        _WORD_LISTS = lists
    return _WORD_LISTS


# --------------------------------------------------------------------------- roles


ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1}
_FILL_REF = re.compile(r"^\{([A-Za-z][A-Za-z0-9_]*)\}$")


def parse_selector(text: str) -> RoleSpec | str:
    """Parse a role selector; return the RoleSpec, or a message saying what is wrong.

    Grammar: ``last`` | ``start`` | ``{F}`` | ORDINAL ``{F}`` | ``after`` X | ``before`` X |
    ``position`` N, where ORDINAL is first/second/third/fourth/fifth/last and X is a role name
    or another selector."""
    words = text.split()
    if not words:
        return "is empty"
    head = words[0].lower()
    if len(words) == 1:
        if head in ("last", "end"):
            return RoleSpec(text, "last")
        if head in ("start", "first"):
            return RoleSpec(text, "start")
        m = _FILL_REF.match(words[0])
        if m:
            return RoleSpec(text, "occurrence", fill=m.group(1), nth=0)  # 0: the only one
        return (f"{text!r} is not a selector: use e.g. `first {{S}}`, `after S1`, `last`"
                f"{did_you_mean(head, [*ORDINALS, 'after', 'before', 'position', 'start'])}")
    if head in ORDINALS and len(words) == 2:
        m = _FILL_REF.match(words[1])
        if not m:
            return (f"expected a fill in braces after {head!r}, e.g. `{head} {{S}}`, "
                    f"not {words[1]!r}")
        return RoleSpec(text, "occurrence", fill=m.group(1), nth=ORDINALS[head])
    if head in ("after", "before"):
        rest = " ".join(words[1:])
        if len(words) == 2 and NAME_PATTERN.match(words[1]) and not _FILL_REF.match(words[1]):
            return RoleSpec(text, head, of=words[1])
        inner = parse_selector(rest)
        if isinstance(inner, str):
            return inner
        return RoleSpec(text, head, of=inner)
    if head == "position" and len(words) == 2:
        try:
            return RoleSpec(text, "position", index=int(words[1]))
        except ValueError:
            return f"`position` needs a whole number, not {words[1]!r}"
    known = [*ORDINALS, "after", "before", "position", "start"]
    return f"{text!r} is not a selector{did_you_mean(head, known)}"


# --------------------------------------------------------------------------- puzzles


PUZZLE_KEYS = ["id", "title", "ladder", "order", "goal", "story", "prompts", "roles", "metric",
               "corrupt", "cards", "given", "hints", "models"]
PUZZLE_REQUIRED = ["id", "title", "ladder", "order", "story", "prompts", "roles", "metric",
                   "corrupt", "cards", "hints", "models"]
PROMPTS_KEYS = ["templates", "fill", "count", "seed", "heldout"]
HELDOUT_KEYS = ["count", "seed"]
METRIC_KEYS = ["logit_diff", "logprob", "greater_than", "at"]
CORRUPT_KEYS = ["resample", "distinct"]
BLOCK_KEYS = ["rounds", "kept", "solution", "given", "pass", "toy"]
PASS_KEYS = ["faithfulness", "heldout", "within", "without"]
QUESTION_KEYS = ["round", "asker", "card", "responder"]
CIRCUIT_KEYS = ["puzzle", "model", "questions"]
MAX_LAYER = 1000


def parse_puzzle(doc: Doc) -> tuple[Puzzle | None, list[Problem]]:
    """Build a Puzzle from a read Doc. Shape problems go to ``doc.problems``. Whenever the
    file is a mapping a Puzzle is returned, so meaning checks can run on the parts that are
    fine; top-level sections that could not be read (or model blocks, as ``models.gpt2``) are
    named in ``Puzzle.broken`` and hold empty stand-ins. Such a Puzzle is for reporting only:
    ``load_puzzle`` refuses any file with problems."""
    if doc.data is None:
        return None, doc.problems
    r = _Reader(doc)
    top = r.mapping((), doc.data, PUZZLE_KEYS, PUZZLE_REQUIRED, what="a puzzle file")
    if top is None:
        return None, doc.problems
    broken: set[str] = set()

    def get(key: str, fn: Any, *args: Any, **kw: Any) -> Any:
        if key not in top:
            broken.add(key)
            return None
        value = fn((key,), top[key], *args, **kw)
        if value is None:
            broken.add(key)
        return value

    pid = get("id", r.text, limit=MAX_NAME)
    if pid is not None and not ID_PATTERN.match(pid):
        r.problem(("id",), f"id {pid!r} must be lowercase words joined by '-', e.g. ioi-name-mover")
        broken.add("id")
    title = get("title", r.text, limit=MAX_TITLE)
    ladder = get("ladder", r.text, limit=MAX_NAME)
    if ladder is not None and ladder not in LADDERS:
        r.problem(("ladder",), f"unknown ladder {ladder!r}{did_you_mean(ladder, LADDERS)}; "
                               f"use one of {one_of(LADDERS)}")
        broken.add("ladder")
        ladder = None
    order = get("order", r.integer, 1, 999)
    story = get("story", r.text)
    goal = get("goal", r.text) if "goal" in top else ""
    prompts = get("prompts", _parse_prompts, r)
    roles = get("roles", _parse_roles, r)
    metric = get("metric", _parse_metric, r)
    corrupt = get("corrupt", _parse_corrupt, r)
    cards = get("cards", _parse_cards, r)
    hints = get("hints", _parse_hints, r)
    top_given = get("given", _parse_questions, r, empty_ok=True) if "given" in top else []
    models = get("models", _parse_models, r, top_given or [], broken)
    puzzle = Puzzle(
        id=pid or "", title=title or "", ladder=ladder or LADDERS[-1], order=order or 0,
        story=story or "", prompts=prompts or PromptSpec([], {}), roles=roles or {},
        metric=metric or Metric("logprob", "", ""), corrupt=corrupt or Corruption([]),
        cards=cards or [], hints=hints or [], models=models or {}, goal=goal or "",
        path=Path(doc.path), text=doc.text, broken=frozenset(broken),
    )
    return puzzle, doc.problems


def _parse_prompts(at: tuple, value: Any, r: _Reader) -> PromptSpec | None:
    m = r.mapping(at, value, PROMPTS_KEYS, ["templates", "fill"])
    if m is None:
        return None
    ok = True
    templates: list[str] = []
    raw = r.seq((*at, "templates"), m["templates"]) if "templates" in m else None
    if raw is None:
        ok = False
    else:
        for i, t in enumerate(raw):
            text = r.text((*at, "templates", i), t, what=f"template {i + 1}")
            if text is None:
                ok = False
            else:
                templates.append(text)
    fill: dict[str, FillSource] = {}
    fm = r.mapping((*at, "fill"), m["fill"], m["fill"] if isinstance(m.get("fill"), dict) else [])\
        if "fill" in m else None
    if fm is None:
        ok = False
    else:
        lists = word_lists()
        for name, source in fm.items():
            where = (*at, "fill", name)
            if too_long(name):
                r.problem(where, f"fill name {_cut(name)!r} {too_long(name)}", key=True)
                ok = False
                continue
            if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", name):
                r.problem(where, f"fill name {name!r} must be a letter then letters, digits or _",
                          key=True)
                ok = False
                continue
            if isinstance(source, str):
                if source not in lists:
                    r.problem(where, f"unknown word list {source!r}{did_you_mean(source, lists)};"
                                     f" puzzles/words.yaml has {one_of(lists)}")
                    ok = False
                    continue
                fill[name] = FillSource(source, list(lists[source]))
            elif isinstance(source, list):
                words = []
                for j, w in enumerate(source):
                    if not isinstance(w, str) or not w.strip() or w != w.strip():
                        r.problem((*where, j), "each word must be text without surrounding "
                                               f"spaces, not {_type_name(w)} {w!r}")
                        ok = False
                    else:
                        words.append(w)
                if len(set(words)) != len(words):
                    r.problem(where, f"fill {name!r} lists a word twice")
                    ok = False
                if not words:
                    r.problem(where, f"fill {name!r} has no words")
                    ok = False
                fill[name] = FillSource("inline", words)
            else:
                r.problem(where, f"fill {name!r} must name a word list (e.g. names) or list "
                                 f"words, not {_type_name(source)}")
                ok = False
    count = r.integer((*at, "count"), m["count"], 1, 1024) if "count" in m else 32
    seed = r.integer((*at, "seed"), m["seed"], 0, 2**31) if "seed" in m else 1
    hcount, hseed = count, (seed + 1 if seed is not None else None)
    if "heldout" in m:
        h = r.mapping((*at, "heldout"), m["heldout"], HELDOUT_KEYS)
        if h is None:
            ok = False
        else:
            if "count" in h:
                hcount = r.integer((*at, "heldout", "count"), h["count"], 1, 1024)
            if "seed" in h:
                hseed = r.integer((*at, "heldout", "seed"), h["seed"], 0, 2**31)
    if not ok or None in (count, seed, hcount, hseed):
        return None
    return PromptSpec(templates, fill, count, seed, hcount, hseed)


def _parse_roles(at: tuple, value: Any, r: _Reader) -> dict[str, RoleSpec] | None:
    m = r.mapping(at, value, value if isinstance(value, dict) else [])
    if m is None:
        return None
    if not m:
        r.problem(at, "`roles` is empty: name at least the person who makes the prediction")
        return None
    roles: dict[str, RoleSpec] = {}
    ok = True
    for name, sel in m.items():
        if (long := too_long(name, MAX_LABEL)) or not NAME_PATTERN.match(name):
            r.problem((*at, name), f"role name {_cut(name)!r} {long}" if long else
                      f"role name {name!r} must be a letter, then letters, digits, _, + or -",
                      key=True)
            ok = False
            continue
        text = r.text((*at, name), sel, what=f"role {name}", limit=MAX_NAME)
        if text is None:
            ok = False
            continue
        spec = parse_selector(text)
        if isinstance(spec, str):
            r.problem((*at, name), f"role {name}: {spec}")
            ok = False
            continue
        roles[name] = spec
    return roles if ok else None


def _parse_metric(at: tuple, value: Any, r: _Reader) -> Metric | None:
    m = r.mapping(at, value, METRIC_KEYS, ["at"])
    if m is None:
        return None
    kinds = [k for k in METRIC_KINDS if k in m]
    if len(kinds) != 1:
        r.problem(at, f"`metric` needs exactly one of {one_of(METRIC_KINDS)}"
                      + (f", not {len(kinds)}" if kinds else ""))
        return None
    kind = kinds[0]
    at_role = r.name((*at, "at"), m["at"], what="metric `at`") if "at" in m else None
    body = m[kind]
    if kind == "logit_diff":
        d = r.mapping((*at, kind), body, ["correct", "wrong"], ["correct", "wrong"])
        if d is None or "correct" not in d or "wrong" not in d:
            return None
        correct = r.name((*at, kind, "correct"), d["correct"], what="`correct`")
        wrong = r.name((*at, kind, "wrong"), d["wrong"], what="`wrong`")
        if None in (correct, wrong, at_role):
            return None
        return Metric(kind, at_role, correct, wrong)
    role = r.name((*at, kind), body, what=f"`{kind}`")
    if None in (role, at_role):
        return None
    return Metric(kind, at_role, role)


def _parse_corrupt(at: tuple, value: Any, r: _Reader) -> Corruption | None:
    m = r.mapping(at, value, CORRUPT_KEYS, ["resample"])
    if m is None or "resample" not in m:
        return None
    items = r.seq((*at, "resample"), m["resample"])
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        text = r.text((*at, "resample", i), item, what="a resample item", limit=MAX_NAME)
        if text is None:
            return None
        out.append(text.strip())
    distinct = r.boolean((*at, "distinct"), m["distinct"]) if "distinct" in m else True
    if distinct is None:
        return None
    return Corruption(out, distinct)


def _parse_cards(at: tuple, value: Any, r: _Reader) -> list[str] | None:
    items = r.seq(at, value)
    if items is None:
        return None
    out: list[str] = []
    ok = True
    for i, item in enumerate(items):
        text = r.text((*at, i), item, what="a card", limit=MAX_NAME)
        if text is None:
            ok = False
            continue
        cid = card_id(text)
        if cid not in CARDS:
            r.problem((*at, i), f"unknown card {text!r}{did_you_mean(text, CARDS)}; "
                                f"cards are {one_of(CARDS)}")
            ok = False
        elif cid in out:
            r.problem((*at, i), f"card {cid!r} is offered twice")
            ok = False
        else:
            out.append(cid)
    return out if ok else None


def _parse_hints(at: tuple, value: Any, r: _Reader) -> list[str] | None:
    items = r.seq(at, value)
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        text = r.text((*at, i), item, what=f"hint {i + 1}", limit=MAX_HINT)
        if text is None:
            return None
        out.append(text.strip())
    return out


def _parse_questions(at: tuple, value: Any, r: _Reader, *, empty_ok: bool = False
                     ) -> list[Question] | None:
    items = r.seq(at, value, empty_ok=empty_ok)
    if items is None:
        return None
    out: list[Question] = []
    ok = True
    for i, item in enumerate(items):
        q = parse_question((*at, i), item, r)
        if q is None:
            ok = False
        else:
            out.append(q)
    return out if ok else None


def parse_question(at: tuple, value: Any, r: _Reader) -> Question | None:
    """One question: ``{round, asker, card, responder}`` (``question`` is accepted for
    ``card``, as in early design notes)."""
    if isinstance(value, dict) and "question" in value and "card" not in value:
        value = dict(value)
        value["card"] = value.pop("question")
        r.doc.marks[(*at, "card")] = r.doc.where((*at, "question"))
    m = r.mapping(at, value, QUESTION_KEYS, ["round", "asker", "card"], what="a question")
    if m is None or not all(k in m for k in ("round", "asker", "card")):
        return None
    rnd = r.name((*at, "round"), m["round"], what="round")
    asker = r.name((*at, "asker"), m["asker"], what="asker")
    card = r.text((*at, "card"), m["card"], what="card", limit=MAX_NAME)
    responder = r.name((*at, "responder"), m["responder"], what="responder") \
        if m.get("responder") is not None else None
    if None in (rnd, asker, card) or ("responder" in m and m["responder"] is not None
                                      and responder is None):
        return None
    line, col = r.doc.where(at)
    return Question(rnd, asker, card_id(card), responder, line, col)


def _parse_models(at: tuple, value: Any, r: _Reader, top_given: list[Question],
                  broken: set[str]) -> dict[str, ModelBlock] | None:
    m = r.mapping(at, value, BLOCKS)
    if m is None:
        return None
    if not m:
        r.problem(at, f"`models` is empty: give at least one of {one_of(BLOCKS)}")
        return None
    out: dict[str, ModelBlock] = {}
    for name, body in m.items():
        if name not in BLOCKS:
            continue
        block = _parse_block((*at, name), name, body, r, top_given)
        if block is None:
            broken.add(f"models.{name}")
        else:
            out[name] = block
    return out


def _parse_block(at: tuple, name: str, value: Any, r: _Reader, top_given: list[Question]
                 ) -> ModelBlock | None:
    m = r.mapping(at, value, BLOCK_KEYS, ["rounds", "solution"], what=f"model block {name!r}")
    if m is None:
        return None
    ok = True
    rounds: dict[str, tuple[int, int]] = {}
    rm = r.mapping((*at, "rounds"), m["rounds"], m["rounds"] if isinstance(m.get("rounds"), dict)
                   else []) if "rounds" in m else None
    if rm is None:
        ok = False
    elif not rm:
        r.problem((*at, "rounds"), "`rounds` is empty: name at least one round")
        ok = False
    else:
        for rname, span in rm.items():
            where = (*at, "rounds", rname)
            if (long := too_long(rname, MAX_LABEL)) or not NAME_PATTERN.match(rname):
                r.problem(where, f"round name {_cut(rname)!r} {long}" if long else
                          f"round name {rname!r} must be a letter, then letters, digits, _, + "
                          "or -", key=True)
                ok = False
                continue
            if isinstance(span, int) and not isinstance(span, bool):
                span = [span, span]
            if (not isinstance(span, list) or len(span) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)):
                r.problem(where, f"round {rname!r} must be a layer range [first, last] or one "
                                 f"layer, not {_type_name(span)}")
                ok = False
                continue
            lo, hi = span
            if lo < 0 or hi > MAX_LAYER or lo > hi:
                r.problem(where, f"round {rname!r}: [{lo}, {hi}] is not a range of layers "
                                 "(first <= last, from 0)")
                ok = False
                continue
            rounds[rname] = (lo, hi)
    kept: list[tuple[int, int]] = []
    if "kept" in m:
        spans = m["kept"]
        if isinstance(spans, int) and not isinstance(spans, bool):
            spans = [spans]
        if not isinstance(spans, list) or not spans:
            r.problem((*at, "kept"), "`kept` must be a list of layer ranges ([first, last] or "
                                     f"one layer), not {_type_name(m['kept'])}")
            ok = False
            spans = []
        if spans and all(isinstance(x, int) and not isinstance(x, bool) for x in spans) \
                and len(spans) == 2:
            spans = [spans]  # `kept: [0, 8]` is one range, not layers 0 and 8
        for i, span in enumerate(spans):
            where = (*at, "kept", i)
            if isinstance(span, int) and not isinstance(span, bool):
                span = [span, span]
            if (not isinstance(span, list) or len(span) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
                    or span[0] < 0 or span[1] > MAX_LAYER or span[0] > span[1]):
                r.problem(where, "each `kept` entry must be a layer range [first, last] "
                                 "(first <= last, from 0) or one layer")
                ok = False
                continue
            kept.append((span[0], span[1]))
    solution = _parse_questions((*at, "solution"), m["solution"], r) if "solution" in m else None
    given = (_parse_questions((*at, "given"), m["given"], r, empty_ok=True)
             if "given" in m else list(top_given))
    thresholds = Thresholds()
    if "pass" in m:
        pm = r.mapping((*at, "pass"), m["pass"], PASS_KEYS)
        if pm is None:
            ok = False
        else:
            if "faithfulness" in pm:
                f = r.number((*at, "pass", "faithfulness"), pm["faithfulness"], 0.0, 1.0,
                             what="faithfulness")
                ok = ok and f is not None
                thresholds.faithfulness = f if f is not None else 0.6
            if "heldout" in pm:
                h = r.number((*at, "pass", "heldout"), pm["heldout"], 0.0, 1.0, what="heldout")
                ok = ok and h is not None
                thresholds.heldout = h
            if "within" in pm:
                w = r.number((*at, "pass", "within"), pm["within"], 0.0, 1.0, what="within")
                ok = ok and w is not None
                thresholds.within = w
            if "without" in pm:
                c = r.name((*at, "pass", "without"), pm["without"], what="without")
                ok = ok and c is not None
                thresholds.without = c
                if "within" not in pm:
                    r.problem((*at, "pass", "without"), "`without` needs `within`: how closely "
                                                        "the circuit must follow the model")
                    ok = False
    toy = None
    if "toy" in m:
        if name != "toy":
            r.problem((*at, "toy"), "`toy` (which bundled toy plays the block) belongs in the "
                                    "toy block only", key=True)
            ok = False
        else:
            toy = r.name((*at, "toy"), m["toy"], what="toy")
            ok = ok and toy is not None
    if not ok or solution is None or given is None:
        return None
    return ModelBlock(name, rounds, solution, given, thresholds, toy, kept)


# --------------------------------------------------------------------------- circuits


def parse_circuit(doc: Doc) -> tuple[Circuit | None, list[Problem]]:
    """Build a Circuit from a read Doc (shape only; ``engine.validate.check_circuit`` checks
    it against a puzzle)."""
    if doc.data is None:
        return None, doc.problems
    r = _Reader(doc)
    top = r.mapping((), doc.data, CIRCUIT_KEYS, ["puzzle", "questions"], what="a circuit file")
    if top is None or "puzzle" not in top or "questions" not in top:
        return None, doc.problems
    puzzle = r.text(("puzzle",), top["puzzle"], what="`puzzle`", limit=MAX_NAME)
    model = r.text(("model",), top["model"], what="`model`", limit=MAX_NAME) \
        if top.get("model") else None
    questions = _parse_questions(("questions",), top["questions"], r, empty_ok=True)
    if puzzle is None or questions is None or (top.get("model") and model is None):
        return None, doc.problems
    return Circuit(puzzle, questions, model, Path(doc.path)), doc.problems
