"""Numbers in verdicts read as numbers: a tiny negative is not "-0.00" or "-0%", and a
faithfulness that rounds to 0 (or 1) gets no note about being below 0 (or above 1)."""

from __future__ import annotations

from engine.judge.thresholds import _num, _pct
from game.format import faithfulness_note, num, share


def test_a_rounding_of_zero_has_no_sign():
    assert num(-0.001) == "0.00" and num(-0.004, 2) == "0.00"
    assert share(-0.001) == "0%"
    assert _num(-0.004) == "0.00" and _pct(-0.004) == "0%"


def test_real_negatives_keep_their_sign():
    assert num(-0.26) == "-0.26" and share(-0.22) == "-22%"
    assert _num(-0.26) == "-0.26" and _pct(-0.22) == "-22%"
    assert num(-10.0) == "-10.00" and share(-1.0) == "-100%"


def test_faithfulness_notes_only_past_what_is_shown():
    assert faithfulness_note(-0.001) is None
    assert faithfulness_note(1.004) is None
    assert "below 0" in faithfulness_note(-0.26)
    assert "above 1" in faithfulness_note(1.2)
