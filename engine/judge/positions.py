"""Each card's claim about positions, checked on the puzzle's own prompts before any run:
a question false by position is refused with the reason in the line's words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.judge.thresholds import POSITION_SHARE

if TYPE_CHECKING:
    from engine.puzzle import PromptSet

_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
          9: "nine", 10: "ten"}
MOVER_CARDS = ("name-mover", "copy", "negative-name-mover", "backup-name-mover")
"""Cards that say a word into the guess: asked only where the guess is made."""


def _share(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def _mode(values: Sequence[int]) -> int:
    return max(set(values), key=list(values).count)


def answers_are_texts(ps: PromptSet) -> bool:
    """Whether the metric compares answer texts (``" {PRONOUN}"``): answers that stand
    nowhere in the prompt, so no position holds them. A mover's responder is then whoever
    its heads listen to, and its copy test reads the right answer (``copy_z``)."""
    from engine.puzzle.parts import is_answer_text

    m = ps.metric
    return m.kind in ("logit_diff", "logprob") and is_answer_text(m.correct)


def _guess_words(ps: PromptSet) -> str:
    """What the guess is about, in the line's words."""
    from engine.puzzle.parts import answer_label, is_answer_text

    m = ps.metric
    if is_answer_text(m.correct):
        if m.kind == "logit_diff":
            return (f"the guess at {m.at} weighs {answer_label(m.correct)} against "
                    f"{answer_label(m.wrong)}")
        return f"the guess at {m.at} is about {answer_label(m.correct)}"
    if m.kind == "logit_diff":
        return f"the guess at {m.at} weighs {m.correct}'s word against {m.wrong}'s"
    if m.kind == "greater_than":
        return f"the guess at {m.at} is about numbers above or below {m.correct}'s"
    return f"the guess at {m.at} is about {m.correct}'s word"


def position_problem(card: str, asker: str, responder: str, ps: PromptSet) -> str | None:
    """Why the card's claim about positions is false on these prompts, in the line's words,
    or None when it holds in at least ``POSITION_SHARE`` of them. Checked before any effect:
    a card is a claim about who answers (previous-token: the person right behind; duplicate-
    token: one holding my own word; induction: the one right after an earlier copy of my
    word; movers: one holding a word the guess is about), and about where it is asked (movers
    and s-inhibition: where the guess is made). Needs no model run."""
    a_pos, r_pos = ps.roles[asker], ps.roles[responder]
    ids = ps.token_ids
    at = ps.roles[ps.metric.at]
    n = len(ids)
    if (card in MOVER_CARDS or card == "s-inhibition") \
            and _share([a_pos[i] == at[i] for i in range(n)]) < POSITION_SHARE:
        if card == "s-inhibition":
            return (f"a warning is heard by the people who say a name into the guess, and "
                    f"they ask at {ps.metric.at}: what is said at {asker} does not reach "
                    "their questions")
        return (f"this card moves a word into the guess, but the guess is made at "
                f"{ps.metric.at}: what is said at {asker} does not reach it directly")
    if card == "previous-token":
        if _share([a_pos[i] - r_pos[i] == 1 for i in range(n)]) < POSITION_SHARE:
            gap = _mode([a_pos[i] - r_pos[i] for i in range(n)])
            far = _WORDS.get(gap, str(gap))
            return f"{responder} stands {far} people behind {asker}, not right behind"
    elif card == "duplicate-token":
        if _share([ids[i][r_pos[i]] == ids[i][a_pos[i]] for i in range(n)]) < POSITION_SHARE:
            return (f"{responder} does not hold {asker}'s own word (in the first sentence "
                    f"{asker} holds {ps.tokens[0][a_pos[0]]!r} and {responder} "
                    f"{ps.tokens[0][r_pos[0]]!r})")
    elif card == "induction":
        if _share([r_pos[i] > 0 and ids[i][r_pos[i] - 1] == ids[i][a_pos[i]]
                   for i in range(n)]) < POSITION_SHARE:
            before = ps.tokens[0][r_pos[0] - 1] if r_pos[0] > 0 else ""
            return (f"{responder} does not stand right after an earlier copy of {asker}'s "
                    f"word (in the first sentence the person right before {responder} holds "
                    f"{before!r}, and {asker} {ps.tokens[0][a_pos[0]]!r})")
    elif card in MOVER_CARDS and not answers_are_texts(ps):
        answers = [set(ps.correct[i]) | set(ps.wrong[i]) for i in range(n)]
        if _share([ids[i][r_pos[i]] in answers[i] for i in range(n)]) < POSITION_SHARE:
            return (f"{responder}'s word is not one the guess is about: "
                    f"{_guess_words(ps)} (in the first sentence {responder} holds "
                    f"{ps.tokens[0][r_pos[0]]!r})")
    return None
