"""Checks that need one model's tokenizer: every fill word is one token in context (saying
which are not), every template gives the same number of tokens, prompts fit the model's
context, roles fall inside the prompt, and each question's responder stands behind its asker.

They run only once the tokenizer-free checks (``engine.puzzle.checks``) pass, and cache what
each word reads as per model, since a puzzle folder asks the same words again and again."""

from __future__ import annotations

from typing import Any

from engine.puzzle.files import Puzzle
from engine.puzzle.parts import (
    PLACEHOLDER,
    ModelBlock,
    Problem,
    Question,
    fill_answer,
    is_answer_text,
)
from engine.puzzle.prompts import (
    RoleError,
    Template,
    encode,
    list_key,
    locate,
    number_token_ids,
    resolve_roles,
)
from engine.puzzle.reader import Doc, Findings
from engine.puzzle.rules import behind_message, stands_behind

_WORD_CACHE: dict[tuple, bool] = {}



def _fits(tokenizer: Any, label: str, template: Template, base: list[str], fill: str,
          word: str) -> str:
    """How ``word`` reads at every occurrence of ``fill`` in ``template`` (other fills from
    ``base``): ``"one"`` token, ``"split"`` into several, or ``"unknown"`` (one token, but
    the tokenizer's unknown one, e.g. ``[UNK]`` for a word outside the toy's vocabulary).
    Cached per model (``label``) and tokenizer object."""
    key = (label, id(tokenizer), template.text, tuple(base), fill, word)
    if key not in _WORD_CACHE:
        words = [word if f == fill else w for f, w in zip(template.occurrences, base, strict=True)]
        text, spans = template.render(words)
        mine = [span for f, span in zip(template.occurrences, spans, strict=True) if f == fill]
        ids, positions = locate(tokenizer, text, mine)
        unk = _unknown_id(tokenizer)
        if any(p is None for p in positions):
            _WORD_CACHE[key] = "split"
        elif unk is not None and any(ids[p] == unk for p in positions if p is not None):
            _WORD_CACHE[key] = "unknown"
        else:
            _WORD_CACHE[key] = "one"
        if len(_WORD_CACHE) > 200_000:
            _WORD_CACHE.clear()
    return _WORD_CACHE[key]


