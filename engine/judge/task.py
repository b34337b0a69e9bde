"""Whether the model does the puzzle's task at all: nothing is graded otherwise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.judge.runs import _Split
from engine.judge.thresholds import NOISE_Z, TASK_ACCURACY, _num, _pct

if TYPE_CHECKING:
    from engine.puzzle import Puzzle


@dataclass
class TaskCheck:
    ok: bool
    gap: float
    noise: float  # standard error of the gap
    accuracy: float
    message: str


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return 0.0, math.inf
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0  # one prompt has no spread to measure: its value is all we know
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def task_check(split: _Split, puzzle: Puzzle) -> TaskCheck:
    """Does the model do the puzzle's task? The gap (clean minus corrupted) must be positive
    and ``NOISE_Z`` standard errors clear of zero, and ``TASK_ACCURACY`` of the prompts must
    be answered right."""
    clean = [float(x) for x in split.data["clean"]]
    corrupted = [float(x) for x in split.data["corrupted"]]
    gap, se = _mean_se([a - b for a, b in zip(clean, corrupted, strict=True)])
    acc = float(split.data["answered"].mean()) if "answered" in split.data else math.nan
    what = _task_words(puzzle)
    ok = gap > 0 and gap >= NOISE_Z * se and not acc < TASK_ACCURACY
    if ok:
        message = (f"the model does the task: {what} on {_pct(acc)} of the prompts; the guess "
                   f"changes by {_num(gap)} when the sentence is swapped (noise {_num(se)})")
    elif not acc >= TASK_ACCURACY:
        message = (f"this model does not do the task: {what} on only {_pct(acc)} of the "
                   f"prompts (it needs {TASK_ACCURACY:.0%}), so there is no circuit to find "
                   f"(metric {_num(split.clean)} on the real sentences, "
                   f"{_num(split.corrupted)} on the swapped ones)")
    else:
        message = (f"this model does not do the task: swapping the sentence changes the guess "
                   f"by {gap:.2g}, inside its own noise ({se:.2g}), so nothing here can be "
                   "measured")
    return TaskCheck(ok, gap, se, acc, message)


def _task_words(puzzle: Puzzle) -> str:
    from engine.puzzle.parts import answer_label

    m = puzzle.metric
    if m.kind == "logit_diff":
        return f"{m.at} prefers {answer_label(m.correct)} over {answer_label(m.wrong)}"
    if m.kind == "logprob":
        return f"{m.at}'s top guess is {answer_label(m.correct)}"
    return f"{m.at} puts more weight on numbers above {m.correct} than below"
