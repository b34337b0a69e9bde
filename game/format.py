"""How the game says things, shared by the screens and the command line.

Plain strings only (no Textual, no Rich, no torch): stars, verdict marks, number formats, and
the short explanations of the numbers the judge reports (the metric, effects above 100%,
negative faithfulness), written in the line-of-people words of the game. A screen wraps these
in ``rich.text.Text`` (never markup); the CLI prints them as they are.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

MAX_STARS = 3

VERDICT_MARK = {
    "confirmed": "✓ confirmed",
    "wrong-responder": "✗ wrong responder",
    "wrong-round": "✗ wrong round",
    "no-such-question": "✗ nobody asks this",
    "not-needed": "~ not needed",
    "not-measurable": "? not measurable",
    "invalid": "✗ invalid",
}


def stars_text(n: Any) -> str:
    """``★★☆`` for 2 of 3; anything that is not a whole number in range reads as 0 or 3."""
    try:
        k = max(0, min(MAX_STARS, int(n)))
    except (TypeError, ValueError):
        k = 0
    return "★" * k + "☆" * (MAX_STARS - k)


def verdict_mark(verdict: str) -> str:
    return VERDICT_MARK.get(verdict, visible(str(verdict)))


def visible(text: Any, limit: int | None = None) -> str:
    """``text`` with every control character shown as a visible sign (an escape sequence in a
    card name never reaches the terminal): newlines and tabs become ``⏎`` and ``⇥``, the C0
    controls their Unicode picture (``␛``), anything else in category C ``\\x..``. With
    ``limit``, cut to that many characters with ``…``."""
    out = []
    for ch in str(text):
        if ch == "\n":
            out.append("⏎")
        elif ch == "\t":
            out.append("⇥")
        elif ord(ch) < 0x20:
            out.append(chr(0x2400 + ord(ch)))
        elif ord(ch) == 0x7F:
            out.append("␡")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    s = "".join(out)
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s


def visible_block(text: Any) -> str:
    """Like ``visible`` but keeps newlines (a story, a hint): only other controls are shown."""
    return "\n".join(visible(line) for line in str(text).split("\n"))


def finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def num(x: Any, digits: int = 2) -> str:
    """A number for reading: fixed digits, no "-0.00" for a tiny negative; ``?`` when it is
    missing or not finite."""
    return _unsigned_zero(f"{x:.{digits}f}") if finite(x) else "?"


def share(x: Any) -> str:
    """A fraction of the clean-minus-corrupted gap as a whole percent (``126%``)."""
    return _unsigned_zero(f"{x:.0%}") if finite(x) else "?"


def _unsigned_zero(text: str) -> str:
    return text[1:] if text.startswith("-") and not text.strip("-0.%") else text


def people(n: int, word: str = "question") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def rounds_text(span: tuple[int, int]) -> str:
    a, b = span
    return f"(layer {a})" if a == b else f"(layers {a}-{b})"


MODEL_NAMES = {"gpt2": "GPT-2", "smollm2": "SmolLM2", "toy": "the toy"}
UNLOCK = {"gpt2": "GPT-2 (`lineup download gpt2`, then `lineup --model gpt2`)",
          "smollm2": "SmolLM2 (`lineup download smollm2`, then `lineup --model smollm2`)",
          "toy": "the toy model (`lineup --model toy`)"}


def unlock_short(models: list[str]) -> str:
    """A locked puzzle in a list: which model it needs, in a few words."""
    if not models:
        return "locked"
    return "locked: needs " + " or ".join(MODEL_NAMES.get(m, visible(m)) for m in models)


def unlock_text(models: list[str]) -> str:
    """How a locked puzzle is unlocked, in one line."""
    if not models:
        return "no model plays it yet"
    return "plays on " + " or ".join(UNLOCK.get(m, f"`--model {visible(m)}`") for m in models)


# --------------------------------------------------------------------------- explanations

STAGE_WORDS = {
    "prompts": "building the sentences",
    "runs": "running the model on the clean and the corrupted sentences",
    "judging": "checking each question",
    "faithfulness": "silencing everyone outside your circuit (faithfulness)",
    "held-out prompts": "trying sentences you have not seen (held-out)",
    "done": "done",
}


def stage_words(stage: str) -> str:
    """A judge stage in the player's words (unknown stages as they are, made visible)."""
    return STAGE_WORDS.get(stage, visible(stage))


