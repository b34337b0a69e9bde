"""What the screens show, as plain data: no Textual, no torch, no judge.

The engine bridge fills these from the model (``AttentionView``, ``SwapView``,
``Prediction``); ``line_of`` draws a puzzle's first prompt as a line of people with a word
splitter, so a puzzle opens before torch is imported; ``saved_questions`` checks a saved
circuit against the puzzle before any screen uses it. Widgets import this module, never the
bridge or the judge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.puzzle import ModelBlock, Puzzle

QUESTION_FIELDS = ("round", "asker", "card", "responder")


@dataclass
class LineView:
    """A prompt as people: ``tokens[i]`` is person i's word; ``roles`` name some of them;
    ``at`` is the person whose guess the puzzle scores."""

    text: str
    tokens: list[str]
    roles: dict[str, int]
    at: int | None

    def label(self, pos: int) -> str:
        names = [name for name, p in self.roles.items() if p == pos]
        return "/".join(names)


@dataclass
class AttentionView:
    """``pattern[q][k]``: how much person q listens to person k in head ``layer.head``."""

    text: str
    tokens: list[str]
    layer: int
    head: int
    n_layers: int
    n_heads: int
    pattern: list[list[float]]


@dataclass
class SwapView:
    """Activation patching for a puzzle's metric, in the units of ``lineup patch``: the
    fraction of the clean-minus-corrupted gap restored (1 = all of it). ``by_role[layer][j]``:
    the person ``roles[j]`` swapped in at the start of round ``layer``; ``heads[layer][h]``:
    head ``layer.h``'s output swapped in. ``clean_text`` and ``corrupted_text`` are the first
    prompt and its corrupted twin."""

    roles: list[str]
    by_role: list[list[float]]
    heads: list[list[float]]
    metric_clean: float
    metric_corrupted: float
    clean_text: str = ""
    corrupted_text: str = ""


@dataclass
class Prediction:
    text: str
    tokens: list[str]
    top: list[tuple[str, float]]

    @classmethod
    def from_lens(cls, lens: Any) -> Prediction:
        """The model's prediction is the lens's last stage at the last person: no second run."""
        return cls(lens.text, list(lens.tokens), list(lens.layers[-1].positions[-1].top))


# --------------------------------------------------------------------------- the line, cheaply


class WordTokenizer:
    """Splits text into words and punctuation (the space stays with the word, as in GPT-2).
    Enough for ``engine.puzzle.build_prompts`` to find every role without transformers."""

    PIECE = re.compile(r"\s*\d{1,2}|\s*[^\W\d]+'?\w*|\s*[^\w\s]|\s+$")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        out = []
        for piece in self.PIECE.findall(text):
            if piece not in self.ids:
                self.ids[piece] = len(self.words)
                self.words.append(piece)
            out.append(self.ids[piece])
        return out

    def decode(self, ids: list[int]) -> str:
        return "".join(self.words[i] for i in ids)


def words_of(text: str) -> list[str]:
    tok = WordTokenizer()
    return [tok.decode([i]) for i in tok.encode(text)]


def story_fills(puzzle: Puzzle, block: Any = None) -> tuple[int, dict[str, str]] | None:
    """The template and fill words of a sentence the story quotes (``"When Mary and John
    went to the store, ..."``), so the line on screen holds the people the story names.
    The story is the one shown for ``block`` (a model block or its name; ``text_for``).
    None when the story quotes no sentence of the puzzle's templates."""
    from engine.puzzle import Template

    story = " ".join(str(puzzle.text_for(block).story).split())
    for k, text in enumerate(puzzle.prompts.templates):
        template = Template.parse(text)
        groups = {name: f"f{j}" for j, name in enumerate(dict.fromkeys(template.occurrences))}
        pattern, seen = "", set()
        for j, literal in enumerate(template.literals):
            pattern += _literal_pattern(literal)
            if j < len(template.occurrences):
                name = template.occurrences[j]
                pattern += f"(?P={groups[name]})" if name in seen else \
                    rf"(?P<{groups[name]}>[^\W\d][\w']*)"
                seen.add(name)
        found = re.search(pattern, story) if template.occurrences else None
        if found:
            return k, {name: found.group(group) for name, group in groups.items()}
    return None


def _literal_pattern(literal: str) -> str:
    """A template's literal text as a regex that allows any run of spaces or newlines."""
    if not literal.strip():
        return r"\s+" if literal else ""
    core = r"\s+".join(re.escape(part) for part in literal.split())
    return (r"\s*" if literal[:1].isspace() else "") + core + \
        (r"\s+" if literal[-1:].isspace() else "")


def story_line(puzzle: Puzzle, block: Any = None) -> LineView | None:
    """The line for the sentence the story quotes, with every role found (see
    ``story_fills``), or None."""
    import copy

    from engine.puzzle import FillSource, build_prompts

    fills = story_fills(puzzle, block)
    if fills is None:
        return None
    k, words = fills
    mine = copy.deepcopy(puzzle)
    mine.prompts.templates = [puzzle.prompts.templates[k]]
    mine.prompts.count = 1
    mine.prompts.fill = {name: FillSource("inline", [word]) for name, word in words.items()}
    mine.corrupt.resample = []
    try:
        ps = build_prompts(mine, WordTokenizer(), "play")
    except Exception:  # a quote the word splitter cannot place: the sampled line instead
        return None
    return LineView(ps.texts[0], list(ps.tokens[0]),
                    {name: pos[0] for name, pos in ps.roles.items()},
                    ps.roles[puzzle.metric.at][0] if puzzle.metric.at in ps.roles else None)


def line_of(puzzle: Puzzle, index: int = 0, block: Any = None) -> LineView:
    """Prompt ``index`` of a puzzle as a line of people (no torch, no transformers); for the
    first, the sentence the story (``block``'s, when given) quotes when there is one, so the
    names in the story are the people in the line. A puzzle whose prompts cannot be drawn
    gets its role names."""
    from engine.errors import LineupError
    from engine.puzzle import Template, build_prompts, sample

    if index == 0:
        quoted = story_line(puzzle, block)
        if quoted is not None:
            return quoted
    try:
        ps = build_prompts(puzzle, WordTokenizer(), "play")
    except LineupError:  # the word splitter disagrees with the model's tokenizer: plain words
        try:
            raw = sample(puzzle, "play")[index]
            text, _ = Template.parse(puzzle.prompts.templates[raw.template]).render(raw.words)
        except Exception:  # a broken puzzle still opens, as its role names
            return role_line(puzzle)
        words = words_of(text)
        return LineView(text, words, {}, len(words) - 1)
    except Exception:
        return role_line(puzzle)
    return LineView(
        text=ps.texts[index],
        tokens=list(ps.tokens[index]),
        roles={name: pos[index] for name, pos in ps.roles.items()},
        at=ps.roles[puzzle.metric.at][index] if puzzle.metric.at in ps.roles else None,
    )


def round_of_layer(block: ModelBlock | None, layer: int) -> str:
    """Where a layer stands in a puzzle block, in the game's one meaning of "round" (a named
    range of layers): ``round middle``, ``played for you`` (a kept layer), or ``""``."""
    if block is None:
        return ""
    name = block.round_of(layer)
    if name is not None:
        return f"round {name}"
    return "played for you" if block.is_kept(layer) else ""


def rounds_legend(block: ModelBlock | None) -> str:
    """A block's rounds as layer ranges, in layer order, for the tools that work layer by
    layer: ``rounds: early 0-3 · middle 4-6 · late 9-11 · 7-8 played for you``."""
    if block is None:
        return ""
    spans = [(span, name) for name, span in block.rounds.items()]
    spans += [(span, "") for span in block.kept]
    parts = []
    for (lo, hi), name in sorted(spans):
        layers = f"{lo}" if lo == hi else f"{lo}-{hi}"
        parts.append(f"{name} {layers}" if name else f"{layers} played for you")
    return "rounds: " + " · ".join(parts)


def role_line(puzzle: Puzzle) -> LineView:
    return LineView("", list(puzzle.roles), {r: k for k, r in enumerate(puzzle.roles)}, None)


def corrupted_line(puzzle: Puzzle, index: int = 0) -> str:
    """The corrupted twin of prompt ``index`` (what the swap tool swaps people from), or ""."""
    from engine.puzzle import build_prompts

    try:
        ps = build_prompts(puzzle, WordTokenizer(), "play")
        return str(ps.corrupted[index])
    except Exception:  # the text is a courtesy; the numbers do not need it
        return ""


# --------------------------------------------------------------------------- saved circuits


def key_of(q: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    return (q.get("round"), q.get("asker"), q.get("card"), q.get("responder"))


def saved_questions(raw: Any, puzzle: Puzzle, block: ModelBlock
                    ) -> tuple[list[dict[str, str]], list[str]]:
    """The questions of a saved (or opened) circuit that this puzzle can use on this model,
    and one plain message per question left out (a missing or mistyped field, a round, card
    or person this puzzle does not have). Never raises, whatever ``raw`` is."""
    from engine.puzzle import CARDS, Question, card_id, question_problems

    if not isinstance(raw, list | tuple):
        return [], ([] if raw in (None, "") else ["the saved circuit is not a list of questions"])
    out: list[dict[str, str]] = []
    problems: list[str] = []
    for k, q in enumerate(raw, start=1):
        why = None
        if not isinstance(q, dict):
            why = "it is not a question"
        else:
            missing = [f for f in QUESTION_FIELDS[:3] if f not in q]
            wrong = [f for f in QUESTION_FIELDS if f in q and not isinstance(q[f], str)
                     and not (f == "responder" and q[f] is None)]
            extra = sorted(str(f) for f in q if f not in QUESTION_FIELDS)
            if missing:
                why = "it has no " + " and no ".join(f"`{f}`" for f in missing)
            elif wrong:
                why = "its " + " and ".join(f"`{f}`" for f in wrong) + " is not text"
            else:
                problems_ = question_problems(
                    Question(q["round"], q["asker"], q["card"], q.get("responder")), puzzle,
                    block)
                why = problems_[0].message if problems_ else None
                if why is None and extra:
                    problems.append(f"question {k}: ignored the unknown "
                                    f"field{'s' if len(extra) > 1 else ''} "
                                    + ", ".join(repr(e) for e in extra))
        if why is not None:
            problems.append(f"question {k} was left out: {why}")
            continue
        clean = {"round": q["round"], "asker": q["asker"], "card": card_id(q["card"])}
        if CARDS[clean["card"]].responder:
            clean["responder"] = q["responder"]
        if any(key_of(clean) == key_of(o) for o in out):
            continue
        out.append(clean)
    return out, problems
