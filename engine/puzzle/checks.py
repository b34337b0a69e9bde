"""Meaning checks for puzzle and circuit files, everything that needs no tokenizer.

``check_puzzle(puzzle, doc) -> list[Problem]``: templates and fills agree, roles exist and do
not loop, the metric, corruption and questions name real roles, rounds and offered cards,
rounds fit the model's layers (GPT-2: 12; a toy: ``n_layer`` from its config.json, no weights
read), the given questions belong to the reference solution, hints (the puzzle's and each
block's own) look rot13-encoded, and the word lists are long enough to sample distinct words.
``check_circuit(circuit, puzzle, block_name) -> list[Problem]``: a player's circuit against a
puzzle: rounds, roles and cards exist (with "did you mean"); given a tokenizer, responders
stand behind askers.

Shape (types, keys) was checked while parsing (``engine.puzzle.shape``); the checks that need
a model's tokenizer are in ``engine.puzzle.tokens``."""

from __future__ import annotations

import codecs
import re
from typing import Any

from engine.puzzle.files import Circuit, Puzzle
from engine.puzzle.parts import (
    PLACEHOLDER,
    ModelBlock,
    Problem,
    Question,
    RoleSpec,
    is_answer_text,
)
from engine.puzzle.prompts import RoleError, Template, list_key, occurrence_of, sample
from engine.puzzle.reader import Doc, Findings, read_yaml
from engine.puzzle.rules import question_problems
from engine.puzzle.selectors import parse_selector
from engine.puzzle.suggest import did_you_mean, one_of
from engine.puzzle.targets import block_layers

MIN_HINTS = 2


_COMMON = {"the", "a", "is", "who", "what", "and", "to", "of", "which", "in", "that", "you",
           "it", "name", "person", "asks", "line", "word", "end", "at", "does", "be"}


def looks_plain(hint: str) -> bool:
    """True when a hint reads as English before rot13 decoding (it was not encoded)."""
    def score(s: str) -> int:
        return sum(w in _COMMON for w in re.findall(r"[a-z]+", s.lower()))

    return score(hint) > score(codecs.encode(hint, "rot13"))


# --------------------------------------------------------------------------- puzzle checks


def check_puzzle(puzzle: Puzzle, doc: Doc | None = None) -> list[Problem]:
    """Every check that needs no tokenizer (see the module docstring)."""
    return static_checks(puzzle, doc)[0]


def static_checks(puzzle: Puzzle, doc: Doc | None) -> tuple[list[Problem], bool]:
    """The tokenizer-free problems, and whether prompts can be built (so that the tokenizer
    checks are worth running)."""
    out = Findings(doc, str(puzzle.path or "<puzzle>"))
    broken = puzzle.broken
    templates = _check_templates(puzzle, out) if "prompts" not in broken else []
    roles_ok = bool(templates) and "roles" not in broken and _check_roles(puzzle, out, templates)
    roles_known = "roles" not in broken
    if roles_known and "metric" not in broken:
        _check_metric(puzzle, out, templates)
    if roles_known and "corrupt" not in broken:
        _check_corrupt(puzzle, out, templates)
    prompt_problems = len(out.problems)
    if "hints" not in broken:
        _check_hints(puzzle.hints, out, ("hints",))
    for name, block in puzzle.models.items():
        _check_block(puzzle, block, out, roles_known, ("models", name))
        if block.hints is not None:  # a block's own hints obey the same rules
            _check_hints(block.hints, out, ("models", name, "hints"))
    if "models" not in broken and not puzzle.models and not any(
            b.startswith("models.") for b in broken):
        out.add(("models",), "`models` has no gpt2 or toy block")
    ready = roles_ok and not prompt_problems and not {"metric", "corrupt"} & broken
    if ready:
        for split in ("play", "heldout"):
            try:
                sample(puzzle, split)
            except (RoleError, ValueError, KeyError) as exc:
                out.add(("prompts",), f"cannot sample the {split} prompts: {exc}")
                ready = False
                break
    return out.problems, ready