UNK = "[UNK]"
UNK_NOTE = (f"{UNK} is a word the toy model's vocabulary does not have: the toy knows only the "
            "words of its puzzles and reads any other word as this one unknown word")

METRIC_KIND = {
    "logit_diff": "how much more the last person prefers the right word to the wrong one",
    "logprob": "how sure the last person is of the right word (log-probability)",
    "greater_than": "how much more the last person bets on bigger numbers than smaller ones",
}

FAITHFULNESS = ("faithfulness: the share of that gap your questions keep when every other "
                "question is silenced (1 = all of it, 0 = none)")


def metric_explained(kind: str | None) -> str:
    what = METRIC_KIND.get(kind or "", "the score of the guess the puzzle is about")
    return (f"{what}; the corrupted sentence swaps the people the answer depends on, and your "
            "questions must explain the gap")


def effect_note(effect: Any) -> str | None:
    """What an effect outside 0..100% means (None when it needs no note)."""
    if not finite(effect):
        return None
    if effect > 1.0:
        return (f"an effect of {share(effect)} is more than the whole gap between the clean and "
                "the corrupted sentence: these questions push the guess further than the full "
                "line does, because other questions in the line partly push against them")
    if effect < 0:
        return (f"an effect of {share(effect)} means the guess gets better without these "
                "questions: they push against the right answer")
    return None


def faithfulness_note(faithfulness: Any) -> str | None:
    """What a faithfulness below 0 or above 1 means (None when it needs no note)."""
    if not finite(faithfulness):
        return None
    if faithfulness < 0 and num(faithfulness) != num(0):  # not a rounding of 0
        return (f"faithfulness {num(faithfulness)} is below 0: with only your questions the line "
                "guesses worse than with every question silenced; some of them push the wrong way")
    if faithfulness > 1 and num(faithfulness) != num(1):
        return (f"faithfulness {num(faithfulness)} is above 1: your questions alone do more than "
                "the full line, which also has questions that push the other way")
    return None


def why_not(verdict: str, *, round_: str, asker: str, responder: str | None, card: str,
            card_plain: str = "") -> str:
    """A verdict's reason in the line's terms, without the fix (no right round, responder or
    head number): what the asker can know in that round and what the evidence says."""
    ask = f"“{card_plain}”" if card_plain else card
    r = responder or "anyone"
    if verdict == "confirmed":
        return f"in round {round_}, {asker} asks {r} {ask} and the guess depends on the answer"
    if verdict == "wrong-responder":
        return (f"in round {round_}, {asker} does ask {ask}, but the one who answers is not {r}: "
                f"the attention of that question goes to someone else. Who, behind {asker}, holds "
                "what the guess needs?")
    if verdict == "wrong-round":
        return (f"{asker} asks {r} {ask}, but not in round {round_}. In each round a person knows "
                "only what earlier rounds told them: is what this question needs there yet, or "
                "is it used later?")
    if verdict == "no-such-question":
        return (f"no question of round {round_} lets {asker} ask {r} {ask}: nobody in that round "
                f"listens to {r} that way. Look at who {asker} listens to (w) before you guess")
    if verdict == "not-needed":
        return (f"{asker} does ask {r} {ask} in round {round_}, but the guess does not change "
                "when that answer is forgotten: a person whose memory can be erased without "
                "changing the answer was not needed")
    if verdict == "not-measurable":
        return ("what this question does is lost in the noise on these sentences: the judge "
                "cannot tell it apart from chance, so it cannot count")
    if verdict == "invalid":
        return "this question cannot be asked in this puzzle"
    return visible(verdict)
