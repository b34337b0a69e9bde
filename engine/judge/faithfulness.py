"""Faithfulness and completeness: how much of the line's answer a circuit keeps with every
other question silenced (the judge's mixin, apart from the per-question verdicts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.judge.runs import _ensure, _Split, _values
from engine.judge.thresholds import Head, _num

if TYPE_CHECKING:
    from engine.interventions import Edit
    from engine.report import QuestionReport


class Faithfulness:
    """What ``_Judge`` measures of a whole circuit (it supplies ``lm``, ``block`` and
    ``round_heads``)."""

    # ---- faithfulness ----------------------------------------------------------------
    def silenced(self, keep: set[Head]) -> Edit:
        """Every head of the rounds that ``keep`` does not name, mean-ablated."""
        from engine.interventions import Edit

        return Edit.of(ablate=[h for h in self.round_heads if h not in keep])

    def completeness(self, split: _Split, keep: set[Head], faith: float,
                     reports: Sequence[QuestionReport], used: Sequence[Sequence[Head]]
                     ) -> dict[str, float]:
        """The puzzle's completeness test (``Thresholds.within`` / ``without``): how far the
        circuit is from behaving like the model, as is and with the ``without`` card's heads
        silenced in both. Wang et al. use the same test to show a circuit holds the heads
        that take over when the main ones are knocked out."""
        t = self.block.thresholds
        assert t.within is not None
        out = {"as_is": faith, "within": t.within}
        worst = abs(faith - 1.0)
        if t.without is not None:
            gone = {h for rep, hs in zip(reports, used, strict=True) if rep.card == t.without
                    for h in hs}
            out["silenced_heads"] = float(len(gone))
            circuit = self.faithfulness(split, keep - gone)
            model = self.faithfulness(split, set(self.round_heads) - gone)  # only `gone` off
            out.update(circuit_without=circuit, model_without=model)
            worst = max(worst, abs(circuit - model))
        out["ok"] = 1.0 if worst <= t.within else 0.0
        return out

    def incomplete_words(self, c: dict[str, float]) -> str:
        """Why the completeness test fails, in the line's words, without naming heads."""
        w = c["within"]
        if abs(c["as_is"] - 1.0) > w:
            how = "more" if c["as_is"] > 1.0 else "less"
            return (f"your circuit says the answer {how} surely than the whole line does "
                    f"(faithfulness {_num(c['as_is'])}; it must be within {_num(w)} of 1.00): "
                    + ("someone who holds the answer back is missing" if how == "more"
                       else "someone who helps is missing"))
        card = self.block.thresholds.without
        return (f"silence the people who ask {card} and the whole line still keeps "
                f"{_num(c['model_without'])} of its answer, but your circuit keeps "
                f"{_num(c['circuit_without'])} (they must agree within {_num(w)}): "
                + ("someone who takes over when they are gone is missing"
                   if c["circuit_without"] < c["model_without"] else
                   "someone who holds the answer back is missing"))

    def floor(self, split: _Split) -> float:
        """The metric with every head of the rounds silenced: faithfulness 0. Without kept
        layers that is the whole model's heads, measured once when the split is built."""
        if not self.block.kept:
            return split.ablated
        edit = self.silenced(set())
        _ensure(self.lm, split, [edit])
        values = _values(split, edit)
        return sum(values) / len(values)

    def faithfulness(self, split: _Split, keep: set[Head]) -> float:
        edit = self.silenced(keep)
        _ensure(self.lm, split, [edit])
        values = _values(split, edit)
        floor = self.floor(split)
        denom = split.clean - floor
        if abs(denom) < 1e-6:
            return 0.0
        return (sum(values) / len(values) - floor) / denom
