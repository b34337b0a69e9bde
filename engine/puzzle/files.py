"""The two kinds of Lineup file as whole objects: a ``Puzzle`` and a player's ``Circuit``.

They sit above the prompt builder (``Puzzle.build_prompts`` calls it) and below everything that
reads or checks a file; their pieces are the dataclasses of ``engine.puzzle.parts``."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.puzzle.parts import Corruption, Metric, ModelBlock, PromptSpec, Question, RoleSpec
from engine.puzzle.prompts import PromptSet, build_prompts


@dataclass(frozen=True)
class PuzzleText:
    """What the player reads for one model block: the story, the goal and the hints (rot13,
    as written). A block's own text replaces the puzzle's, field by field, so the words on
    screen are about the model being played and no other."""

    story: str
    goal: str
    hints: tuple[str, ...]

    @property
    def hints_plain(self) -> list[str]:
        return [codecs.encode(h, "rot13") for h in self.hints]

    def hint(self, n: int) -> str:
        """Hint ``n`` (0-based), decoded."""
        return codecs.encode(self.hints[n], "rot13")


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

    def text_for(self, block: ModelBlock | str | None) -> PuzzleText:
        """The story, goal and hints for a model block (a block or its name): the block's
        own where it gives them, else the puzzle's. Every place that shows text uses this."""
        if isinstance(block, str):
            block = self.block(block)
        own = block if isinstance(block, ModelBlock) else None
        story = own.story if own is not None and own.story is not None else self.story
        goal = own.goal if own is not None and own.goal is not None else self.goal
        hints = own.hints if own is not None and own.hints is not None else self.hints
        return PuzzleText(story, goal, tuple(hints))

    def locked_for(self, block_name: str | None) -> bool:
        return self.block(block_name) is None

    @property
    def hints_plain(self) -> list[str]:
        """The puzzle's own hints, decoded (a block's may replace them: ``text_for``)."""
        return [codecs.encode(h, "rot13") for h in self.hints]

    def hint(self, n: int) -> str:
        """The puzzle's own hint ``n`` (0-based), decoded (see ``text_for`` for a block's)."""
        return codecs.encode(self.hints[n], "rot13")

    def given(self, block_name: str) -> list[Question]:
        block = self.block(block_name)
        return list(block.given) if block else []

    def build_prompts(self, tokenizer: Any, split: str = "play") -> PromptSet:
        """Seeded prompts (``play`` or ``heldout``), corrupted twins, role positions and answer
        token ids; see ``engine.puzzle.prompts.build_prompts``."""
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
