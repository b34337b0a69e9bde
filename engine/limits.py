"""How long an id, a name or a shown text may be: one place, read by the puzzle reader (so
``lineup validate`` and every pack refuse what is longer, with the number), the save file, the
command line and whatever names a file after an id.

Why these numbers: a puzzle id becomes a file name (``ID.yaml``, the circuit file ``s`` saves)
and a temporary twin beside it (``.ID.yaml.PID.XXXXXXXX.tmp``, see ``game.progress``), which
must stay within the 255 bytes most file systems allow; ids are ASCII, so characters are
bytes. The save file keeps stars under the same limit, so anything that validates is kept.
Labels and titles are drawn on one line of the game's screens (the line of people, the
dialogs, the menu), which an 80-column terminal must be able to show.
"""

from __future__ import annotations

MAX_NAME = 200
"""A puzzle id, a ladder, model block, card, fill, role or round name, a pack's ``order``
entry, a circuit file's ``puzzle`` and ``model``: every name that is looked up or stored."""

MAX_LABEL = 24
"""A role or round name: shown in the line of people and in the add dialog."""

MAX_TITLE = 80
"""A puzzle's or a pack's title: one line of the menu and the puzzle screen."""

MAX_HINT = 400
"""One hint: several are shown at once in the hint dialog."""

NAME_MAX_BYTES = 255  # a file name on ext4, APFS, NTFS
TEMP_OVERHEAD = len(".") + len(".yaml") + len(".4194304.") + 8 + len(".tmp")
assert MAX_NAME + TEMP_OVERHEAD <= NAME_MAX_BYTES, "an id must fit a file name"


def too_long(text: str, limit: int = MAX_NAME) -> str | None:
    """``"is N characters; the limit is L"`` when ``text`` is longer than ``limit``."""
    if len(text) <= limit:
        return None
    return f"is {len(text):,} characters; the limit is {limit}"


def usable_name(value: object) -> str | None:
    """``value`` when it is a non-empty text within ``MAX_NAME``, else None (the save file's
    rule for every id and name it keeps)."""
    if isinstance(value, str) and 0 < len(value) <= MAX_NAME:
        return value
    return None


def circuit_file_name(puzzle_id: str) -> str:
    """The file a puzzle's circuit is saved in by default (``ID.yaml``); within a file name's
    limits for any id the reader accepts."""
    if too_long(puzzle_id):
        raise ValueError(f"puzzle id {too_long(puzzle_id)}")
    return f"{puzzle_id}.yaml"