def _unknown_id(tokenizer: Any) -> int | None:
    """The id of the tokenizer's unknown token, also when only its backend knows it (a
    ``tokenizer.json`` read without its config, as the toys are)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        model = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
        name = getattr(model, "unk_token", None)
        if isinstance(name, str) and name:
            unk = tokenizer.convert_tokens_to_ids(name)
    return unk if isinstance(unk, int) else None


def _unknown_name(tokenizer: Any) -> str:
    unk = _unknown_id(tokenizer)
    return str(tokenizer.convert_ids_to_tokens(unk)) if unk is not None else "the unknown token"


def _some(words: list[str]) -> str:
    return ", ".join(repr(w) for w in words[:8]) + (" ..." if len(words) > 8 else "")


def _base_fills(puzzle: Puzzle) -> dict[str, str] | None:
    """A fixed word per fill (distinct within a list), so checks are shared across puzzles."""
    taken: dict[str, set[str]] = {}
    out = {}
    fill = puzzle.prompts.fill
    for name, source in fill.items():
        if source.follows:
            continue
        key = list_key(name, source)
        pool = [w for w in source.words if w not in taken.setdefault(key, set())]
        if not pool:
            return None
        out[name] = pool[0]
        taken[key].add(pool[0])
        if source.group is not None:  # a table: its other columns from the same row
            row = source.words.index(pool[0])
            for col, s in fill.items():
                if s.group == name:
                    out[col] = s.words[row]
    return out


def _check_answers(puzzle: Puzzle, out: Findings, tokenizer: Any, label: str,
                   base: dict[str, str]) -> None:
    """Every answer text (``" {PRONOUN}"``) is one token for every word its fills can take,
    naming the words that are not (one fill varied at a time, the others at ``base``)."""
    m = puzzle.metric
    unk = _unknown_id(tokenizer)
    for field_, answer in (("correct", m.correct), ("wrong", m.wrong)):
        if not is_answer_text(answer):
            continue
        at = ("metric", m.kind, field_) if m.kind == "logit_diff" else ("metric", m.kind)
        names = dict.fromkeys(f.strip() for f in PLACEHOLDER.findall(answer or ""))
        split: list[str] = []
        unknown: list[str] = []
        for name in names:
            for word in dict.fromkeys(puzzle.prompts.fill[name].words):
                text = fill_answer(answer or "", {**base, name: word})
                ids = encode(tokenizer, text)
                if len(ids) != 1:
                    pieces = " + ".join(repr(tokenizer.decode([i])) for i in ids)
                    split.append(f"{text!r} ({pieces})")
                elif unk is not None and ids[0] == unk:
                    unknown.append(repr(text))
        if split:
            out.add(at, f"metric `{field_}`: an answer must be one {label} token; "
                        f"{len(split)} are not: {', '.join(split[:5])}"
                        + (" ..." if len(split) > 5 else ""))
        if unknown:
            out.add(at, f"metric `{field_}`: {len(unknown)} answer(s) are not in the {label} "
                        f"vocabulary: {', '.join(unknown[:5])}")


def check_tokens(puzzle: Puzzle, doc: Doc | None, tokenizer: Any, label: str,
                 block: ModelBlock | None, n_positions: int | None = None) -> list[Problem]:
    """Checks that need one model's tokenizer; see the module docstring. With
    ``n_positions``, prompts must also fit the model's context."""
    out = Findings(doc, str(puzzle.path or "<puzzle>"))
    templates = [Template.parse(t) for t in puzzle.prompts.templates]
    first = _base_fills(puzzle)
    if first is None:
        out.add(("prompts",), "word lists are too short to fill the templates")
        return out.problems
    lengths: list[int] = []
    layouts: list[tuple[list[int | None], int]] = []
    for i, t in enumerate(templates):
        base = [first[f] for f in t.occurrences]
        text, spans = t.render(base)
        ids, positions = locate(tokenizer, text, spans)
        lengths.append(len(ids))
        layouts.append((positions, len(ids)))
        for fill, source in puzzle.prompts.fill.items():
            if fill not in t.occurrences:
                continue
            read = {w: _fits(tokenizer, label, t, base, fill, w) for w in source.words}
            bad = [w for w, how in read.items() if how == "split"]
            unknown = [w for w, how in read.items() if how == "unknown"]
            if bad:
                out.add(("prompts", "fill", fill),
                        f"fill {fill!r} ({source.list}): {len(bad)} word(s) are not one {label} "
                        f"token in template {i + 1}: {_some(bad)}")
            if unknown:
                out.add(("prompts", "fill", fill),
                        f"fill {fill!r} ({source.list}): {len(unknown)} word(s) are not in "
                        f"the {label} vocabulary (each would read as "
                        f"{_unknown_name(tokenizer)}): {_some(unknown)}")
    if n_positions is not None and lengths and max(lengths) > n_positions:
        out.add(("prompts", "templates"), f"prompts are {max(lengths)} {label} tokens long, "
                                          f"but the model reads at most {n_positions}")
    if len(set(lengths)) > 1:
        out.add(("prompts", "templates"),
                f"templates give different numbers of {label} tokens "
                f"({', '.join(str(n) for n in lengths)}), so roles would not line up")
    _check_answers(puzzle, out, tokenizer, label, first)
    if puzzle.metric.kind == "greater_than":
        missing = sorted(set(range(100)) - set(number_token_ids(tokenizer)))
        if missing:
            out.add(("metric",), f"greater_than: the numbers {missing[:5]} are not single "
                                 f"{label} tokens")
    if out.problems:
        return out.problems
    for i, (t, (positions, n)) in enumerate(zip(templates, layouts, strict=True)):
        try:
            where = resolve_roles(puzzle, t, positions, n)
        except RoleError as exc:
            out.add(("roles",), f"template {i + 1}: {exc}")
            return out.problems
        if block is None:
            continue
        for field_ in ("solution", "given"):
            for j, q in enumerate(getattr(block, field_)):
                if q.responder and q.asker in where and q.responder in where \
                        and q.responder != q.asker \
                        and not stands_behind([where[q.responder]], [where[q.asker]]):
                    out.at_question(q, ("models", block.name, field_, j), "responder",
                                    _behind_message(q, t, i))
    return out.problems


def _behind_message(q: Question, t: Template, i: int) -> str:
    return f"{behind_message(q.responder or '', q.asker)} (template {i + 1})"

