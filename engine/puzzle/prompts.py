"""A puzzle's prompts for one tokenizer: templates, seeded sampling with corrupted twins,
each role's position per prompt, and the answer token ids the metric compares.

The builder reads only the parts of a puzzle that say how its prompts are made
(``PromptRecipe``), so ``Puzzle`` (``engine.puzzle.files``) can offer ``build_prompts`` as a
method while this module never imports it. Nothing here loads weights: the tokenizer is any
Hugging Face tokenizer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.errors import LineupError, UsageError
from engine.puzzle.parts import (
    PLACEHOLDER,
    Corruption,
    FillSource,
    Metric,
    PromptSpec,
    RoleSpec,
    fill_answer,
    is_answer_text,
)
from engine.puzzle.selectors import parse_selector


class PromptRecipe(Protocol):
    """What the prompt builder reads of a puzzle (``engine.puzzle.files.Puzzle`` has it)."""

    id: str
    prompts: PromptSpec
    roles: dict[str, RoleSpec]
    metric: Metric
    corrupt: Corruption


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




class RoleError(LineupError):
    """A role cannot be found in a prompt (the validator reports these before play)."""


def resolve_roles(puzzle: PromptRecipe, template: Template,
                  occurrence_positions: Sequence[int | None], n_tokens: int) -> dict[str, int]:
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


def occurrence_of(puzzle: PromptRecipe, template: Template, item: str) -> list[int] | None:
    """The occurrence indices a role, selector or ``{FILL}`` stands on, or None."""
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



@dataclass
class RawPrompt:
    """A sampled prompt before tokenization: which template, the fills, the words per
    occurrence, and the corrupted twin's words."""

    template: int
    fills: dict[str, str]
    words: list[str]
    corrupted_words: list[str]


def list_key(name: str, source: FillSource) -> str:
    """Which pool a fill draws from: fills naming the same list share one, so they get different
    words; an inline list is its fill's own."""
    return source.list if source.list != "inline" else f"inline:{name}"


def sample(puzzle: PromptRecipe, split: str = "play") -> list[RawPrompt]:
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


def _sample(puzzle: PromptRecipe, templates: list[Template], count: int, seed: int,
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


def columns(fill: dict[str, FillSource], group: str) -> dict[str, FillSource]:
    """The fills of one table row group (its first column ``group`` and those following it)."""
    return {name: s for name, s in fill.items() if s.group == group}


def _take_row(out: dict[str, str], fill: dict[str, FillSource], name: str, word: str) -> None:
    """Set every column of ``name``'s row group from the row whose first word is ``word``."""
    source = fill[name]
    row = source.words.index(word)
    for col, s in columns(fill, source.group or name).items():
        out[col] = s.words[row]


def _draw(rng: random.Random, fill: dict[str, FillSource], taken: dict[str, set[str]]
          ) -> dict[str, str]:
    """One word per fill; fills drawing from the same list always get different words. A
    table's columns come with their first column's row (rows differ in their first word)."""
    out: dict[str, str] = {}
    used = {k: set(v) for k, v in taken.items()}
    for name, source in fill.items():
        if source.follows:
            continue  # set with its row
        key = list_key(name, source)
        taken = used.setdefault(key, set())
        word = rng.choice(source.words)
        if word in taken:  # rejection keeps it fast; the pool is the fallback
            pool = [w for w in source.words if w not in taken]
            if not pool:
                raise RoleError(f"word list {source.list!r} has too few words for fill {name!r}")
            word = rng.choice(pool)
        taken.add(word)
        out[name] = word
        if source.group is not None:
            _take_row(out, fill, name, word)
    return out


def _corruption_plan(puzzle: PromptRecipe, template: Template) -> list[list[int]]:
    """For each ``corrupt.resample`` item, the occurrences it changes in ``template``."""
    plan = []
    for item in puzzle.corrupt.resample:
        hits = occurrence_of(puzzle, template, item)
        if not hits:
            raise RoleError(f"corrupt: {item!r} does not stand on a fill in {template.text!r}")
        plan.append(hits)
    return plan


def _corrupt(rng: random.Random, puzzle: PromptRecipe, plan: list[list[int]], template: Template,
             fills: dict[str, str], words: list[str]) -> list[str]:
    new = list(words)
    spec = puzzle.prompts.fill
    used: dict[str, set[str]] = {}
    if puzzle.corrupt.distinct:
        for name, word in fills.items():
            if not spec[name].follows:
                used.setdefault(list_key(name, spec[name]), set()).add(word)
    for item, hits in zip(puzzle.corrupt.resample, plan, strict=True):
        name = template.occurrences[hits[0]]
        source = spec[name]
        if source.follows:  # a later column: the whole row is drawn again
            name = source.group or name
            source = spec[name]
            hits = [k for k, f in enumerate(template.occurrences) if spec[f].group == name]
            first = fills[name]
        else:
            first = words[hits[0]]
        key = list_key(name, source)
        taken = used.get(key, set())
        word = rng.choice(source.words)
        if word in taken or word == first:  # rejection first, the pool as fallback
            pool = [w for w in source.words if w not in taken and w != first]
            if not pool:
                raise RoleError(f"word list {source.list!r} has too few words to corrupt "
                                f"{item!r}")
            word = rng.choice(pool)
        if puzzle.corrupt.distinct:
            used.setdefault(key, set()).add(word)
        if source.group is None:
            for k in hits:
                new[k] = word
            continue
        row: dict[str, str] = {}  # a table: every column of the row changes together
        _take_row(row, spec, name, word)
        for k, f in enumerate(template.occurrences):
            if f in row:
                new[k] = row[f]
    return new



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


def answer_tokens(tokenizer: Any, text: str, fills: dict[str, str]) -> list[int]:
    """The token ids of an answer text (``" {PRONOUN}"``) filled from one prompt's words."""
    return encode(tokenizer, fill_answer(text, fills))


def answer_id(tokenizer: Any, answer: str, fills: dict[str, str], ids: Sequence[int],
              where: dict[str, int]) -> int:
    """The id a metric compares: the token a role holds, or an answer text's one token."""
    if not is_answer_text(answer):
        return ids[where[answer]]
    got = answer_tokens(tokenizer, answer, fills)
    if len(got) != 1:
        raise RoleError(f"the answer {fill_answer(answer, fills)!r} is {len(got)} tokens, "
                        "not one")
    return got[0]


def build_prompts(puzzle: PromptRecipe, tokenizer: Any, split: str = "play") -> PromptSet:
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
        else:  # from the clean prompt, for its corrupted twin too (the judge reads these)
            ps.correct.append([answer_id(tokenizer, m.correct, raw.fills, ids, where)])
            ps.wrong.append([answer_id(tokenizer, m.wrong, raw.fills, ids, where)]
                            if m.wrong else [])
        ps.texts.append(text)
        ps.corrupted.append(ctext)
        ps.token_ids.append(ids)
        ps.corrupted_ids.append(cids)
        ps.tokens.append([tokenizer.decode([i]) for i in ids])
        ps.templates.append(raw.template)
        ps.fills.append(dict(raw.fills))
    return ps
