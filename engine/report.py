"""The judge's report and the star rule, without torch.

These plain dataclasses are what the judge returns, what the game shows, what the fake engine
(``game.engine_bridge.FakeEngine``) builds and what ``--json`` prints. The star rule lives here
once (``stars_for``), so the fake engine and the judge cannot disagree about it.

Messages never give the answer away: a wrong verdict's ``message`` says why in the line's
terms and with numbers; what would reveal the answer (the round where the question does hold,
the person the asker really listens to, the heads' numbers) is in ``QuestionReport.reveal``,
for a UI to show after a solve or as a hint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("confirmed", "not-needed", "not-measurable", "wrong-responder", "wrong-round",
            "no-such-question", "invalid")
"""Every verdict a question can get. ``confirmed`` and ``not-needed`` hold (the question
describes something the model does); ``not-measurable`` means the evidence is inside the
noise (or the model does not do the task), which is never a pass."""

HOLDING = ("confirmed", "not-needed")


def num(x: float | None) -> float | None:
    """JSON has no NaN: unknown numbers become null; others are rounded for reading."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), 4)


@dataclass
class HeadEvidence:
    """One head's numbers for a question."""

    head: str  # "9.9"
    layer: int
    index: int
    attention: float  # mean attention from asker to responder over the play prompts
    detector: float  # the card's own score for this head (nan if none was measured)
    effect: float  # this head alone, noised at the asker: fraction of (clean - corrupted)
    share: float = math.nan  # effect / the question's heads together (nan if not measured)

    def to_json(self) -> dict[str, Any]:
        return {"head": self.head, "head_id": f"L{self.layer}H{self.index}",
                **{k: num(v) for k, v in asdict(self).items() if k != "head"}}


@dataclass
class QuestionReport:
    round: str
    asker: str
    card: str
    responder: str | None
    given: bool
    verdict: str
    message: str
    heads: list[HeadEvidence] = field(default_factory=list)
    effect: float = math.nan  # the question's heads together, noised at the asker
    drop_loss: float = math.nan  # faithfulness lost when the question is dropped
    reveal: dict[str, Any] = field(default_factory=dict)
    """Answer-revealing details a UI may show after a solve: ``round`` (where the question
    holds), ``responder`` (whom the asker listens to), ``heads`` (head names)."""
    numbers: dict[str, float] = field(default_factory=dict)
    """The measurements behind the verdict, by name (``effect``, ``direct``, ``through_queries``,
    ``noise``, ``copy``...), as fractions of the clean-corrupted gap where they are effects."""

    @property
    def why(self) -> str:
        """The reason, in the line's terms, with numbers, never naming the answer."""
        return self.message

    @property
    def fix(self) -> str:
        """What would make the question right, from ``reveal`` (empty when nothing is
        revealed): for hints and after a solve only."""
        parts = []
        if "round" in self.reveal:
            parts.append(f"this question is asked in round {self.reveal['round']}")
        if "responder" in self.reveal:
            parts.append(f"in this round {self.asker} listens to {self.reveal['responder']}")
        heads = self.reveal.get("heads") or []
        if heads:
            parts.append(("heads " if len(heads) > 1 else "head ") + ", ".join(heads))
        return "; ".join(parts)

    @property
    def holds(self) -> bool:
        """Whether the question counts for the first star (a given question always does: it
        is the puzzle's, never held against the player)."""
        return self.given or self.verdict in HOLDING

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round, "asker": self.asker, "card": self.card,
            "responder": self.responder, "given": self.given, "verdict": self.verdict,
            "message": self.message, "effect": num(self.effect),
            "drop_loss": num(self.drop_loss), "heads": [h.to_json() for h in self.heads],
            "reveal": dict(self.reveal), "fix": self.fix,
            "numbers": {k: num(v) for k, v in self.numbers.items()},
        }


@dataclass
class Report:
    puzzle: str
    model: str
    model_label: str
    solved: bool
    stars: int
    metric_full: float
    metric_corrupted: float
    faithfulness: float
    heldout_faithfulness: float | None  # None: not measured, the play prompts did not pass
    pass_line: float
    questions: list[QuestionReport]
    problems: list[str]
    timing_s: dict[str, float]
    heldout_pass_line: float = math.nan
    metric_ablated: float = math.nan
    circuit_heads: list[str] = field(default_factory=list)
    task_ok: bool = True  # the model does the puzzle's task (else nothing is graded)
    task_message: str = ""  # the task check, in words, with its numbers
    accuracy: float = math.nan  # share of play prompts the model gets right
    # the completeness test, when the puzzle asks for one (``pass: within/without``):
    # faithfulness as is, and with the ``without`` card's heads silenced in the circuit and
    # in the model; ``ok`` as 1.0 or 0.0
    completeness: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "puzzle": self.puzzle, "model": self.model, "model_label": self.model_label,
            "solved": self.solved, "stars": self.stars,
            "task_ok": self.task_ok, "task_message": self.task_message,
            "accuracy": num(self.accuracy),
            "metric_full": num(self.metric_full), "metric_corrupted": num(self.metric_corrupted),
            "metric_ablated": num(self.metric_ablated),
            "faithfulness": num(self.faithfulness),
            "heldout_faithfulness": num(self.heldout_faithfulness),
            "pass_line": num(self.pass_line), "heldout_pass_line": num(self.heldout_pass_line),
            "circuit_heads": list(self.circuit_heads),
            "completeness": {k: num(v) for k, v in self.completeness.items()},
            "questions": [q.to_json() for q in self.questions],
            "problems": list(self.problems),
            "timing_s": {k: round(v, 4) for k, v in self.timing_s.items()},
        }


def stars_for(questions: Sequence[QuestionReport], faithfulness: float, pass_line: float,
              heldout: float | None, heldout_line: float, *, task_ok: bool = True,
              right_puzzle: bool = True, complete: bool = True) -> int:
    """The star rule.

    0: the model does not do the task, the circuit is for another puzzle, there is no
    question, or a question the player placed does not hold. 1: every question holds.
    2: and faithfulness on the play prompts reaches the pass line, and the completeness
    test holds where the puzzle asks for one (solved). 3: and the
    held-out prompts reach theirs, with no question the player placed ``not-needed``.
    """
    if not task_ok or not right_puzzle or not questions:
        return 0
    if not all(q.holds for q in questions):
        return 0
    if not faithfulness >= pass_line or not complete:
        return 1
    spare = any(q.verdict == "not-needed" and not q.given for q in questions)
    if heldout is not None and heldout >= heldout_line and not spare:
        return 3
    return 2
