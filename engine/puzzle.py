"""Puzzles and circuits: load them, build their prompts, find each role in each prompt.

This is the API the judge, the TUI and the CLI use. The file format and its dataclasses live in
``engine.puzzle_schema``; the meaning checks in ``engine.validate``. Everything is re-exported
here, so callers import from ``engine.puzzle`` only.

Loading
    ``load_puzzle(path) -> Puzzle``          read, shape-check and meaning-check one file
                                             (no tokenizer: stays light); raises ``PuzzleError``
                                             whose ``.problems`` lists every ``Problem``.
    ``load_all(problems=None) -> list[Puzzle]``  the shipped puzzles in ladder order (induction,
                                             ioi, beyond; then ``order``). With a ``problems``
                                             list, broken files are skipped and reported there.
    ``find_puzzle(id_or_path) -> Puzzle``     a shipped id (with "did you mean") or a file path.
    ``load_circuit(path) -> Circuit``         a player's circuit file (``Circuit.questions`` is a
                                             list of ``Question(round, asker, card, responder)``).
    ``check_circuit(circuit, puzzle, block, tokenizer=None) -> list[Problem]``  a circuit
                                             against a puzzle's block (rounds, roles, cards).
    ``validate_paths(paths, model=None) -> list[Problem]``  everything ``lineup validate`` does.

Prompts
    ``Puzzle.build_prompts(tokenizer, split="play"|"heldout") -> PromptSet``: the seeded prompts,
    their corrupted twins, token ids, each role's position per prompt (``roles[name][i]``), and
    the answer token ids the metric compares (``correct[i]`` / ``wrong[i]``, lists of ids).
    The tokenizer is any Hugging Face tokenizer (``engine.models.load_tokenizer(spec)`` or
    ``LoadedModel.tokenizer``); nothing here loads weights.

Blocks: ``Puzzle.models`` maps ``gpt2`` / ``toy`` to a ``ModelBlock`` (``rounds``: name ->
inclusive layer range, ``solution``, ``given``, ``thresholds``); ``Puzzle.block(name)`` is None
when the puzzle is locked for that model. ``LoadedModel.block`` says which block a model
plays. The given questions are always part of a player's circuit. A ``think`` question has
``responder=None``.

Seeds: the play set uses ``prompts.seed``; the held-out set ``prompts.heldout.seed`` (default
seed + 1) and never repeats a play prompt when the word lists allow. Prompt ``i`` uses template
``i % len(templates)``, so templates are balanced (IOI: ABBA and BABA alike).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import LineupError, UsageError
from engine.limits import too_long
from engine.puzzle_schema import (
    BLOCKS,
    CARD_ALIASES,
    CARDS,
    LADDERS,
    PLACEHOLDER,
    Card,
    Circuit,
    Corruption,
    Doc,
    FillSource,
    Metric,
    ModelBlock,
    Problem,
    PromptSpec,
    Puzzle,
    Question,
    RoleSpec,
    Thresholds,
    card_id,
    did_you_mean,
    one_of,
    parse_circuit,
    parse_puzzle,
    read_yaml,
    word_lists,
)

__all__ = [
    "BLOCKS",
    "CARDS",
    "CARD_ALIASES",
    "LADDERS",
    "Card",
    "Circuit",
    "Corruption",
    "Doc",
    "FillSource",
    "Metric",
    "ModelBlock",
    "Problem",
    "PromptSet",
    "PromptSpec",
    "Puzzle",
    "PuzzleError",
    "Question",
    "QuestionProblem",
    "RoleSpec",
    "Template",
    "Thresholds",
    "build_prompts",
    "card_id",
    "check_circuit",
    "find_puzzle",
    "load_all",
    "load_circuit",
    "load_puzzle",
    "puzzle_files",
    "question_problem",
    "question_problems",
    "stands_behind",
    "validate_paths",
    "word_lists",
]


class PuzzleError(LineupError):
    """A puzzle or circuit file has problems; ``problems`` lists them all."""

    title = "Puzzle error"

    def __init__(self, problems: Sequence[Problem], what: str = "file") -> None:
        self.problems = list(problems)
        first = str(self.problems[0]) if self.problems else f"bad {what}"
        more = len(self.problems) - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''}; run `lineup validate`)" \
            if more > 0 else ""
        super().__init__(first + extra)


# --------------------------------------------------------------------------- loading


def shipped_dir() -> Path:
    from puzzles import PUZZLES_DIR

    return PUZZLES_DIR


def puzzle_files(root: Path | None = None) -> list[Path]:
    """Every puzzle file under ``root`` (default: the shipped puzzles), sorted by path."""
    root = root or shipped_dir()
    return sorted(
        p for p in root.rglob("*")
        if p.suffix in (".yaml", ".yml") and p.name != "words.yaml" and p.is_file()
    )


def load_puzzle(path: str | Path) -> Puzzle:
    """Read one puzzle file and check it (everything that needs no tokenizer)."""
    from engine.validate import check_puzzle

    doc = read_yaml(path)
    puzzle, problems = parse_puzzle(doc)
    if puzzle is not None:
        problems = problems + check_puzzle(puzzle, doc)
    if problems or puzzle is None:
        raise PuzzleError(sorted(problems) or [Problem(str(path), 1, 1, "not a puzzle")],
                          "puzzle")
    return puzzle


def _sort_key(p: Puzzle) -> tuple[int, int, str]:
    return (LADDERS.index(p.ladder), p.order, p.id)


def load_all(problems: list[Problem] | None = None) -> list[Puzzle]:
    """The shipped puzzles in ladder order. A broken file raises ``PuzzleError`` unless a
    ``problems`` list is given, in which case it is skipped and its problems appended."""
    out = []
    for path in puzzle_files():
        try:
            out.append(load_puzzle(path))
        except PuzzleError as exc:
            if problems is None:
                raise
            problems.extend(exc.problems)
    return sorted(out, key=_sort_key)


def find_puzzle(id_or_path: str | Path) -> Puzzle:
    """A shipped puzzle by id, or any puzzle file by path."""
    text = str(id_or_path)
    if looks_like_id(text) and too_long(text):  # never handed to the file system
        raise UsageError(f"no puzzle has that id: it {too_long(text)}")
    path = Path(text).expanduser()
    if path.is_file():
        return load_puzzle(path)
    if path.suffix in (".yaml", ".yml") or "/" in text:
        raise UsageError(f"puzzle file {text} does not exist")
    ids = {}
    for file in puzzle_files():
        doc = read_yaml(file)
        if isinstance(doc.data, dict) and isinstance(doc.data.get("id"), str):
            ids[doc.data["id"]] = file
    if text in ids:
        return load_puzzle(ids[text])
    raise UsageError(f"no puzzle called {text!r}{did_you_mean(text, ids)}; "
                     "`lineup list` shows them all")


def looks_like_id(text: str) -> bool:
    """An id rather than a path: no folder separator and no YAML suffix."""
    return "/" not in text and os.sep not in text and not text.endswith((".yaml", ".yml"))


def load_circuit(path: str | Path) -> Circuit:
    """Read a player's circuit file (shape only; check it against its puzzle with
    ``engine.validate.check_circuit``). Raises ``PuzzleError`` listing every problem."""
    doc = read_yaml(path)
    circuit, problems = parse_circuit(doc)
    if problems or circuit is None:
        raise PuzzleError(sorted(problems) or [Problem(str(path), 1, 1, "not a circuit")],
                          "circuit")
    return circuit


def check_circuit(circuit: Circuit, puzzle: Puzzle, block_name: str,
                  tokenizer: Any = None) -> list[Problem]:
    """Problems of a circuit against a puzzle for one model block (``gpt2`` or ``toy``):
    unknown rounds, roles or cards (with "did you mean"), cards the puzzle does not offer,
    and, given a tokenizer, responders standing in front of their askers."""
    from engine.validate import check_circuit as _check

    doc = read_yaml(circuit.path) if circuit.path and circuit.path.is_file() else None
    return _check(circuit, puzzle, block_name, doc, tokenizer)


def validate_paths(paths: Iterable[str | Path], model: str | None = None,
                   notes: list[str] | None = None) -> list[Problem]:
    """See ``engine.validate.validate_paths``."""
    from engine.validate import validate_paths as _validate

    return _validate(paths, model=model, notes=notes)


# --------------------------------------------------------------------------- question validity


def stands_behind(responder: Sequence[int], asker: Sequence[int]) -> bool:
    """The one rule for where a responder may stand: strictly behind the asker (an earlier
    position) in every prompt. Someone at the asker's own position is the asker, and thinking
    alone is the think card, not a question."""
    return all(r < a for r, a in zip(responder, asker, strict=True))


def behind_message(responder: str, asker: str) -> str:
    return (f"{responder} stands in front of {asker}: a question is heard only by the "
            "people behind the asker")


@dataclass(frozen=True)
class QuestionProblem:
    """One reason a question cannot be asked. ``field`` is the part of the question it is
    about (where the validator points); ``kind`` lets a caller leave out what it already
    reports elsewhere (``role`` when the roles themselves are broken, ``not-offered`` when
    the card list is)."""

    field: str  # round | asker | card | responder
    kind: str  # round | role | unknown-card | not-offered | responder | behind
    message: str


def question_problems(q: Question, puzzle: Puzzle, block: ModelBlock,
                      positions: dict[str, list[int]] | None = None) -> list[QuestionProblem]:
    """The one rule for whether a question can be asked in a puzzle's block, every reason
    at once. ``lineup validate`` (located), the judge and the game (the first reason) all
    read this. With ``positions`` (each role's position per prompt, ``PromptSet.roles``) the
    responder must also stand behind the asker in every prompt (``stands_behind``)."""
    out: list[QuestionProblem] = []
    roles = list(puzzle.roles)
    if q.round not in block.rounds:
        out.append(QuestionProblem("round", "round", (
            f"no round called {q.round!r}{did_you_mean(q.round, block.rounds)}; "
            f"the {block.name} rounds are {one_of(block.rounds)}")))
    for field_, role in (("asker", q.asker), ("responder", q.responder)):
        if role is not None and role not in roles:
            out.append(QuestionProblem(field_, "role", (
                f"{field_}: no role called {role!r}{did_you_mean(role, roles)}; "
                f"roles are {one_of(roles)}")))
    cid = card_id(q.card)
    card = CARDS.get(cid)
    if card is None:
        out.append(QuestionProblem("card", "unknown-card", (
            f"unknown card {q.card!r}{did_you_mean(q.card, CARDS)}; "
            f"this puzzle offers {one_of(puzzle.cards)}")))
        return out
    if cid not in [card_id(c) for c in puzzle.cards]:
        out.append(QuestionProblem("card", "not-offered", (
            f"card {q.card!r} is not offered by this puzzle"
            f"{did_you_mean(q.card, puzzle.cards)}; it offers {one_of(puzzle.cards)}")))
    if not card.responder:
        if q.responder not in (None, q.asker):
            out.append(QuestionProblem("responder", "responder", (
                f"card {q.card!r} is not a question: nobody answers it, so leave out "
                "`responder`")))
    elif q.responder is None:
        out.append(QuestionProblem("card", "responder", (
            f"card {q.card!r} is a question: say who answers it (`responder`)")))
    elif q.responder == q.asker:
        out.append(QuestionProblem("responder", "responder", (
            f"{q.asker} cannot ask themself: a question is heard only by the people behind "
            "the asker (thinking alone is the think card)")))
    elif positions is not None and q.responder in positions and q.asker in positions and \
            not stands_behind(positions[q.responder], positions[q.asker]):
        out.append(QuestionProblem("responder", "behind", behind_message(q.responder, q.asker)))
    return out


def question_problem(q: Question, puzzle: Puzzle, block: ModelBlock,
                     positions: dict[str, list[int]] | None = None) -> str | None:
    """The first reason of ``question_problems``, or None: what the judge says of a question
    it cannot grade at all."""
    problems = question_problems(q, puzzle, block, positions)
    return problems[0].message if problems else None


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    """A template split into literal text and placeholders.

    ``pieces`` alternates literal text and fill names: ``literals[k]`` comes before
    occurrence ``k``; the last literal closes the template. ``occurrences[k]`` is the fill
    name of the k-th placeholder, in order."""

    text: str
    literals: tuple[str, ...]
    occurrences: tuple[str, ...]

    @staticmethod
    def parse(text: str) -> Template:
        literals, occurrences, last = [], [], 0
        for m in PLACEHOLDER.finditer(text):
            literals.append(text[last:m.start()])
            occurrences.append(m.group(1).strip())
            last = m.end()
        literals.append(text[last:])
        return Template(text, tuple(literals), tuple(occurrences))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name in self.occurrences:
            out[name] = out.get(name, 0) + 1
        return out

    def occurrence(self, fill: str, nth: int) -> int | None:
        """Index of the ``nth`` occurrence (1-based; -1 last; 0 the only one) of ``fill``."""
        hits = [k for k, name in enumerate(self.occurrences) if name == fill]
        if not hits:
            return None
        if nth == 0:
            return hits[0] if len(hits) == 1 else None
        if nth == -1:
            return hits[-1]
        return hits[nth - 1] if nth <= len(hits) else None

    def render(self, words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
        """The text with ``words`` (one per occurrence) filled in, and each word's character
        span *including the whitespace just before it* (GPT-2 attaches it to the word)."""
        out: list[str] = []
        spans = []
        pos = 0
        for k, word in enumerate(words):
            lit = self.literals[k]
            out.append(lit)
            pos += len(lit)
            stripped = len(lit) - len(lit.rstrip())
            start = pos - stripped
            out.append(word)
            pos += len(word)
            spans.append((start, pos))
        out.append(self.literals[-1])
        return "".join(out), spans


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids without special tokens (a fast tokenizer's Rust backend directly: the same
    ids, without the Python wrapper's cost, which dominates for short texts)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return list(backend.encode(text, add_special_tokens=False).ids)
    return list(tokenizer.encode(text, add_special_tokens=False))


def locate(tokenizer: Any, text: str, spans: Sequence[tuple[int, int]]
           ) -> tuple[list[int], list[int | None]]:
    """Token ids of ``text`` and the token position of each span, or None where the span is
    not exactly one token in context (checked by tokenizing the prefixes)."""
    ids = encode(tokenizer, text)
    positions: list[int | None] = []
    for a, b in spans:
        before = encode(tokenizer, text[:a])
        through = encode(tokenizer, text[:b])
        ok = (
            len(through) == len(before) + 1
            and through[: len(before)] == before
            and ids[: len(through)] == through
        )
        positions.append(len(before) if ok else None)
    return ids, positions


# --------------------------------------------------------------------------- roles


class RoleError(LineupError):
    """A role cannot be found in a prompt (the validator reports these before play)."""


def resolve_roles(puzzle: Puzzle, template: Template, occurrence_positions: Sequence[int | None],
                  n_tokens: int) -> dict[str, int]:
    """Each role's token position in one prompt, given where each fill occurrence landed."""
    out: dict[str, int] = {}

    def pos(spec: RoleSpec | str, stack: tuple[str, ...]) -> int:
        if isinstance(spec, str):
            if spec in out:
                return out[spec]
            if spec in stack:
                loop = " -> ".join((*stack, spec))
                raise RoleError(f"roles refer to each other in a loop: {loop}")
            if spec not in puzzle.roles:
                raise RoleError(f"unknown role {spec!r}")
            value = pos(puzzle.roles[spec], (*stack, spec))
            out[spec] = value
            return value
        if spec.kind == "last":
            return n_tokens - 1
        if spec.kind == "start":
            return 0
        if spec.kind == "position":
            p = spec.index if spec.index >= 0 else n_tokens + spec.index
        elif spec.kind == "occurrence":
            k = template.occurrence(spec.fill or "", spec.nth)
            if k is None:
                raise RoleError(f"{spec.text!r}: template has no such occurrence of "
                                f"{{{spec.fill}}}")
            found = occurrence_positions[k]
            if found is None:
                raise RoleError(f"{spec.text!r}: the word there is not one token")
            p = found
        else:
            base = pos(spec.of, stack)  # type: ignore[arg-type]
            p = base + 1 if spec.kind == "after" else base - 1
        if not 0 <= p < n_tokens:
            raise RoleError(f"{spec.text!r} falls outside the prompt (position {p} of {n_tokens})")
        return p

    for name in puzzle.roles:
        pos(name, ())
    return out


def occurrence_of(puzzle: Puzzle, template: Template, item: str) -> list[int] | None:
    """The occurrence indices a role, selector or ``{FILL}`` stands on, or None."""
    from engine.puzzle_schema import parse_selector

    item = item.strip()
    if item.startswith("{") and item.endswith("}"):
        name = item[1:-1].strip()
        hits = [k for k, f in enumerate(template.occurrences) if f == name]
        return hits or None
    spec: RoleSpec | str = puzzle.roles[item] if item in puzzle.roles else parse_selector(item)
    if isinstance(spec, str) or spec.kind != "occurrence":
        return None
    k = template.occurrence(spec.fill or "", spec.nth)
    return None if k is None else [k]


# --------------------------------------------------------------------------- sampling


@dataclass
class RawPrompt:
    """A sampled prompt before tokenization: which template, the fills, the words per
    occurrence, and the corrupted twin's words."""

    template: int
    fills: dict[str, str]
    words: list[str]
    corrupted_words: list[str]


def _list_key(name: str, source: FillSource) -> str:
    return source.list if source.list != "inline" else f"inline:{name}"


def sample(puzzle: Puzzle, split: str = "play") -> list[RawPrompt]:
    """The seeded prompts of a split, without any tokenizer."""
    if split not in ("play", "heldout"):
        raise UsageError(f"unknown prompt split {split!r}: use play or heldout")
    spec = puzzle.prompts
    templates = [Template.parse(t) for t in spec.templates]
    play = _sample(puzzle, templates, spec.count, spec.seed, avoid=set())
    if split == "play":
        return play
    seen = {(p.template, tuple(sorted(p.fills.items()))) for p in play}
    return _sample(puzzle, templates, spec.heldout_count, spec.heldout_seed, avoid=seen)


def _sample(puzzle: Puzzle, templates: list[Template], count: int, seed: int,
            avoid: set) -> list[RawPrompt]:
    spec = puzzle.prompts
    rng = random.Random(seed)
    plans = [_corruption_plan(puzzle, t) for t in templates]
    out: list[RawPrompt] = []
    for i in range(count):
        t_index = i % len(templates)
        template = templates[t_index]
        fills: dict[str, str] = {}
        for _attempt in range(20):
            fills = _draw(rng, spec.fill, {})
            if (t_index, tuple(sorted(fills.items()))) not in avoid:
                break
        words = [fills[name] for name in template.occurrences]
        corrupted = _corrupt(rng, puzzle, plans[t_index], template, fills, words)
        out.append(RawPrompt(t_index, fills, words, corrupted))
    return out


def _draw(rng: random.Random, fill: dict[str, FillSource], taken: dict[str, set[str]]
          ) -> dict[str, str]:
    """One word per fill; fills drawing from the same list always get different words."""
    out = {}
    used = {k: set(v) for k, v in taken.items()}
    for name, source in fill.items():
        key = _list_key(name, source)
        taken = used.setdefault(key, set())
        word = rng.choice(source.words)
        if word in taken:  # rejection keeps it fast; the pool is the fallback
            pool = [w for w in source.words if w not in taken]
            if not pool:
                raise RoleError(f"word list {source.list!r} has too few words for fill {name!r}")
            word = rng.choice(pool)
        taken.add(word)
        out[name] = word
    return out


def _corruption_plan(puzzle: Puzzle, template: Template) -> list[list[int]]:
    """For each ``corrupt.resample`` item, the occurrences it changes in ``template``."""
    plan = []
    for item in puzzle.corrupt.resample:
        hits = occurrence_of(puzzle, template, item)
        if not hits:
            raise RoleError(f"corrupt: {item!r} does not stand on a fill in {template.text!r}")
        plan.append(hits)
    return plan


def _corrupt(rng: random.Random, puzzle: Puzzle, plan: list[list[int]], template: Template,
             fills: dict[str, str], words: list[str]) -> list[str]:
    new = list(words)
    used: dict[str, set[str]] = {}
    if puzzle.corrupt.distinct:
        for name, word in fills.items():
            used.setdefault(_list_key(name, puzzle.prompts.fill[name]), set()).add(word)
    for item, hits in zip(puzzle.corrupt.resample, plan, strict=True):
        name = template.occurrences[hits[0]]
        source = puzzle.prompts.fill[name]
        key = _list_key(name, source)
        taken = used.get(key, set())
        word = rng.choice(source.words)
        if word in taken or word == words[hits[0]]:  # rejection first, the pool as fallback
            pool = [w for w in source.words if w not in taken and w != words[hits[0]]]
            if not pool:
                raise RoleError(f"word list {source.list!r} has too few words to corrupt "
                                f"{item!r}")
            word = rng.choice(pool)
        if puzzle.corrupt.distinct:
            used.setdefault(key, set()).add(word)
        for k in hits:
            new[k] = word
    return new


# --------------------------------------------------------------------------- prompt sets


@dataclass
class PromptSet:
    """A puzzle's prompts for one tokenizer, ready for the judge.

    ``texts[i]`` / ``corrupted[i]``: prompt i and its corrupted twin (same token count).
    ``token_ids[i]`` / ``corrupted_ids[i]``: their token ids. ``tokens[i]``: prompt i's tokens
    as text, for the line on screen. ``roles[name][i]``: the token position of role ``name``
    in prompt i (the same in the twin). ``correct[i]`` / ``wrong[i]``: the answer token ids the
    metric compares at ``roles[metric.at][i]`` (one id each for ``logit_diff`` / ``logprob``;
    the sets of numbers above / at-or-below for ``greater_than``; ``wrong`` is empty for
    ``logprob``)."""

    puzzle: str
    split: str
    metric: Metric
    texts: list[str]
    corrupted: list[str]
    token_ids: list[list[int]]
    corrupted_ids: list[list[int]]
    tokens: list[list[str]]
    roles: dict[str, list[int]]
    correct: list[list[int]]
    wrong: list[list[int]]
    templates: list[int] = field(default_factory=list)
    fills: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def length(self) -> int | None:
        """Tokens per prompt when every prompt has the same count (the usual case)."""
        lengths = {len(ids) for ids in self.token_ids}
        return lengths.pop() if len(lengths) == 1 else None

    @property
    def correct_ids(self) -> list[int]:
        """One answer id per prompt (``logit_diff`` / ``logprob``)."""
        return [c[0] for c in self.correct]

    @property
    def wrong_ids(self) -> list[int]:
        return [w[0] for w in self.wrong]

    @property
    def at(self) -> list[int]:
        """Where the metric is read, per prompt."""
        return self.roles[self.metric.at]


def number_token_ids(tokenizer: Any) -> dict[int, int]:
    """Token ids of the two-digit numbers "00".."99" that are one token (for greater_than)."""
    out = {}
    for n in range(100):
        ids = encode(tokenizer, f"{n:02d}")
        if len(ids) == 1:
            out[n] = ids[0]
    return out


def build_prompts(puzzle: Puzzle, tokenizer: Any, split: str = "play") -> PromptSet:
    """Tokenize a split's prompts and find every role. Raises ``RoleError`` when a prompt does
    not line up (a fill word that is not one token, twins of different lengths); the validator
    catches all of these ahead of time."""
    templates = [Template.parse(t) for t in puzzle.prompts.templates]
    raws = sample(puzzle, split)
    numbers = number_token_ids(tokenizer) if puzzle.metric.kind == "greater_than" else {}
    ps = PromptSet(puzzle.id, split, puzzle.metric, [], [], [], [], [],
                   {name: [] for name in puzzle.roles}, [], [])
    for raw in raws:
        template = templates[raw.template]
        text, spans = template.render(raw.words)
        ids, positions = locate(tokenizer, text, spans)
        bad = [raw.words[k] for k, p in enumerate(positions) if p is None]
        if bad:
            raise RoleError(f"{puzzle.id}: in {text!r}, {', '.join(map(repr, bad))} "
                            "is not one token")
        ctext, _ = template.render(raw.corrupted_words)
        cids = encode(tokenizer, ctext)
        if len(cids) != len(ids):
            raise RoleError(f"{puzzle.id}: the corrupted twin {ctext!r} has {len(cids)} tokens, "
                            f"the prompt {len(ids)}")
        where = resolve_roles(puzzle, template, positions, len(ids))
        for name, p in where.items():
            ps.roles[name].append(p)
        m = puzzle.metric
        if m.kind == "greater_than":
            k = occurrence_of(puzzle, template, m.correct)
            value = int(raw.words[k[0]]) if k else 0
            ps.correct.append([i for n, i in numbers.items() if n > value])
            ps.wrong.append([i for n, i in numbers.items() if n <= value])
        else:
            ps.correct.append([ids[where[m.correct]]])
            ps.wrong.append([ids[where[m.wrong]]] if m.wrong else [])
        ps.texts.append(text)
        ps.corrupted.append(ctext)
        ps.token_ids.append(ids)
        ps.corrupted_ids.append(cids)
        ps.tokens.append([tokenizer.decode([i]) for i in ids])
        ps.templates.append(raw.template)
        ps.fills.append(dict(raw.fills))
    return ps