def _check_templates(puzzle: Puzzle, out: Findings) -> list[Template]:
    spec = puzzle.prompts
    parsed: list[Template] = []
    counts = None
    for i, text in enumerate(spec.templates):
        at = ("prompts", "templates", i)
        t = Template.parse(text)
        rest = PLACEHOLDER.sub("", text)
        if "{" in rest or "}" in rest:
            out.add(at, f"template {i + 1} has a brace without its partner")
            continue
        bad = False
        for name in dict.fromkeys(t.occurrences):
            if name not in spec.fill:
                out.add(at, f"template {i + 1} uses {{{name}}}, which `fill` does not define"
                            f"{did_you_mean(name, spec.fill)}")
                bad = True
        if not t.occurrences:
            out.add(at, f"template {i + 1} has no {{FILL}} placeholders")
            bad = True
        if bad:
            continue
        if counts is None:
            counts = t.counts()
        elif t.counts() != counts:
            out.add(at, f"template {i + 1} uses its fills a different number of times than "
                        "template 1, so the roles would not line up")
            continue
        parsed.append(t)
    used = {name for t in parsed for name in t.occurrences} | answer_fills(puzzle)
    for name, source in spec.fill.items():
        if parsed and name not in used:
            where = ("prompts", "fill", source.group or name)
            out.add(where, f"fill {name!r} is used by no template"
                           + (" and no answer of the metric" if source.group else ""),
                    key=source.group is None)
    if len(parsed) != len(spec.templates):
        return []
    # enough words to draw distinct ones (fills sharing a list, plus corruption)
    need: dict[str, int] = {}
    size: dict[str, tuple[int, str]] = {}
    for name, source in spec.fill.items():
        if source.follows:  # comes with its row
            continue
        key = list_key(name, source)
        need[key] = need.get(key, 0) + 1
        size[key] = (len(source.words), name)
    for key, n in need.items():
        have, name = size[key]
        extra = len(puzzle.corrupt.resample) if puzzle.corrupt.distinct else 1
        if have < n + extra:
            out.add(("prompts", "fill", name),
                    f"word list {key.split(':')[-1]!r} has {have} words; this puzzle needs at "
                    f"least {n + extra} to draw distinct words and corrupt them")
    return parsed


def _check_roles(puzzle: Puzzle, out: Findings, templates: list[Template]) -> bool:
    ok = True

    def check(spec: RoleSpec | str, at: tuple, name: str, stack: tuple[str, ...]) -> None:
        nonlocal ok
        if isinstance(spec, str):
            if spec not in puzzle.roles:
                out.add(at, f"role {name}: no role called {spec!r}"
                            f"{did_you_mean(spec, puzzle.roles)}")
                ok = False
            elif spec in stack:
                out.add(at, f"role {name}: roles refer to each other in a loop "
                            f"({' -> '.join((*stack, spec))})")
                ok = False
            else:
                check(puzzle.roles[spec], at, name, (*stack, spec))
            return
        if spec.kind == "occurrence":
            fill = spec.fill or ""
            if fill not in puzzle.prompts.fill:
                out.add(at, f"role {name}: no fill called {{{fill}}}"
                            f"{did_you_mean(fill, puzzle.prompts.fill)}")
                ok = False
                return
            for i, t in enumerate(templates):
                if t.occurrence(fill, spec.nth) is None:
                    n = t.counts().get(fill, 0)
                    why = ("it appears more than once: say which (first, second, last)"
                           if spec.nth == 0 and n > 1 else f"template {i + 1} has it {n} time(s)")
                    out.add(at, f"role {name}: {spec.text!r} not found: {why}")
                    ok = False
                    return
        elif spec.kind in ("after", "before") and spec.of is not None:
            check(spec.of, at, name, stack)

    for name, spec in puzzle.roles.items():
        check(spec, ("roles", name), name, (name,))
    return ok


def _role_ref(puzzle: Puzzle, out: Findings, at: tuple, role: str | None, what: str) -> bool:
    if role is None or role in puzzle.roles:
        return True
    out.add(at, f"{what}: no role called {role!r}{did_you_mean(role, puzzle.roles)}; "
                f"roles are {one_of(puzzle.roles)}")
    return False


def answer_fills(puzzle: Puzzle) -> set[str]:
    """The fills the metric's answer texts (``" {PRONOUN}"``) name."""
    m = puzzle.metric
    return {f.strip() for a in (m.correct, m.wrong) if is_answer_text(a)
            for f in PLACEHOLDER.findall(a or "")}


