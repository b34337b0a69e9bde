"""The judge's numbers, each with the reason it has that value (players and teachers read
them in docs/how-grading-works.md)."""

from __future__ import annotations

JUDGE_VERSION = "6"

# ---- thresholds (documented in docs/how-grading-works.md) ----------------------------------
TASK_ACCURACY = 0.6
"""The model does the task when at least this share of the play prompts is answered right
(IO ahead of S; the right token on top; more mass above the year)..."""
NOISE_Z = 3.0
"""...and the clean-minus-corrupted gap is at least this many standard errors. An effect is
measurable when it is at least this many of its own standard errors from zero."""
UNIFORM_MULT = 1.5
"""A head listens to the responder when its attention there is at least this many times an
even spread over the positions the asker can see, and more than it gives any other role."""
DETECTOR_UNIFORM_MULT = 3.0
"""Pattern cards (previous-token, duplicate-token, induction): the head's score on repeated
random tokens is at least this many times a uniform head's, and its highest of the three."""
COPY_Z = 3.0
"""Copying cards: the head's write at the asker raises (negative name mover: lowers) the
logit of the responder's own token by at least this many standard deviations of its effect on
all tokens (a null baseline: a head writing noise scores about 0)."""
COPY_SAMPLE = 2000
"""How many ordinary words the copy score compares the responder's word with."""
EFFECT_MIN = 0.05
"""A group matters when it moves the metric by at least this fraction of (clean - corrupted)."""
SHARE_MIN = 0.5
"""The card's mechanism must carry at least this share of the group's effect: the direct
path to the guess for movers, later heads' queries for s-inhibition."""
PRIMARY_MIN = 0.025
"""A name mover is primary when its own direct effect is at least this fraction of the gap;
backups are the others, measured with the primaries silenced."""
NEED_LOSS = 0.03
"""A question is needed when dropping it changes faithfulness by at least this much."""
POSITION_SHARE = 0.8
"""A card's claim about where the responder stands (previous-token: right behind the asker;
duplicate-token: holding the asker's own word; induction: right after an earlier copy of it;
movers: holding a word the guess is about; movers and s-inhibition: asked where the guess is
made) must hold in at least this share of the puzzle's prompts. Roles are fixed by the
templates, so on every shipped puzzle a claim holds in all prompts or in none; the margin
leaves room for a sampled word that happens to repeat, and is well above one half so that a
claim true in only half the templates (say, ABBA but not BABA) is not the card's question."""
WIDEN_MAX = 4
"""When a verdict is inside its noise (the effect or its absence not yet shown), the question
is measured again on twice, then four times as many prompts before it is called
not-measurable: otherwise a verdict could flip with the prompts' seed (a previous-token group
moving the guess by 26% with noise 9% would be confirmed on one seed and not on another)."""
MAX_BATCH = 512
MAX_EVIDENCE = 8


ATTENTION_DETECTORS = ("previous_token", "duplicate_token", "induction")
SCORE_INDEX = {"previous_token": 0, "duplicate_token": 1, "induction": 2, "copy": 3,
               "negative_copy": 4}
PATTERN_CARDS = {"previous-token": "previous_token", "duplicate-token": "duplicate_token",
                 "induction": "induction"}
COPY_SIGN = {"name-mover": 1.0, "copy": 1.0, "backup-name-mover": 1.0,
             "negative-name-mover": -1.0}


def _pct(x: float) -> str:
    """A fraction as a whole percentage, without a "-0%" for a tiny negative."""
    text = f"{x:.0%}"
    return "0%" if text == "-0%" else text


def _num(x: float) -> str:
    """A number to two places, without a "-0.00" for a tiny negative."""
    text = f"{x:.2f}"
    return "0.00" if text == "-0.00" else text

Head = tuple[int, int]
