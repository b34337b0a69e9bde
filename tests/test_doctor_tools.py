"""`lineup doctor` runs every tool of the game once on the model that plays by default and
names the one that fails (issue 21: the logit lens broke on Llama while doctor said all
was well)."""

from __future__ import annotations

import pytest

from engine.models import DefaultModel
from game.commands import doctor

TOOLS = {"think now (logit lens)", "who answers (attention)", "who answers: find",
         "swap one question's answer", "swap the question", "swap who answers",
         "swap the answer", "swap a person: first picture",
         "silence a question: first picture", "swap a person", "silence a question",
         "swap exactly"}


@pytest.fixture
def toy_default(monkeypatch):
    import engine.models

    monkeypatch.setattr(engine.models, "default_model",
                        lambda: DefaultModel("toy", "toy: for this test", False))


def test_every_tool_runs_on_the_default_model(toy_default) -> None:
    rows = {what: (ok, detail) for what, ok, detail in doctor._tools()}
    assert {what.removeprefix("tool: ") for what in rows} == TOOLS
    assert all(ok for ok, _ in rows.values()), rows


def test_a_tool_that_fails_is_named_with_its_error(toy_default, monkeypatch) -> None:
    from game.engine_bridge import Engine

    def broken(self, *args, **kwargs):
        raise AttributeError("'LlamaConfig' object has no attribute 'n_positions'")

    monkeypatch.setattr(Engine, "lens", broken)
    rows = {what: (ok, detail) for what, ok, detail in doctor._tools()}
    ok, detail = rows["tool: think now (logit lens)"]
    assert not ok and "n_positions" in detail and "AttributeError" in detail
    assert all(ok for what, (ok, _) in rows.items() if what != "tool: think now (logit lens)")


@pytest.mark.parametrize("at", ["head", "resid", "silence"])
def test_a_grid_of_some_layers_is_those_rows_of_the_whole_grid(at) -> None:
    from engine.judge import load_for
    from engine.patching import puzzle_patch
    from engine.puzzle import find_puzzle

    puzzle = find_puzzle("ioi-whole-circuit")
    lm = load_for(puzzle, "toy")
    whole = puzzle_patch(puzzle, lm, at=at, count=3)
    some = puzzle_patch(puzzle, lm, at=at, count=3, layers=[2, 0])
    assert whole.layers == list(range(lm.n_layers)) and some.layers == [2, 0]
    assert some.effects == [whole.effects[2], whole.effects[0]]
    import re

    named = re.search(r"layer (\d+)" if at == "resid" else r"(\d+)\.\d+", some.reading)
    assert named and named.group(1) in {"0", "2"}, some.reading  # the layer, not the row
