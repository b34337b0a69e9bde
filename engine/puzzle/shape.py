"""The shape of puzzle and circuit files: plain YAML data turned into dataclasses.

``parse_puzzle(doc) -> (Puzzle | None, problems)`` / ``parse_circuit(doc) -> (Circuit | None, ...)``
report every shape problem at once (wrong type, missing or unknown key, with a difflib "did you
mean"). Parts that are broken are left out and the rest is still parsed, so the meaning checks
of ``engine.puzzle.checks`` can run on them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.cards import CARDS, card_id
from engine.limits import MAX_HINT, MAX_LABEL, MAX_NAME, MAX_TITLE, too_long
from engine.puzzle.fields import FieldReader, cut, type_name
from engine.puzzle.files import Circuit, Puzzle
from engine.puzzle.parts import (
    BLOCKS,
    ID_PATTERN,
    LADDERS,
    METRIC_KINDS,
    NAME_PATTERN,
    PLACEHOLDER,
    Corruption,
    FillSource,
    Metric,
    ModelBlock,
    Problem,
    PromptSpec,
    Question,
    RoleSpec,
    Thresholds,
)
from engine.puzzle.reader import Doc, read_yaml
from engine.puzzle.selectors import parse_selector
from engine.puzzle.suggest import did_you_mean, one_of

PUZZLE_KEYS = ["id", "title", "ladder", "order", "goal", "story", "prompts", "roles", "metric",
               "corrupt", "cards", "given", "hints", "models"]
PUZZLE_REQUIRED = ["id", "title", "ladder", "order", "story", "prompts", "roles", "metric",
                   "corrupt", "cards", "hints", "models"]
PROMPTS_KEYS = ["templates", "fill", "count", "seed", "heldout"]
HELDOUT_KEYS = ["count", "seed"]
METRIC_KEYS = ["logit_diff", "logprob", "greater_than", "at"]
CORRUPT_KEYS = ["resample", "distinct"]
BLOCK_KEYS = ["rounds", "kept", "solution", "given", "pass", "toy", "story", "goal", "hints"]
PASS_KEYS = ["faithfulness", "heldout", "within", "without"]
QUESTION_KEYS = ["round", "asker", "card", "responder"]
CIRCUIT_KEYS = ["puzzle", "model", "questions"]
MAX_LAYER = 1000


_WORD_LISTS: dict[str, list[str]] | None = None
_WORD_TABLES: dict[str, list[list[str]]] = {}
TABLE_KEYS = ["rows", "with"]


def word_lists() -> dict[str, list[str]]:
    """The named word lists of puzzles/words.yaml (read once). Its tables (lists of rows)
    are in ``word_tables``."""
    global _WORD_LISTS
    if _WORD_LISTS is None:
        from puzzles import PUZZLES_DIR

        doc = read_yaml(PUZZLES_DIR / "words.yaml")
        lists: dict[str, list[str]] = {}
        if isinstance(doc.data, dict):
            for name, words in doc.data.items():
                if not isinstance(words, list):
                    continue
                if words and all(isinstance(w, list) for w in words):
                    _WORD_TABLES[name] = [[str(w) for w in row] for row in words]
                else:
                    lists[name] = [str(w) for w in words if isinstance(w, (str, int))]
        _WORD_LISTS = lists
    return _WORD_LISTS


def word_tables() -> dict[str, list[list[str]]]:
    """The tables of puzzles/words.yaml: rows of words that fill several slots together."""
    word_lists()
    return _WORD_TABLES



def parse_puzzle(doc: Doc) -> tuple[Puzzle | None, list[Problem]]:
    """Build a Puzzle from a read Doc. Shape problems go to ``doc.problems``. Whenever the
    file is a mapping a Puzzle is returned, so meaning checks can run on the parts that are
    fine; top-level sections that could not be read (or model blocks, as ``models.gpt2``) are
    named in ``Puzzle.broken`` and hold empty stand-ins. Such a Puzzle is for reporting only:
    ``load_puzzle`` refuses any file with problems."""
    if doc.data is None:
        return None, doc.problems
    r = FieldReader(doc)
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


def _parse_prompts(at: tuple, value: Any, r: FieldReader) -> PromptSpec | None:
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
                r.problem(where, f"fill name {cut(name)!r} {too_long(name)}", key=True)
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
            elif isinstance(source, dict):
                table = _parse_table(where, name, source, r, set(fm))
                if table is None:
                    ok = False
                else:
                    fill.update(table)
            elif isinstance(source, list):
                words = []
                for j, w in enumerate(source):
                    if not isinstance(w, str) or not w.strip() or w != w.strip():
                        r.problem((*where, j), "each word must be text without surrounding "
                                               f"spaces, not {type_name(w)} {w!r}")
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
                r.problem(where, f"fill {name!r} must name a word list (e.g. names), list "
                                 f"words, or take rows ({{rows: ..., with: [...]}}), not "
                                 f"{type_name(source)}")
                ok = False
    count = r.integer((*at, "count"), m["count"], 1, 1024) if "count" in m else 32
    seed = r.integer((*at, "seed"), m["seed"], 0, 2**31) if "seed" in m else 1
    hcount, hseed = count, (seed + 1 if seed is not None else None)
    if "heldout" in m:
        h = r.fields((*at, "heldout"), m["heldout"], {
            "count": lambda where, x: r.integer(where, x, 1, 1024),
            "seed": lambda where, x: r.integer(where, x, 0, 2**31)})
        if h is None:
            ok = False
        else:
            hcount, hseed = h.get("count", hcount), h.get("seed", hseed)
    if not ok or None in (count, seed, hcount, hseed):
        return None
    return PromptSpec(templates, fill, count, seed, hcount, hseed)


def _parse_table(at: tuple, name: str, value: dict, r: FieldReader, names: set[str]
                 ) -> dict[str, FillSource] | None:
    """``NAME: {rows: TABLE, with: [PRONOUN, OTHER]}``: NAME takes the first word of a row of
    TABLE (a table of words.yaml, or rows written inline), PRONOUN and OTHER the next words
    of the same row. The columns become fills of one group, drawn together."""
    m = r.mapping(at, value, TABLE_KEYS, TABLE_KEYS, what=f"fill {name!r}")
    if m is None or not all(k in m for k in TABLE_KEYS):
        return None
    rows_at, with_at = (*at, "rows"), (*at, "with")
    rows: list[list[str]] = []
    label = "inline"
    tables = word_tables()
    if isinstance(m["rows"], str):
        if m["rows"] not in tables:
            known = tables or {"(none)": []}
            r.problem(rows_at, f"unknown table {m['rows']!r}{did_you_mean(m['rows'], tables)};"
                               f" puzzles/words.yaml has the tables {one_of(known)}")
            return None
        rows, label = tables[m["rows"]], m["rows"]
    else:
        raw = r.seq(rows_at, m["rows"], what="`rows`")
        if raw is None:
            return None
        for i, row in enumerate(raw):
            if not isinstance(row, list) or not all(
                    isinstance(w, str) and w.strip() and w == w.strip() for w in row):
                r.problem((*rows_at, i), "each row must be a list of words without surrounding "
                                         f"spaces, not {type_name(row)} {cut(str(row))!r}")
                return None
            rows.append(list(row))
    cols = r.seq(with_at, m["with"], what="`with`")
    if cols is None:
        return None
    out = {name: FillSource(label, [row[0] for row in rows if row], name, 0)}
    for j, col in enumerate(cols):
        cname = r.name((*with_at, j), col, what="a column's fill name")
        if cname is None:
            return None
        if cname in out or cname in names:
            r.problem((*with_at, j), f"fill {cname!r} is defined twice")
            return None
        out[cname] = FillSource(label, [], name, j + 1)
    width = len(out)
    short = [i for i, row in enumerate(rows) if len(row) != width]
    if short:
        r.problem(rows_at, f"fill {name!r} takes {width} words per row ({name} and "
                           f"{', '.join(list(out)[1:])}), but row {short[0] + 1} has "
                           f"{len(rows[short[0]])}")
        return None
    firsts = [row[0] for row in rows]
    twice = sorted({w for w in firsts if firsts.count(w) > 1})
    if twice:
        r.problem(rows_at, f"fill {name!r}: rows must differ in their first word; "
                           f"{', '.join(map(repr, twice[:5]))} starts more than one")
        return None
    if not rows:
        r.problem(rows_at, f"fill {name!r} has no rows")
        return None
    for source in out.values():
        source.words = [row[source.column] for row in rows]
    return out


def _parse_roles(at: tuple, value: Any, r: FieldReader) -> dict[str, RoleSpec] | None:
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
            r.problem((*at, name), f"role name {cut(name)!r} {long}" if long else
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


def _parse_metric(at: tuple, value: Any, r: FieldReader) -> Metric | None:
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
        correct = _answer((*at, kind, "correct"), d["correct"], r, "`correct`")
        wrong = _answer((*at, kind, "wrong"), d["wrong"], r, "`wrong`")
        if None in (correct, wrong, at_role):
            return None
        return Metric(kind, at_role, correct, wrong)
    role = (_answer((*at, kind), body, r, f"`{kind}`") if kind == "logprob"
            else r.name((*at, kind), body, what=f"`{kind}`"))
    if None in (role, at_role):
        return None
    return Metric(kind, at_role, role)


def _answer(at: tuple, value: Any, r: FieldReader, what: str) -> str | None:
    """A metric's answer: a role name, or an answer text such as ``" {PRONOUN}"`` (kept as
    written, spaces included: the answer is that text filled in, as one token)."""
    if isinstance(value, str) and ("{" in value or "}" in value):
        rest = PLACEHOLDER.sub("", value)
        if "{" in rest or "}" in rest:
            r.problem(at, f"{what}: {value!r} has a brace without its partner")
            return None
        if too_long(value):
            r.problem(at, f"{what} {too_long(value)}")
            return None
        return value
    return r.name(at, value, what=what)


def _parse_corrupt(at: tuple, value: Any, r: FieldReader) -> Corruption | None:
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


def _parse_cards(at: tuple, value: Any, r: FieldReader) -> list[str] | None:
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


def _parse_hints(at: tuple, value: Any, r: FieldReader) -> list[str] | None:
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


def _parse_questions(at: tuple, value: Any, r: FieldReader, *, empty_ok: bool = False
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


def parse_question(at: tuple, value: Any, r: FieldReader) -> Question | None:
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


def _parse_models(at: tuple, value: Any, r: FieldReader, top_given: list[Question],
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


def _parse_block(at: tuple, name: str, value: Any, r: FieldReader, top_given: list[Question]
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
                r.problem(where, f"round name {cut(rname)!r} {long}" if long else
                          f"round name {rname!r} must be a letter, then letters, digits, _, + "
                          "or -", key=True)
                ok = False
                continue
            if isinstance(span, int) and not isinstance(span, bool):
                span = [span, span]
            if (not isinstance(span, list) or len(span) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)):
                r.problem(where, f"round {rname!r} must be a layer range [first, last] or one "
                                 f"layer, not {type_name(span)}")
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
                                     f"one layer), not {type_name(m['kept'])}")
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
        found = r.fields((*at, "pass"), m["pass"], {
            "faithfulness": lambda where, x: r.number(where, x, 0.0, 1.0, what="faithfulness"),
            "heldout": lambda where, x: r.number(where, x, 0.0, 1.0, what="heldout"),
            "within": lambda where, x: r.number(where, x, 0.0, 1.0, what="within"),
            "without": lambda where, x: r.name(where, x, what="without")})
        if found is None or None in found.values():
            ok = False
        else:
            thresholds = Thresholds(**found)  # PASS_KEYS are Thresholds' own fields
        if found is not None and "without" in found and "within" not in found:
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
    # this model's own text (None: the puzzle's), read like the puzzle's own keys
    story = r.text((*at, "story"), m["story"]) if "story" in m else None
    goal = r.text((*at, "goal"), m["goal"]) if "goal" in m else None
    hints = _parse_hints((*at, "hints"), m["hints"], r) if "hints" in m else None
    if any(k in m and v is None for k, v in (("story", story), ("goal", goal),
                                             ("hints", hints))):
        ok = False
    if not ok or solution is None or given is None:
        return None
    return ModelBlock(name, rounds, solution, given, thresholds, toy, kept, story=story,
                      goal=goal, hints=hints)



def parse_circuit(doc: Doc) -> tuple[Circuit | None, list[Problem]]:
    """Build a Circuit from a read Doc (shape only; ``engine.validate.check_circuit`` checks
    it against a puzzle)."""
    if doc.data is None:
        return None, doc.problems
    r = FieldReader(doc)
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
