"""Meaning checks for puzzle and circuit files: what `lineup validate` and the game run.

Shape (types, keys) is checked while parsing (``engine.puzzle_schema``). Here:

``check_puzzle(puzzle, doc) -> list[Problem]``
    Everything that needs no tokenizer: templates and fills agree, roles exist and do not loop,
    the metric, corruption and questions name real roles, rounds and offered cards, rounds fit
    the model's layers (GPT-2: 12; a toy: ``n_layer`` from its config.json, no weights read),
    the given questions belong to the reference solution, hints look rot13-encoded, and the
    word lists are long enough to sample distinct words.
``check_tokens(puzzle, doc, tokenizer, label, block) -> list[Problem]``
    With one model's tokenizer: every fill word is one token in context (saying which are not),
    every template gives the same number of tokens, roles fall inside the prompt, and each
    question's responder stands behind its asker.
``check_circuit(circuit, puzzle, block_name, doc=None) -> list[Problem]``
    A player's circuit against a puzzle: rounds, roles and cards exist (with "did you mean"),
    responders stand behind askers.
``validate_paths(paths, model=None, notes=None) -> list[Problem]``
    All of the above for files and folders, plus duplicate ids and orders across them.
With a model (``lineup validate --model M``), each puzzle's reference solution and trivial
    circuits are graded by ``engine.authoring`` (the only module joining puzzle checks and the
    judge): this module never imports the judge itself, except to default to that grader when
    a caller asks for a model without passing one.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.ladders import ladder_reveals
from engine.puzzle import (
    CARDS,
    RoleError,
    Template,
    behind_message,
    locate,
    occurrence_of,
    puzzle_files,
    question_problems,
    resolve_roles,
    sample,
    stands_behind,
)
from engine.puzzle_schema import (
    PLACEHOLDER,
    Circuit,
    Doc,
    ModelBlock,
    Problem,
    Puzzle,
    Question,
    RoleSpec,
    did_you_mean,
    one_of,
    parse_circuit,
    parse_puzzle,
    parse_selector,
    read_yaml,
)

GPT2_LAYERS = 12
SMOLLM2_LAYERS = 30
BLOCK_LAYERS = {"gpt2": GPT2_LAYERS, "smollm2": SMOLLM2_LAYERS}
"""Layers of the model each named (non-toy) block is played on, known without any weights."""
MIN_HINTS = 2


# --------------------------------------------------------------------------- models


@dataclass
class ModelInfo:
    """What the validator needs to know about a model without loading its weights."""

    spec: str  # the --model value (or "gpt2" / a toy name)
    block: str | None  # the puzzle block it plays
    n_layers: int
    label: str
    n_positions: int | None = None

    def tokenizer(self) -> Any:
        from engine.models import load_tokenizer

        return load_tokenizer(self.spec)


def toy_config(name: str) -> dict[str, Any] | None:
    """A bundled toy's config.json, or None when that toy is not built."""
    from engine.paths import TOYS_DIR

    candidates = [TOYS_DIR / name]
    if name == "toy" and TOYS_DIR.is_dir():
        candidates += sorted(p for p in TOYS_DIR.iterdir() if p.is_dir())
    for folder in candidates:
        try:
            return json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
    return None


def model_info(spec: str) -> ModelInfo:
    """Describe a --model value; raises UsageError for an unknown one."""
    if spec in ("gpt2", "random-gpt2"):
        return ModelInfo(spec, "gpt2", GPT2_LAYERS, spec, 1024)
    if spec.startswith("planted-"):  # engine/planted.py's GPT-2-small-shaped test models
        return ModelInfo(spec, "gpt2", GPT2_LAYERS, f"planted test model {spec}", 1024)
    if spec == "smollm2":
        return ModelInfo(spec, "smollm2", SMOLLM2_LAYERS, "SmolLM2-135M", 8192)
    from engine.models import model_names
    from engine.paths import TOYS_DIR

    if spec == "toy" or (TOYS_DIR / spec).is_dir():
        config = toy_config(spec)
        if config is None:
            raise UsageError(f"no bundled toy model called {spec!r} (is it built? "
                             "`python -m engine.toys build`)")
        facts = _facts_or_none(config)
        return ModelInfo(spec, "toy", facts.n_layers if facts else 0, f"toy model {spec}",
                         facts.n_ctx if facts else None)
    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError):
            raise UsageError(f"{spec}: not a model directory (no readable config.json)") from None
        from engine.models import block_for_spec

        facts = _facts_or_none(config)
        return ModelInfo(spec, block_for_spec(spec), facts.n_layers if facts else 0, spec,
                         facts.n_ctx if facts else None)
    raise UsageError(f"unknown model {spec!r}: use {', '.join(model_names())}, "
                     "a planted-* test model or a directory")