def _answer_ref(puzzle: Puzzle, out: Findings, at: tuple, answer: str | None) -> bool:
    """A metric answer names a role, or is an answer text whose placeholders are fills."""
    if not is_answer_text(answer):
        if answer is not None and answer not in puzzle.roles and answer in puzzle.prompts.fill:
            out.add(at, f"metric: no role called {answer!r}; {answer} is a fill: to compare "
                        f"its word, write the answer text \" {{{answer}}}\" (with the space the "
                        "word has after the prompt)")
            return False
        return _role_ref(puzzle, out, at, answer, "metric")
    ok = True
    for name in PLACEHOLDER.findall(answer or ""):
        if name.strip() not in puzzle.prompts.fill:
            out.add(at, f"metric: {answer!r} uses {{{name}}}, which `fill` does not define"
                        f"{did_you_mean(name, puzzle.prompts.fill)}")
            ok = False
    return ok


def _check_metric(puzzle: Puzzle, out: Findings, templates: list[Template]) -> None:
    m = puzzle.metric
    _role_ref(puzzle, out, ("metric", "at"), m.at, "metric `at`")
    if m.kind == "logit_diff":
        a = _answer_ref(puzzle, out, ("metric", "logit_diff", "correct"), m.correct)
        b = _answer_ref(puzzle, out, ("metric", "logit_diff", "wrong"), m.wrong)
        if a and b and m.correct == m.wrong:
            out.add(("metric", "logit_diff"), "metric compares a role with itself"
                    if not is_answer_text(m.correct) else "metric compares an answer with itself")
    elif m.kind == "logprob":
        _answer_ref(puzzle, out, ("metric", "logprob"), m.correct)
    elif _role_ref(puzzle, out, ("metric", "greater_than"), m.correct, "metric"):
        for t in templates:
            k = occurrence_of(puzzle, t, m.correct)
            if not k:
                out.add(("metric", "greater_than"), f"greater_than: role {m.correct!r} must "
                                                    "stand on a fill of two-digit numbers")
                return
            words = puzzle.prompts.fill[t.occurrences[k[0]]].words
            bad = [w for w in words if not (len(w) == 2 and w.isdigit())]
            if bad:
                out.add(("metric", "greater_than"), "greater_than needs two-digit numbers; "
                                                    f"not numbers: {', '.join(bad[:5])}")
                return


def _check_corrupt(puzzle: Puzzle, out: Findings, templates: list[Template]) -> None:
    for i, item in enumerate(puzzle.corrupt.resample):
        at = ("corrupt", "resample", i)
        if item.startswith("{") and item.endswith("}"):
            if item[1:-1].strip() not in puzzle.prompts.fill:
                out.add(at, f"corrupt: no fill called {item}"
                            f"{did_you_mean(item[1:-1], puzzle.prompts.fill)}")
            continue
        if item not in puzzle.roles:
            spec = parse_selector(item)
            if isinstance(spec, str):
                out.add(at, f"corrupt: {item!r} is neither a role{did_you_mean(item, puzzle.roles)}"
                            " nor a selector like `first {A}`")
                continue
        for t in templates:
            if not occurrence_of(puzzle, t, item):
                out.add(at, f"corrupt: {item!r} does not stand on a fill word, so it cannot be "
                            "resampled")
                break


def _check_hints(hints: list[str], out: Findings, at: tuple) -> None:
    """At least ``MIN_HINTS`` hints, each written in rot13 (the puzzle's or a block's)."""
    if len(hints) < MIN_HINTS:
        out.add(at, f"give at least {MIN_HINTS} hints (there are {len(hints)})")
    for i, hint in enumerate(hints):
        if looks_plain(hint):
            out.add((*at, i), f"hint {i + 1} reads as plain English: write it in rot13 "
                              "(python -c \"import codecs; print(codecs.encode('...', "
                              "'rot13'))\")")


