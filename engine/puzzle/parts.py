"""The pieces of a puzzle file, each a plain dataclass: prompts, roles, metric, corruption,
model blocks, questions, and the located ``Problem`` every check reports.

They sit at the bottom of ``engine.puzzle``: no YAML, no tokenizer, no model, so the reader,
the checks, the prompt builder and the judge can all share them without importing each
other. The whole-file types (``Puzzle``, ``Circuit``) are in ``engine.puzzle.files``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LADDERS = ("induction", "ioi", "docstring", "pronoun", "beyond")
LADDER_TITLES = {
    "induction": "Induction: copying what came next last time",
    "ioi": "Indirect objects: who gets the drink?",
    "docstring": "Docstrings: which argument comes next?",
    "pronoun": "Pronouns: she or he?",
    "beyond": "Beyond: when thinking matters",
}
BLOCKS = ("gpt2", "smollm2", "toy")  # one block per model family a puzzle supports
METRIC_KINDS = ("logit_diff", "logprob", "greater_than")
ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a file, located at a 1-based line and column."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"



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
    written in the puzzle itself (``list`` is then ``"inline"``).

    Fills of a table (``fill: {NAME: {rows: gendered_names, with: [PRONOUN, OTHER]}}``) are
    drawn together, one row per prompt, so a name keeps its pronoun: each column is a fill
    whose ``group`` is the first column's fill name (``NAME``) and ``column`` its index; row
    ``i`` is ``words[i]`` of every column. A column may serve only as an answer word of the
    metric and stand in no template."""

    list: str
    words: list[str]
    group: str | None = None
    column: int = 0

    @property
    def follows(self) -> bool:
        """True for a table's later columns: their word comes with the first column's row."""
        return self.group is not None and self.column > 0


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
    minus p(those at or below it), at ``at``. ``correct``/``wrong`` are role names (the answer
    is the token that person holds) or answer texts with placeholders, such as ``" {PRONOUN}"``
    (the answer is that text, filled from the clean prompt's words, as one token): answers
    that stand nowhere in the prompt."""

    kind: str
    at: str
    correct: str
    wrong: str | None = None


def is_answer_text(value: str | None) -> bool:
    """Whether a metric's ``correct``/``wrong`` is an answer text (``" {PRONOUN}"``) rather
    than a role name."""
    return value is not None and PLACEHOLDER.search(value) is not None


def answer_label(value: str) -> str:
    """A metric side in the line's words: a role's name as it is (``IO``), an answer text by
    what fills it (``" {PRONOUN}"`` -> ``PRONOUN``)."""
    if not is_answer_text(value):
        return value
    return PLACEHOLDER.sub(lambda m: m.group(1).strip(), value).strip()


def fill_answer(text: str, fills: dict[str, str]) -> str:
    """An answer text with each ``{FILL}`` replaced by that fill's word in one prompt."""
    return PLACEHOLDER.sub(lambda m: fills[m.group(1).strip()], text)


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
    """How one model family (``gpt2``, ``smollm2`` or ``toy``) plays the puzzle."""

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
    # Text for this model only, replacing the puzzle's own when this block is played (None:
    # the puzzle's). Models solve a task differently, and a player on one model must not read
    # about another's heads; ``Puzzle.text_for`` picks the text.
    story: str | None = None
    goal: str | None = None
    hints: list[str] | None = None  # rot13, as written in the file

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

