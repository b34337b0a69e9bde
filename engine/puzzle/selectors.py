"""Role selectors (``first {S}``, ``after S1``, ``last``): the small grammar a puzzle names its
people with. The shape parser reads roles with it; the prompt builder and the corruption
check read ``corrupt`` items with it."""

from __future__ import annotations

import re

from engine.puzzle.parts import NAME_PATTERN, RoleSpec
from engine.puzzle.suggest import did_you_mean

ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1}
_FILL_REF = re.compile(r"^\{([A-Za-z][A-Za-z0-9_]*)\}$")


def parse_selector(text: str) -> RoleSpec | str:
    """Parse a role selector; return the RoleSpec, or a message saying what is wrong.

    Grammar: ``last`` | ``start`` | ``{F}`` | ORDINAL ``{F}`` | ``after`` X | ``before`` X |
    ``position`` N, where ORDINAL is first/second/third/fourth/fifth/last and X is a role name
    or another selector."""
    words = text.split()
    if not words:
        return "is empty"
    head = words[0].lower()
    if len(words) == 1:
        if head in ("last", "end"):
            return RoleSpec(text, "last")
        if head in ("start", "first"):
            return RoleSpec(text, "start")
        m = _FILL_REF.match(words[0])
        if m:
            return RoleSpec(text, "occurrence", fill=m.group(1), nth=0)  # 0: the only one
        return (f"{text!r} is not a selector: use e.g. `first {{S}}`, `after S1`, `last`"
                f"{did_you_mean(head, [*ORDINALS, 'after', 'before', 'position', 'start'])}")
    if head in ORDINALS and len(words) == 2:
        m = _FILL_REF.match(words[1])
        if not m:
            return (f"expected a fill in braces after {head!r}, e.g. `{head} {{S}}`, "
                    f"not {words[1]!r}")
        return RoleSpec(text, "occurrence", fill=m.group(1), nth=ORDINALS[head])
    if head in ("after", "before"):
        rest = " ".join(words[1:])
        if len(words) == 2 and NAME_PATTERN.match(words[1]) and not _FILL_REF.match(words[1]):
            return RoleSpec(text, head, of=words[1])
        inner = parse_selector(rest)
        if isinstance(inner, str):
            return inner
        return RoleSpec(text, head, of=inner)
    if head == "position" and len(words) == 2:
        try:
            return RoleSpec(text, "position", index=int(words[1]))
        except ValueError:
            return f"`position` needs a whole number, not {words[1]!r}"
    known = [*ORDINALS, "after", "before", "position", "start"]
    return f"{text!r} is not a selector{did_you_mean(head, known)}"