def _facts_or_none(config: Any) -> Any:
    """``engine.models.ModelFacts`` of a config.json, or None when it is not one."""
    from engine.errors import ModelError
    from engine.models import ModelFacts

    try:
        return ModelFacts.of(config) if isinstance(config, dict) else None
    except ModelError:
        return None


def block_layers(block: ModelBlock) -> int | None:
    """How many layers the model playing a block has, or None when unknown (toy not built)."""
    if block.name in BLOCK_LAYERS:
        return BLOCK_LAYERS[block.name]
    facts = _facts_or_none(toy_config(block.toy or "toy"))
    return facts.n_layers if facts else None


# --------------------------------------------------------------------------- helpers


class _Out:
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
    return _static(puzzle, doc)[0]


def _static(puzzle: Puzzle, doc: Doc | None) -> tuple[list[Problem], bool]:
    """The tokenizer-free problems, and whether prompts can be built (so that the tokenizer
    checks are worth running)."""
    out = _Out(doc, str(puzzle.path or "<puzzle>"))
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
        _check_hints(puzzle, out)
    for name, block in puzzle.models.items():
        _check_block(puzzle, block, out, roles_known, ("models", name))
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


def _check_templates(puzzle: Puzzle, out: _Out) -> list[Template]:
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
    used = {name for t in parsed for name in t.occurrences}
    for name in spec.fill:
        if parsed and name not in used:
            out.add(("prompts", "fill", name), f"fill {name!r} is used by no template", key=True)
    if len(parsed) != len(spec.templates):
        return []
    # enough words to draw distinct ones (fills sharing a list, plus corruption)
    need: dict[str, int] = {}
    size: dict[str, tuple[int, str]] = {}
    for name, source in spec.fill.items():
        key = source.list if source.list != "inline" else f"inline:{name}"
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


def _check_roles(puzzle: Puzzle, out: _Out, templates: list[Template]) -> bool:
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


def _role_ref(puzzle: Puzzle, out: _Out, at: tuple, role: str | None, what: str) -> bool:
    if role is None or role in puzzle.roles:
        return True
    out.add(at, f"{what}: no role called {role!r}{did_you_mean(role, puzzle.roles)}; "
                f"roles are {one_of(puzzle.roles)}")
    return False


def _check_metric(puzzle: Puzzle, out: _Out, templates: list[Template]) -> None:
    m = puzzle.metric
    _role_ref(puzzle, out, ("metric", "at"), m.at, "metric `at`")
    if m.kind == "logit_diff":
        a = _role_ref(puzzle, out, ("metric", "logit_diff", "correct"), m.correct, "metric")
        b = _role_ref(puzzle, out, ("metric", "logit_diff", "wrong"), m.wrong, "metric")
        if a and b and m.correct == m.wrong:
            out.add(("metric", "logit_diff"), "metric compares a role with itself")
    elif m.kind == "logprob":
        _role_ref(puzzle, out, ("metric", "logprob"), m.correct, "metric")
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


def _check_corrupt(puzzle: Puzzle, out: _Out, templates: list[Template]) -> None:
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


def _check_hints(puzzle: Puzzle, out: _Out) -> None:
    if len(puzzle.hints) < MIN_HINTS:
        out.add(("hints",), f"give at least {MIN_HINTS} hints (there are {len(puzzle.hints)})")
    for i, hint in enumerate(puzzle.hints):
        if looks_plain(hint):
            out.add(("hints", i), f"hint {i + 1} reads as plain English: write it in rot13 "
                                  "(python -c \"import codecs; print(codecs.encode('...', "
                                  "'rot13'))\")")


