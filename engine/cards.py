"""The question cards: what each asks in the player's words, its interpretability name, and
which head score recognises it. The puzzle format, the judge and the game all read this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Card:
    """A question a person can shout to everyone behind them (an attention head's job),
    or the one card that is not a question at all: thinking it over (an MLP)."""

    id: str
    plain: str  # the player's words: what the asker shouts
    technical: str  # the interpretability name, for the UI's "technical names" toggle
    does: str  # one sentence on what the card does in the model
    detector: str | None  # the engine's head score that recognises it (engine.detectors)
    responder: bool = True  # False for cards that are not questions (think)


CARDS: dict[str, Card] = {
    c.id: c
    for c in (
        Card(
            "previous-token",
            "Who is standing right behind me?",
            "previous-token head",
            "attends to the token just before and copies what it was",
            "previous_token",
        ),
        Card(
            "duplicate-token",
            "Did anyone back there hold my word?",
            "duplicate-token head",
            "attends to an earlier copy of its own token",
            "duplicate_token",
        ),
        Card(
            "induction",
            "Who stood right after my word last time?",
            "induction head",
            "attends to the token after an earlier copy of its own token (via a "
            "previous-token head) and predicts it",
            "induction",
        ),
        Card(
            "s-inhibition",
            "Which name was said twice? (so I don't say it)",
            "S-inhibition head",
            "attends to the repeated name and makes the name movers avoid it",
            "s_inhibition",
        ),
        Card(
            "name-mover",
            "Which names are back there? (I'll say one)",
            "name mover head",
            "attends to a name and copies it into the prediction",
            "copy",
        ),
        Card(
            "backup-name-mover",
            "Which names are back there? (only if nobody else asks)",
            "backup name mover head",
            "does a name mover's job when the name movers are knocked out",
            "copy",
        ),
        Card(
            "negative-name-mover",
            "Which names are back there? (I'll say it less)",
            "negative name mover head",
            "attends to a name and writes against it, hedging the guess",
            "negative_copy",
        ),
        Card(
            "copy",
            "What are you holding? (I'll pass it on)",
            "mover / copying head",
            "attends to a token and moves what it holds to the asker",
            "copy",
        ),
        Card(
            "think",
            "Think it over (no question: use what you already know)",
            "MLP",
            "the MLP at the asker's position: memory and computation, no attention",
            None,
            responder=False,
        ),
    )
}
CARD_ALIASES = {"inhibition": "s-inhibition", "mlp": "think", "mover": "copy"}


def card_id(name: str) -> str:
    """The canonical id of a card name (aliases such as ``inhibition`` are accepted)."""
    return CARD_ALIASES.get(name, name)
