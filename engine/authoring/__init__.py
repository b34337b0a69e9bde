"""Authoring checks that need the judge: the only package that joins puzzle checks and grading.

``engine.validate`` checks files without any model; ``validate_paths`` here runs it with the
judge grading each puzzle on ``--model M`` (``engine.authoring.reference``): the reference
solution must be solved and the ``trivial_circuits`` (``engine.authoring.trivial``) must not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from engine.authoring.reference import check_reference_with_judge, judge_model
from engine.authoring.trivial import (
    MAX_EVERY_HEAD,
    MAX_WRONG,
    Trivial,
    every_head,
    roles_behind,
    trivial_circuits,
    wrong_question,
)
from engine.puzzle import Problem
from engine.validate import validate_paths as _validate_paths

__all__ = [
    "MAX_EVERY_HEAD",
    "MAX_WRONG",
    "Trivial",
    "check_reference_with_judge",
    "every_head",
    "judge_model",
    "roles_behind",
    "trivial_circuits",
    "validate_paths",
    "wrong_question",
]


def validate_paths(paths: Iterable[str | Path], model: str | None = None,
                   notes: list[str] | None = None, *, device: str | None = None,
                   progress: Callable[[str], None] | None = None) -> list[Problem]:
    """``engine.validate.validate_paths`` with the judge grading each puzzle on ``model``."""
    return _validate_paths(paths, model, notes, device=device, progress=progress,
                           grader=check_reference_with_judge, load=judge_model)