def _check_block(puzzle: Puzzle, block: ModelBlock, out: Findings, roles_ok: bool,
                 at: tuple) -> None:
    layers = block_layers(block)
    previous: tuple[str, int] | None = None
    rounds_ok = True
    for name, (lo, hi) in block.rounds.items():
        where = (*at, "rounds", name)
        if layers is not None and hi >= layers:
            out.add(where, f"round {name!r} reaches layer {hi}, but the {block.name} model has "
                           f"layers 0-{layers - 1}")
            rounds_ok = False
        if previous is not None and lo <= previous[1]:
            out.add(where, f"round {name!r} starts at layer {lo}, inside or before round "
                           f"{previous[0]!r} (rounds go in order and do not overlap)")
            rounds_ok = False
        previous = (name, hi)
    if rounds_ok:  # coverage is worth saying only once the rounds themselves are right
        _check_kept(block, layers, out, at)
    for field_, questions in (("solution", block.solution), ("given", block.given)):
        seen = set()
        for i, q in enumerate(questions):
            qat = (*at, field_, i)
            check_question(puzzle, block, q, out, qat, roles_ok=roles_ok)
            if q in seen:
                out.add(qat, f"{field_} lists the question {q} twice")
            seen.add(q)
            if field_ == "given" and q not in block.solution:
                out.add(qat, f"given question {q} is not in the {block.name} reference solution")
    if not block.solution:
        out.add((*at, "solution"), "the reference solution is empty")
    without = block.thresholds.without
    if without is not None and without not in {q.card for q in block.solution}:
        out.add((*at, "pass", "without"), f"`without: {without}` names no card of the "
                                          f"{block.name} reference solution")


def _check_kept(block: ModelBlock, layers: int | None, out: Findings, at: tuple) -> None:
    """Kept layers lie outside every round; with them, the rounds cover every layer once
    (a layer in neither would be silenced by the judge yet offer no round to ask in)."""
    for i, (lo, hi) in enumerate(block.kept):
        where = (*at, "kept", i)
        if layers is not None and hi >= layers:
            out.add(where, f"kept layers {lo}-{hi} reach past the {block.name} model's last "
                           f"layer, {layers - 1}")
        inside = [name for name, (a, b) in block.rounds.items() if a <= hi and lo <= b]
        if inside:
            out.add(where, f"kept layers {lo}-{hi} overlap round {inside[0]!r}: a layer is "
                           "either played in a round or kept, not both")
    if layers is None:
        return
    missing = [layer for layer in range(layers)
               if block.round_of(layer) is None and not block.is_kept(layer)]
    if missing:
        out.add((*at, "kept"), f"layer {missing[0]} of the {block.name} model is in no round "
                               "and not kept: name it in a round or in `kept`")


def check_question(puzzle: Puzzle, block: ModelBlock, q: Question, out: Findings, at: tuple, *,
                   roles_ok: bool = True) -> None:
    """Every reason of the one rule (``engine.puzzle.question_problems``), located; role and
    card-list problems are left to the checks of those sections when they are broken."""
    for problem in question_problems(q, puzzle, block):
        if (problem.kind == "role" and not roles_ok) or (
                problem.kind == "not-offered" and "cards" in puzzle.broken):
            continue
        out.at_question(q, at, problem.field, problem.message)


def check_circuit(circuit: Circuit, puzzle: Puzzle, block_name: str, tokenizer: Any = None, *,
                  doc: Doc | None = None) -> list[Problem]:
    """Problems of a circuit against a puzzle for one model block (rounds are per block):
    unknown rounds, roles or cards (with "did you mean"), cards the puzzle does not offer,
    and, given a tokenizer, responders standing in front of their askers. Problems are
    located in ``doc``, read from the circuit's file when not given."""
    if doc is None and circuit.path is not None and circuit.path.is_file():
        doc = read_yaml(circuit.path)
    out = Findings(doc, str(circuit.path or "<circuit>"))
    if circuit.puzzle != puzzle.id:
        out.add(("puzzle",), f"this circuit is for {circuit.puzzle!r}, not {puzzle.id!r}")
    block = puzzle.block(block_name)
    if block is None:
        out.add(("puzzle",), f"puzzle {puzzle.id!r} is locked for the {block_name} model")
        return out.problems
    seen = set()
    for i, q in enumerate(circuit.questions):
        at = ("questions", i)
        check_question(puzzle, block, q, out, at)
        if q in seen:
            out.add(at, f"the question {q} is placed twice")
        seen.add(q)
    if tokenizer is not None and not out.problems:
        ps = puzzle.build_prompts(tokenizer)
        for i, q in enumerate(circuit.questions):
            for problem in question_problems(q, puzzle, block, ps.roles):
                out.at_question(q, ("questions", i), problem.field, problem.message)
    return out.problems