def _check_block(puzzle: Puzzle, block: ModelBlock, out: _Out, roles_ok: bool,
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


def _check_kept(block: ModelBlock, layers: int | None, out: _Out, at: tuple) -> None:
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


def check_question(puzzle: Puzzle, block: ModelBlock, q: Question, out: _Out, at: tuple, *,
                   roles_ok: bool = True) -> None:
    """Every reason of the one rule (``engine.puzzle.question_problems``), located; role and
    card-list problems are left to the checks of those sections when they are broken."""
    for problem in question_problems(q, puzzle, block):
        if (problem.kind == "role" and not roles_ok) or (
                problem.kind == "not-offered" and "cards" in puzzle.broken):
            continue
        out.at_question(q, at, problem.field, problem.message)


# --------------------------------------------------------------------------- tokenizer checks

_WORD_CACHE: dict[tuple, bool] = {}


_TOKENIZERS: dict[str, Any] = {}


def tokenizer_for(info: ModelInfo) -> Any:
    """A model's tokenizer, loaded once per process."""
    if info.spec not in _TOKENIZERS:
        _TOKENIZERS[info.spec] = info.tokenizer()
    return _TOKENIZERS[info.spec]


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
    for name, source in puzzle.prompts.fill.items():
        key = source.list if source.list != "inline" else f"inline:{name}"
        pool = [w for w in source.words if w not in taken.setdefault(key, set())]
        if not pool:
            return None
        out[name] = pool[0]
        taken[key].add(pool[0])
    return out


def check_tokens(puzzle: Puzzle, doc: Doc | None, tokenizer: Any, label: str,
                 block: ModelBlock | None, n_positions: int | None = None) -> list[Problem]:
    """Checks that need one model's tokenizer; see the module docstring. With
    ``n_positions``, prompts must also fit the model's context."""
    out = _Out(doc, str(puzzle.path or "<puzzle>"))
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
    if puzzle.metric.kind == "greater_than":
        from engine.puzzle import number_token_ids

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


# --------------------------------------------------------------------------- circuits


def check_circuit(circuit: Circuit, puzzle: Puzzle, block_name: str, doc: Doc | None = None,
                  tokenizer: Any = None) -> list[Problem]:
    """Check a circuit against a puzzle for one model block (rounds are per block)."""
    out = _Out(doc, str(circuit.path or "<circuit>"))
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


# --------------------------------------------------------------------------- the judge hook

MAX_WRONG = 4
"""At most this many "one wrong question" circuits per puzzle (one per placed question)."""
MAX_EVERY_HEAD = 160
"""At most this many questions in the "every card, every round" circuit; past it, questions
asked by the metric's person and by the solution's askers are kept first."""


@dataclass
class Trivial:
    """A circuit that must NOT solve the puzzle, and how a problem names it."""

    kind: str  # "empty" | "wrong-question" | "every-head"
    label: str  # "the empty circuit", ...
    circuit: Circuit
    changed: Question | None = None  # wrong-question: the reference question made wrong
    into: Question | None = None  # ... and what it became
    left_out: int = 0  # every-head: questions dropped by MAX_EVERY_HEAD


def roles_behind(roles: dict[str, list[int]], order: Iterable[str] | None = None
                 ) -> dict[str, list[str]]:
    """For each role, the roles standing behind it (earlier in the line) in every prompt.
    ``roles`` is ``PromptSet.roles`` (role -> position per prompt); ``order`` the puzzle's
    role order (default: ``roles``' own)."""
    names = [r for r in (order or roles) if r in roles]
    return {a: [r for r in names if r != a
                and all(p < q for p, q in zip(roles[r], roles[a], strict=True))]
            for a in names}


def _key(q: Question) -> tuple:
    from engine.puzzle_schema import card_id

    return (q.round, q.asker, card_id(q.card), q.responder)


def wrong_question(q: Question, block: ModelBlock, behind: dict[str, list[str]],
                   taken: Iterable[Question] = ()) -> Question | None:
    """``q`` made wrong: its responder changed to another role behind the asker or, when
    there is none (or the card is not a question), moved to another round (the next one, else
    the one before). None when neither is possible. Never a question in ``taken``."""
    from engine.puzzle_schema import card_id

    used = {_key(t) for t in taken} | {_key(q)}
    card = CARDS.get(card_id(q.card))
    if card is not None and card.responder and q.responder is not None:
        for other in behind.get(q.asker, []):
            new = Question(q.round, q.asker, q.card, other)
            if other != q.responder and _key(new) not in used:
                return new
    rounds = list(block.rounds)
    if q.round in rounds:
        i = rounds.index(q.round)
        for j in (*range(i + 1, len(rounds)), *range(i - 1, -1, -1)):
            new = Question(rounds[j], q.asker, q.card, q.responder)
            if _key(new) not in used:
                return new
    return None


def every_head(puzzle: Puzzle, block: ModelBlock, behind: dict[str, list[str]],
               cap: int = MAX_EVERY_HEAD) -> tuple[list[Question], int]:
    """Every card the puzzle offers, in every round, for every asker and every responder
    behind it (cards that are not questions: every asker). Past ``cap`` questions, those
    asked by the metric's person, then by the solution's askers, then to the solution's
    responders are kept first. Returns (questions, how many were left out)."""
    from engine.puzzle_schema import card_id

    out: list[Question] = []
    for rnd in block.rounds:
        for name in dict.fromkeys(card_id(c) for c in puzzle.cards):
            card = CARDS.get(name)
            if card is None:
                continue
            for asker in behind:
                if card.responder:
                    out.extend(Question(rnd, asker, name, r) for r in behind[asker])
                else:
                    out.append(Question(rnd, asker, name))
    if len(out) <= cap:
        return out, 0
    askers = {q.asker for q in block.solution}
    responders = {q.responder for q in block.solution}
    ranked = sorted(out, key=lambda q: (q.asker != puzzle.metric.at, q.asker not in askers,
                                        q.responder not in responders))
    keep = set(ranked[:cap])
    return [q for q in out if q in keep], len(out) - cap


def trivial_circuits(puzzle: Puzzle, block: ModelBlock, behind: dict[str, list[str]], *,
                     cap: int = MAX_EVERY_HEAD) -> list[Trivial]:
    """The circuits that must fail: (a) the empty circuit (the judge still places the
    block's given questions); (b) the reference solution with one placed (not given)
    question made wrong, one circuit per such question (at most ``MAX_WRONG``); (c) every
    card in every round for every asker and responder behind it (at most ``cap``)."""
    pid = puzzle.id
    n = len(block.given)
    label = "the empty circuit" + (f" (with its {n} given question{'s' if n != 1 else ''})"
                                   if n else "")
    out = [Trivial("empty", label, Circuit(pid, []))]
    given = {_key(q) for q in block.given}
    placed = [q for q in block.solution if _key(q) not in given]
    for q in placed[:MAX_WRONG]:
        new = wrong_question(q, block, behind, block.solution)
        if new is None:
            continue
        questions = [new if x is q else x for x in block.solution]
        what = ("its responder" if new.round == q.round else "its round")
        out.append(Trivial("wrong-question",
                           f"the reference solution with {q} changed to {new} ({what} "
                           "changed)", Circuit(pid, questions), changed=q, into=new))
    questions, left_out = every_head(puzzle, block, behind, cap)
    if questions:
        more = f", {left_out} more left out" if left_out else ""
        out.append(Trivial("every-head", f"every card in every round ({len(questions)} "
                           f"questions{more})", Circuit(pid, questions), left_out=left_out))
    return out


# --------------------------------------------------------------------------- paths


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(puzzle_files(path))
        else:
            files.append(path)
    return files


def _is_circuit(doc: Doc) -> bool:
    data = doc.data
    return isinstance(data, dict) and "questions" in data and "prompts" not in data


Grader = Callable[..., list[Problem]]
"""``grader(puzzle, spec, doc=..., lm=..., progress=...) -> list[Problem]``: grades a puzzle's
reference solution on a model (``engine.authoring.check_reference_with_judge``)."""


def validate_paths(paths: Iterable[str | Path], model: str | None = None,
                   notes: list[str] | None = None, *, device: str | None = None,
                   progress: Callable[[str], None] | None = None,
                   grader: Grader | None = None,
                   load: Callable[..., Any] | None = None) -> list[Problem]:
    """Check puzzle files (and circuit files, against their puzzle). Folders are searched for
    *.yaml. With ``model``, only that model's block is checked, with its tokenizer and layer
    count, and the judge grades each puzzle's reference solution and trivial circuits on it
    (``check_reference_with_judge``; the model is loaded once, and a puzzle with problems
    already is not graded); without, every block is checked against its own model (toy
    blocks only when the toy is built). Remarks that are not problems go to ``notes``;
    ``progress(text)`` hears what the judge is doing as it happens."""
    notes = notes if notes is not None else []
    models: dict[str, Any] = {}  # model_spec_for(...) -> LoadedModel, or the LineupError
    info = model_info(model) if model else None
    if info is not None and info.block is None:
        raise UsageError(f"model {model} is not GPT-2 small shaped and is not a bundled toy, "
                         "so it plays no puzzle block")
    problems: list[Problem] = []
    seen_ids: dict[str, str] = {}
    seen_orders: dict[tuple[str, int], str] = {}
    ladders: dict[str, list[tuple[Puzzle, Doc, Path]]] = {}
    for path in expand_paths(paths):
        doc = read_yaml(path)
        if _is_circuit(doc):
            problems.extend(_validate_circuit_file(doc, info))
            continue
        puzzle, found = parse_puzzle(doc)
        problems.extend(found)
        if puzzle is None:
            continue
        static, ready = _static(puzzle, doc)
        problems.extend(static)
        mine = len(found) + len(static)
        if puzzle.id and puzzle.id in seen_ids:
            problems.append(Problem(str(path), *doc.where(("id",)),
                                    f"id {puzzle.id!r} is also used by {seen_ids[puzzle.id]}"))
        if puzzle.id:
            seen_ids.setdefault(puzzle.id, str(path))
        key = (puzzle.ladder, puzzle.order)
        if not {"ladder", "order"} & puzzle.broken:
            if key in seen_orders:
                problems.append(Problem(str(path), *doc.where(("order",)),
                                        f"{puzzle.ladder} ladder already has order "
                                        f"{puzzle.order} ({seen_orders[key]})"))
            seen_orders.setdefault(key, str(path))
        if not ready:
            continue
        ladders.setdefault(puzzle.ladder, []).append((puzzle, doc, path))
        for block_name, spec in _targets(puzzle, info, notes):
            block = puzzle.block(block_name)
            if block is None:
                notes.append(f"{path}: no {block_name} block, so the puzzle is locked for {spec}")
                continue
            target = model_info(spec) if info is None else info
            tokens = check_tokens(puzzle, doc, tokenizer_for(target), spec, block,
                                  target.n_positions)
            problems.extend(tokens)
            if info is None:
                continue
            if mine or tokens:
                notes.append(f"{path}: reference solution not graded on {spec}: fix the "
                             "problems above first")
                continue
            if grader is None or load is None:
                # grading needs the judge, which lives above this module: the default is
                # engine.authoring's (imported only here, when a model is asked for)
                from engine import authoring

                grader, load = authoring.check_reference_with_judge, authoring.judge_model
            lm = load(puzzle, spec, device, models, notes, progress)
            if lm is not None:
                problems.extend(grader(puzzle, spec, doc=doc, lm=lm, progress=progress))
    for members in ladders.values():
        members.sort(key=lambda m: m[0].order)
        docs = {m[0].id: (m[1], m[2]) for m in members}
        blocks = [info.block] if info is not None and info.block else None
        for r in ladder_reveals([m[0] for m in members], blocks):
            doc, path = docs[r.puzzle]
            problems.append(Problem(str(path), *doc.where(("models", r.block, "given", r.index)),
                                    r.message))
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.col, p.message))


