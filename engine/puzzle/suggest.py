""""Did you mean": the closest known name, for every message that turns a name down.

The shape parser, the meaning checks and the question rule all reject names the same way;
this is the one place that picks the suggestion and lists the choices."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (difflib), or None."""
    if not isinstance(word, str):
        return None
    pool = list(choices)
    cutoff = 0.5 if len(word) <= 3 else 0.6  # "S3" is as close to "S2" as short names get
    close = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    if close:
        return close[0]
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[close[0]] if close else None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    best = closest(word, choices)
    return f" (did you mean {best!r}?)" if best else ""


def one_of(choices: Iterable[str]) -> str:
    return ", ".join(str(c) for c in choices)