def _targets(puzzle: Puzzle, info: ModelInfo | None, notes: list[str]) -> list[tuple[str, str]]:
    """(block, model spec) pairs to check a puzzle's tokens against."""
    if info is not None:
        return [(info.block or "", info.spec)]
    out = []
    for name, block in puzzle.models.items():
        if name == "gpt2":
            out.append(("gpt2", "gpt2"))
        elif name == "smollm2":
            from engine.smollm2 import converted_dir

            if converted_dir() is None:
                msg = ("SmolLM2 is not converted (`lineup download smollm2`): smollm2 blocks "
                       "were checked without its tokenizer")
                if msg not in notes:
                    notes.append(msg)
            else:
                out.append(("smollm2", "smollm2"))
        else:
            toy = block.toy or "toy"
            if toy_config(toy) is None:
                msg = f"toy model {toy!r} is not built: toy blocks were checked without it"
                if msg not in notes:
                    notes.append(msg)
            else:
                out.append(("toy", toy))
    return out


def _block_of(model: str | None) -> str | None:
    """The block a circuit's ``model:`` names (gpt2, random-gpt2 -> gpt2; a toy -> toy)."""
    from engine.models import block_for_spec

    return block_for_spec(model)


def _validate_circuit_file(doc: Doc, info: ModelInfo | None) -> list[Problem]:
    from engine.puzzle import PuzzleError, find_puzzle

    circuit, problems = parse_circuit(doc)
    if circuit is None or problems:
        return problems
    try:
        puzzle = find_puzzle(circuit.puzzle)
    except (UsageError, PuzzleError) as exc:
        return [Problem(doc.path, *doc.where(("puzzle",)), str(exc))]
    block = info.block if info else _block_of(circuit.model)
    blocks = [block] if block else list(puzzle.models)
    # a circuit without `model:` passes when it fits any block the puzzle has
    if not block:
        results = [check_circuit(circuit, puzzle, b, doc) for b in blocks]
        return [] if any(not r for r in results) else min(results, key=len)
    found: list[Problem] = []
    for b in blocks:
        found.extend(check_circuit(circuit, puzzle, b or "", doc))
    return found
